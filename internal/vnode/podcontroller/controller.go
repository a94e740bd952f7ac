// Package podcontroller runs the pods bound to the virtual node as
// instances of the provider, as a kubelet runs its pods: an informer of
// the node's pods and a poll of its instances fill a workqueue of pod
// keys, and syncPod converges each pod and its instance, level-triggered
// and idempotent by pod UID (the instance's ClientToken). It writes the
// pods' status (status.go) and events (events.go); what each pod's
// instance is asked for, and why a pod cannot be, is package podspec's.
package podcontroller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/spoteci/spoteci/internal/vnode/deadlines"
	"github.com/spoteci/spoteci/internal/vnode/podspec"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Annotations the node puts on a pod once its instance exists, as ECI's
// virtual node does: kubectl describe shows where the pod runs and at what
// price.
const (
	AnnotationInstanceID   = "k8s.aliyun.com/eci-instance-id"
	AnnotationInstanceSpec = "k8s.aliyun.com/eci-instance-spec"
	AnnotationZone         = "spoteci.io/zone"
	AnnotationPrice        = "spoteci.io/price"
)

// Config sets up a Controller.
type Config struct {
	NodeName string
	Kube     kubernetes.Interface
	Provider provider.Provider
	// Zone, when set, is the zone of every instance.
	Zone string
	// PollInterval is how often the controller asks what changed among
	// its instances; every ResyncInterval it lists them all instead.
	PollInterval, ResyncInterval time.Duration
	// Workers sync pods in parallel.
	Workers int
	// TimeScale is how much faster than wall time the market runs (0 or
	// 1: wall time); the deadline policy's ticks, changeovers and
	// protection periods shrink by it.
	TimeScale float64
	Logger    *slog.Logger
}

// Controller runs the node's pods. What it knows of the instances, and
// which events it sent, outlive a leadership term; Run acts for one term.
type Controller struct {
	cfg      Config
	log      *slog.Logger
	kube     kubernetes.Interface
	provider provider.Provider
	pods     corelisters.PodLister // the term's
	queue    workqueue.TypedRateLimitingInterface[string]
	spec     *podspec.Builder
	events   *events
	writes   *statusWriter
	// deadlines decides spot or pay-as-you-go for deadline Jobs' pods.
	deadlines *deadlines.Decider

	// What the polls know, read and written by the polling goroutine alone
	// (and the first poll of a term, before it starts): when the last full
	// listing and the last poll started, and whether the backend can say
	// what changed.
	listed, polled time.Time
	noChanges      bool

	mu          sync.Mutex
	groups      map[types.UID]*provider.Instance // last poll, by pod UID
	byPod       map[string][]types.UID           // the same, by "namespace/name" of their pod
	fingerprint map[types.UID]string
}

// New returns a Controller of cfg; Run starts it.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		cfg: cfg, log: cfg.Logger, kube: cfg.Kube, provider: cfg.Provider,
		queue:       newPodQueue(),
		spec:        podspec.New(podspec.Config{NodeName: cfg.NodeName, Zone: cfg.Zone, Kube: cfg.Kube}),
		events:      newEvents(cfg.Kube, cfg.Logger),
		writes:      &statusWriter{kube: cfg.Kube},
		deadlines:   deadlines.New(deadlines.Config{Kube: cfg.Kube, TimeScale: cfg.TimeScale}),
		groups:      map[types.UID]*provider.Instance{},
		byPod:       map[string][]types.UID{},
		fingerprint: map[types.UID]string{},
	}
}

// Informers are a term's informers of the pods bound to node nodeName,
// for Run (which starts them) and the kubelet API.
func Informers(kube kubernetes.Interface, nodeName string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	}))
}

func newPodQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "vnode-pods"})
}

// Run acts for the node's pods through one leadership term, until ctx
// ends: it starts factory (the term's Informers), waits for them and for
// the first poll of the instances, calls ready, and then syncs pods with
// Workers workers and polls the instances every PollInterval.
func (c *Controller) Run(ctx context.Context, factory informers.SharedInformerFactory, ready func()) error {
	c.events.startTerm(time.Now())
	c.listed = time.Time{} // a new term starts with a full listing
	c.queue = newPodQueue()
	defer c.queue.ShutDown()
	informer := factory.Core().V1().Pods()
	c.pods = informer.Lister()
	// "kubelet, eci" is what kubectl describe shows in From, as in the guide.
	recorder, stopRecorder := newShardedRecorder(ctx, c.kube.CoreV1().Events(""), corev1.EventSource{Component: "kubelet", Host: "eci"}, eventWriters)
	defer stopRecorder()
	c.events.EventRecorder = recorder

	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	stopWatched := c.spec.Start(ctx)
	defer stopWatched()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return fmt.Errorf("vnode: pod informer did not sync")
	}
	if !c.spec.Wait(ctx) && ctx.Err() == nil {
		c.log.Warn("the watches of the kubernetes Service and of kube-root-ca.crt have not synced: reading them once a pod meanwhile (does the node's role let it list and watch them?)")
	}
	// Know the instances before the first sync, so a restarted node finds
	// the groups it made instead of asking for them again.
	if err := c.poll(ctx); err != nil {
		c.log.Error("reading instances", "err", err)
	}
	ready()
	var wg sync.WaitGroup
	wg.Go(func() {
		wait.NonSlidingUntilWithContext(ctx, func(ctx context.Context) {
			if err := c.poll(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("periodic work", "err", err)
			}
		}, c.cfg.PollInterval)
	})
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	requeue, err := c.syncPod(ctx, key)
	switch {
	case err != nil:
		c.log.Error("syncing pod", "pod", key, "err", err)
		c.queue.AddRateLimited(key)
	case requeue > 0:
		c.queue.Forget(key)
		c.queue.AddAfter(key, requeue)
	default:
		c.queue.Forget(key)
	}
	return true
}

// pollOverlap widens each poll's window beyond the time since the last
// one: what changed while that poll's answer was on its way is asked again.
const pollOverlap = 2 * time.Second

// poll learns what became of the node's instances and queues the pods whose
// instance changed: a full listing at the start of a term, every
// ResyncInterval and after a failed poll (level-triggered: it finds what the
// incremental answers cannot say, such as a group the backend forgot), and
// otherwise only what changed since a little before the last poll.
func (c *Controller) poll(ctx context.Context) error {
	start := time.Now()
	tags := map[string]string{podspec.TagNode: c.cfg.NodeName}
	window := start.Sub(c.polled) + pollOverlap
	if c.noChanges || c.listed.IsZero() || start.Sub(c.listed) >= c.cfg.ResyncInterval || window > provider.MaxChangedWindow {
		list, err := c.provider.List(ctx, tags)
		if err != nil {
			return fmt.Errorf("listing instances: %w", err)
		}
		c.resync(list)
		c.listed, c.polled = start, start
		return nil
	}
	list, err := c.provider.Changed(ctx, tags, window)
	var reqErr *provider.RequestError
	if errors.As(err, &reqErr) && reqErr.Code == eciapi.CodeActionNotFound {
		c.noChanges = true // an older backend: list every poll
		c.log.Warn("the ECI backend cannot say what changed (no DescribeContainerGroupStatus): listing every instance at each poll")
	}
	if err != nil {
		c.listed = time.Time{} // the next poll lists all
		return fmt.Errorf("reading what changed among instances: %w", err)
	}
	c.apply(list)
	c.polled = start
	return nil
}

// resync takes a full listing: it replaces what the node knows, and queues
// the pods whose instance changed or is gone, and the live pods that have an
// instance the listing lacks (deleted behind the node's back).
func (c *Controller) resync(list []provider.Instance) {
	fresh := make(map[types.UID]*provider.Instance, len(list))
	byPod := make(map[string][]types.UID, len(list))
	var changed []string
	c.mu.Lock()
	for i := range list {
		in := &list[i]
		uid := podUID(in)
		fresh[uid] = in
		key := podKey(in)
		byPod[key] = append(byPod[key], uid)
		if fp := fingerprintOf(in); c.fingerprint[uid] != fp {
			c.fingerprint[uid] = fp
			changed = append(changed, key)
		}
	}
	for uid := range c.fingerprint {
		if _, ok := fresh[uid]; !ok {
			// Gone from the listing (deleted): its pod learns why.
			delete(c.fingerprint, uid)
			if old := c.groups[uid]; old != nil {
				changed = append(changed, podKey(old))
			}
		}
	}
	c.groups, c.byPod = fresh, byPod
	c.mu.Unlock()
	if pods, err := c.pods.List(labels.Everything()); err == nil {
		for _, p := range pods {
			if _, ok := fresh[p.UID]; !ok && hasInstance(p) && p.DeletionTimestamp == nil &&
				p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				changed = append(changed, p.Namespace+"/"+p.Name)
			}
		}
	}
	for _, key := range changed {
		c.queue.Add(key)
	}
}

// apply takes what changed: each instance replaces what the node knew of
// it, a deleted one is forgotten, and the pods of those that changed are
// queued. Its work is what changed, never every instance.
func (c *Controller) apply(list []provider.Instance) {
	var changed []string
	c.mu.Lock()
	for i := range list {
		in := &list[i]
		uid, key := podUID(in), podKey(in)
		if in.Status == provider.StatusDeleted {
			if _, ok := c.groups[uid]; ok {
				c.dropLocked(uid, key)
				changed = append(changed, key)
			}
			continue
		}
		if _, ok := c.groups[uid]; !ok {
			c.byPod[key] = append(c.byPod[key], uid)
		}
		c.groups[uid] = in
		if fp := fingerprintOf(in); c.fingerprint[uid] != fp {
			c.fingerprint[uid] = fp
			changed = append(changed, key)
		}
	}
	c.mu.Unlock()
	for _, key := range changed {
		c.queue.Add(key)
	}
}

// dropLocked forgets the instance of pod uid (pod key). Call with mu held.
func (c *Controller) dropLocked(uid types.UID, key string) {
	delete(c.groups, uid)
	delete(c.fingerprint, uid)
	if uids := slices.DeleteFunc(c.byPod[key], func(u types.UID) bool { return u == uid }); len(uids) > 0 {
		c.byPod[key] = uids
	} else {
		delete(c.byPod, key)
	}
}

// podKey is the "namespace/name" of an instance's pod.
func podKey(in *provider.Instance) string {
	return in.Tags[podspec.TagNamespace] + "/" + in.Tags[podspec.TagPod]
}

func fingerprintOf(in *provider.Instance) string {
	b, _ := json.Marshal([]any{in.Status, in.NoticeTime, in.Containers, len(in.Events), in.IP})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// podUID is the UID of an instance's pod: its ClientToken, or its tag where
// the backend does not return the token.
func podUID(in *provider.Instance) types.UID {
	if in.Token != "" {
		return types.UID(in.Token)
	}
	return types.UID(in.Tags[podspec.TagPodUID])
}

// InstanceID is the ID of pod's instance: the last poll's, else the one
// its status names; empty when none.
func (c *Controller) InstanceID(pod *corev1.Pod) string {
	if in := c.group(pod.UID); in != nil {
		return in.ID
	}
	return groupIDOf(pod)
}

func (c *Controller) group(uid types.UID) *provider.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[uid]
}
