// Package vnode is spoteci's virtual node: a kubelet-like agent that joins a
// Kubernetes cluster as a Node and runs the pods bound to it as ECI container
// groups. It follows the Kubernetes controllers' shape: informers fill a
// workqueue of pod keys, and syncPod converges each pod and its instance,
// level-triggered and idempotent by pod UID (the instance's ClientToken).
package vnode

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/spoteci/spoteci/internal/vnode/kubeletapi"
	"github.com/spoteci/spoteci/internal/vnode/nodecontroller"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	"github.com/spoteci/spoteci/internal/vnode/webhook"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Tags the node puts on the groups it creates.
const (
	TagNode      = "spoteci.io/node"
	TagNamespace = eciapi.TagNamespace
	TagPod       = eciapi.TagPod
	// TagPodUID names the pod by UID, for backends that do not return the
	// ClientToken.
	TagPodUID = eciapi.TagPodUID
	// TagAPIEvict records, at creation, that the pod asked for api-evict.
	TagAPIEvict = "spoteci.io/api-evict"
	// TagJob names the Job that owns the pod, for bills per Job.
	TagJob = eciapi.TagJob
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

// Config sets up a Node.
type Config struct {
	NodeName string
	Kube     kubernetes.Interface
	// Provider runs the pods' instances.
	Provider provider.Provider
	// Taint the node virtual-kubelet.io/provider=spoteci:NoSchedule.
	Taint bool
	// Zone, when set, is the zone of every instance the node creates (their
	// ZoneId) and of its label topology.kubernetes.io/zone; its capacity is
	// what that zone sells. Pods have no zone annotation: they pick a zone by
	// the node they select. Empty: the market picks among the region's zones.
	Zone string
	// KubeletListen is the address of the kubelet API (kubectl logs); default 127.0.0.1:0.
	KubeletListen string
	// PollInterval is how often the node asks what changed among its
	// instances (DescribeContainerGroupStatus with SinceSecond); default
	// 1 s. Every ResyncInterval (default 1 minute), at the start of each
	// term and after a failed poll it lists them all instead (one paged
	// DescribeContainerGroups). Between polls, a pod the node acts on is
	// read by ID.
	PollInterval, ResyncInterval time.Duration
	// Workers sync pods in parallel; default 64: a pod's sync mostly waits
	// on the apiserver and the backend, and a reclaim storm brings thousands.
	Workers int
	// ServingCertificate is the kubelet port's; nil: one the cluster signs
	// through the CSR API (self-signed until issued).
	ServingCertificate *tls.Certificate
	// ApproveServingCSR: the node approves its own serving certificate
	// request (a local cluster whose admin it runs as).
	ApproveServingCSR bool
	// NodeIP is the address the Node reports, where the apiserver reaches
	// the kubelet API; default 127.0.0.1.
	NodeIP string
	// Namespace holds the node's own objects: its leader-election Lease
	// and the webhook certificate's Secret; default kube-system.
	Namespace string
	// Election, when set, makes the node act only while this replica
	// holds its Lease; nil: always.
	Election *Election
	// WebhookListen, when set, serves the admission webhook of the
	// alibabacloud.com/eci label there; the leader keeps its
	// MutatingWebhookConfiguration and its certificate in the Secret
	// WebhookSecret (default spoteci-webhook-tls).
	WebhookListen string
	// WebhookService, a Service in Namespace, is how the apiserver
	// reaches the webhook's replicas; empty: at WebhookListen's address
	// (a node on the apiserver's host).
	WebhookService, WebhookSecret string
	Logger                        *slog.Logger
}

// Node is a running virtual node.
type Node struct {
	cfg       Config
	log       *slog.Logger
	kube      kubernetes.Interface
	provider  provider.Provider
	pods      corelisters.PodLister
	watched   *watched // what nearly every pod's config reads; nil: read it
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	kubelet   *kubeletapi.Server
	nodes     *nodecontroller.Controller
	hook      *webhook.Server // nil: no webhook
	term      sync.Mutex      // held by the leader's work (leader.go)
	termStart time.Time       // when this node began to act, in its latest term

	// What the polls know, read and written by the polling goroutine alone
	// (and the first poll of a term, before it starts): when the last full
	// listing and the last poll started, and whether the backend can say
	// what changed.
	listed, polled time.Time
	noChanges      bool
	past           *pastEvents // of earlier terms, read as needed in this one

	mu          sync.Mutex
	groups      map[types.UID]*provider.Instance // last poll, by pod UID
	byPod       map[string][]types.UID           // the same, by "namespace/name" of their pod
	fingerprint map[types.UID]string
	emitted     map[string]bool // uid/reason of events sent
	forwarded   map[types.UID]map[string]bool
	written     map[string]*corev1.Pod // by "namespace/name", until the informer has it (wrote)
}

// New checks cfg and returns a Node; Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.NodeName == "" || cfg.Kube == nil || cfg.Provider == nil {
		return nil, fmt.Errorf("vnode: NodeName, Kube and Provider are required")
	}
	if cfg.KubeletListen == "" {
		cfg.KubeletListen = "127.0.0.1:0"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.NodeIP = cmp.Or(cfg.NodeIP, "127.0.0.1")
	ip := net.ParseIP(cfg.NodeIP)
	if ip == nil {
		return nil, fmt.Errorf("vnode: NodeIP %q is not an IP address", cfg.NodeIP)
	}
	cfg.Namespace = cmp.Or(cfg.Namespace, metav1.NamespaceSystem)
	cfg.WebhookSecret = cmp.Or(cfg.WebhookSecret, "spoteci-webhook-tls")
	if e := cfg.Election; e != nil && (e.Lease == "" || e.Identity == "" || e.RetryPeriod <= 0 || e.RenewDeadline <= e.RetryPeriod || e.LeaseDuration <= e.RenewDeadline) {
		return nil, fmt.Errorf("vnode: an election needs a Lease, an Identity and LeaseDuration > RenewDeadline > RetryPeriod > 0")
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), kube: cfg.Kube, provider: cfg.Provider,
		queue:       newPodQueue(),
		groups:      map[types.UID]*provider.Instance{},
		fingerprint: map[types.UID]string{},
		emitted:     map[string]bool{},
		past:        &pastEvents{byNS: map[string]*namespaceEvents{}},
		forwarded:   map[types.UID]map[string]bool{},
		nodes: nodecontroller.New(nodecontroller.Config{Name: cfg.NodeName, Kube: cfg.Kube, Taint: cfg.Taint, IP: cfg.NodeIP,
			Provider: cfg.Provider, Zone: cfg.Zone, Logger: cfg.Logger.With("node", cfg.NodeName)}),
	}
	if cfg.WebhookListen != "" {
		n.hook = webhook.New(webhook.Config{Kube: cfg.Kube, Listen: cfg.WebhookListen, Namespace: cfg.Namespace, Secret: cfg.WebhookSecret,
			Service: cfg.WebhookService, Logger: n.log})
	}
	kubelet, err := kubeletapi.New(kubeletapi.Config{NodeName: cfg.NodeName, Kube: cfg.Kube, Provider: cfg.Provider, Listen: cfg.KubeletListen,
		NodeIP: ip, Certificate: cfg.ServingCertificate, ApproveCSR: cfg.ApproveServingCSR, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.kubelet = kubelet
	return n, nil
}

func newPodQueue() workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "vnode-pods"})
}

// Run runs the node until ctx ends: serves the admission webhook, and acts
// as the node, while it leads when there is an election.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var hookErr <-chan error
	if n.hook != nil {
		var err error
		if hookErr, err = n.hook.Serve(ctx); err != nil {
			return err
		}
	}
	run := n.lead
	if n.cfg.Election != nil {
		run = func(ctx context.Context) error { return n.elect(ctx, n.lead) }
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case err := <-hookErr:
		cancel()
		<-done
		return fmt.Errorf("admission webhook stopped: %w", err)
	}
}

// lead registers the node and acts as it until ctx ends.
func (n *Node) lead(ctx context.Context) error {
	n.termStart = time.Now()
	n.listed = time.Time{} // a new term starts with a full listing
	n.past = &pastEvents{byNS: map[string]*namespaceEvents{}}
	n.queue = newPodQueue()
	defer n.queue.ShutDown()
	factory := informers.NewSharedInformerFactoryWithOptions(n.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.cfg.NodeName).String()
	}))
	defer factory.Shutdown() // waits for the informers, after cancel below
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	informer := factory.Core().V1().Pods()
	n.pods = informer.Lister()
	port, serveErr, err := n.kubelet.Serve(ctx, n.pods, n.instanceID)
	if err != nil {
		return err
	}
	if err := n.nodes.Register(ctx, port); err != nil {
		return err
	}
	// "kubelet, eci" is what kubectl describe shows in From, as in the guide.
	recorder, stopRecorder := newShardedRecorder(ctx, n.kube.CoreV1().Events(""), corev1.EventSource{Component: "kubelet", Host: "eci"}, eventWriters)
	defer stopRecorder()
	n.recorder = recorder

	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			n.queue.Add(key)
		}
	}
	informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	w, stopWatched := startWatched(ctx, n.kube)
	defer stopWatched()
	n.watched = w
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return fmt.Errorf("vnode: pod informer did not sync")
	}
	if !w.wait(ctx) && ctx.Err() == nil {
		n.log.Warn("the watches of the kubernetes Service and of kube-root-ca.crt have not synced: reading them once a pod meanwhile (does the node's role let it list and watch them?)")
	}
	// Know the instances before the first sync, so a restarted node finds
	// the groups it made instead of asking for them again.
	if err := n.poll(ctx); err != nil {
		n.log.Error("reading instances", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.kubelet.KeepCertificate(ctx) })
	wg.Go(func() { n.nodes.KeepLease(ctx) })
	wg.Go(func() { n.every(ctx, time.Minute, n.nodes.UpdateStatus) })
	wg.Go(func() { n.every(ctx, n.cfg.PollInterval, n.poll) })
	for range n.cfg.Workers {
		wg.Go(func() {
			for n.processNext(ctx) {
			}
		})
	}
	if n.hook != nil {
		wg.Go(func() { n.hook.Keep(ctx) })
	}
	n.log.Info("virtual node ready", "kubelet_port", port)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("kubelet API stopped: %w", err)
	}
	n.queue.ShutDown()
	wg.Wait()
	return err
}

func (n *Node) every(ctx context.Context, period time.Duration, f func(context.Context) error) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("periodic work", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) processNext(ctx context.Context) bool {
	key, quit := n.queue.Get()
	if quit {
		return false
	}
	defer n.queue.Done(key)
	requeue, err := n.syncPod(ctx, key)
	switch {
	case err != nil:
		n.log.Error("syncing pod", "pod", key, "err", err)
		n.queue.AddRateLimited(key)
	case requeue > 0:
		n.queue.Forget(key)
		n.queue.AddAfter(key, requeue)
	default:
		n.queue.Forget(key)
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
func (n *Node) poll(ctx context.Context) error {
	start := time.Now()
	tags := map[string]string{TagNode: n.cfg.NodeName}
	window := start.Sub(n.polled) + pollOverlap
	if n.noChanges || n.listed.IsZero() || start.Sub(n.listed) >= n.cfg.ResyncInterval || window > provider.MaxChangedWindow {
		list, err := n.provider.List(ctx, tags)
		if err != nil {
			return fmt.Errorf("listing instances: %w", err)
		}
		n.resync(list)
		n.listed, n.polled = start, start
		return nil
	}
	list, err := n.provider.Changed(ctx, tags, window)
	var reqErr *provider.RequestError
	if errors.As(err, &reqErr) && reqErr.Code == eciapi.CodeActionNotFound {
		n.noChanges = true // an older backend: list every poll
		n.log.Warn("the ECI backend cannot say what changed (no DescribeContainerGroupStatus): listing every instance at each poll")
	}
	if err != nil {
		n.listed = time.Time{} // the next poll lists all
		return fmt.Errorf("reading what changed among instances: %w", err)
	}
	n.apply(list)
	n.polled = start
	return nil
}

// resync takes a full listing: it replaces what the node knows, and queues
// the pods whose instance changed or is gone, and the live pods that have an
// instance the listing lacks (deleted behind the node's back).
func (n *Node) resync(list []provider.Instance) {
	fresh := make(map[types.UID]*provider.Instance, len(list))
	byPod := make(map[string][]types.UID, len(list))
	var changed []string
	n.mu.Lock()
	for i := range list {
		in := &list[i]
		uid := podUID(in)
		fresh[uid] = in
		key := podKey(in)
		byPod[key] = append(byPod[key], uid)
		if fp := fingerprintOf(in); n.fingerprint[uid] != fp {
			n.fingerprint[uid] = fp
			changed = append(changed, key)
		}
	}
	for uid := range n.fingerprint {
		if _, ok := fresh[uid]; !ok {
			// Gone from the listing (deleted): its pod learns why.
			delete(n.fingerprint, uid)
			if old := n.groups[uid]; old != nil {
				changed = append(changed, podKey(old))
			}
		}
	}
	n.groups, n.byPod = fresh, byPod
	n.mu.Unlock()
	if pods, err := n.pods.List(labels.Everything()); err == nil {
		for _, p := range pods {
			if _, ok := fresh[p.UID]; !ok && hasInstance(p) && p.DeletionTimestamp == nil &&
				p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				changed = append(changed, p.Namespace+"/"+p.Name)
			}
		}
	}
	for _, key := range changed {
		n.queue.Add(key)
	}
}

// apply takes what changed: each instance replaces what the node knew of
// it, a deleted one is forgotten, and the pods of those that changed are
// queued. Its work is what changed, never every instance.
func (n *Node) apply(list []provider.Instance) {
	var changed []string
	n.mu.Lock()
	for i := range list {
		in := &list[i]
		uid, key := podUID(in), podKey(in)
		if in.Status == provider.StatusDeleted {
			if _, ok := n.groups[uid]; ok {
				n.dropLocked(uid, key)
				changed = append(changed, key)
			}
			continue
		}
		if _, ok := n.groups[uid]; !ok {
			n.byPod[key] = append(n.byPod[key], uid)
		}
		n.groups[uid] = in
		if fp := fingerprintOf(in); n.fingerprint[uid] != fp {
			n.fingerprint[uid] = fp
			changed = append(changed, key)
		}
	}
	n.mu.Unlock()
	for _, key := range changed {
		n.queue.Add(key)
	}
}

// dropLocked forgets the instance of pod uid (pod key). Call with mu held.
func (n *Node) dropLocked(uid types.UID, key string) {
	delete(n.groups, uid)
	delete(n.fingerprint, uid)
	if uids := slices.DeleteFunc(n.byPod[key], func(u types.UID) bool { return u == uid }); len(uids) > 0 {
		n.byPod[key] = uids
	} else {
		delete(n.byPod, key)
	}
}

// podKey is the "namespace/name" of an instance's pod.
func podKey(in *provider.Instance) string { return in.Tags[TagNamespace] + "/" + in.Tags[TagPod] }

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
	return types.UID(in.Tags[TagPodUID])
}

// instanceID is the ID of pod's instance: the last poll's, else the one
// its status names; empty when none.
func (n *Node) instanceID(pod *corev1.Pod) string {
	if in := n.group(pod.UID); in != nil {
		return in.ID
	}
	return groupIDOf(pod)
}

func (n *Node) group(uid types.UID) *provider.Instance {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[uid]
}
