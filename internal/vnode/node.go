// Package vnode is spoteci's virtual node: a kubelet-like agent that joins a
// Kubernetes cluster as a Node and runs the pods bound to it as ECI container
// groups. It follows the Kubernetes controllers' shape: informers fill a
// workqueue of pod keys, and syncPod converges each pod and its instance,
// level-triggered and idempotent by pod UID (the instance's ClientToken).
package vnode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Tags the node puts on the groups it creates.
const (
	TagNode      = "spoteci.io/node"
	TagNamespace = "spoteci.io/namespace"
	TagPod       = "spoteci.io/pod"
	// TagPodUID names the pod by UID, for backends that do not return the
	// ClientToken.
	TagPodUID = "spoteci.io/pod-uid"
	// TagAPIEvict records, at creation, that the pod asked for api-evict.
	TagAPIEvict = "spoteci.io/api-evict"
)

// TaintKey is the taint the node carries in an existing cluster, so that only
// pods that tolerate it land on spot instances.
const TaintKey = "virtual-kubelet.io/provider"

// Config sets up a Node.
type Config struct {
	NodeName string
	Kube     kubernetes.Interface
	// Provider runs the pods' instances.
	Provider Provider
	// Taint the node virtual-kubelet.io/provider=spoteci:NoSchedule.
	Taint bool
	// KubeletListen is the address of the kubelet API (kubectl logs); default 127.0.0.1:0.
	KubeletListen string
	// PollInterval is how often the node lists its instances (one paged
	// listing); default 1 s. Between listings, a pod the node acts on is
	// read by ID.
	PollInterval time.Duration
	// Workers sync pods in parallel; default 16.
	Workers int
	Logger  *slog.Logger
}

// Node is a running virtual node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	kube     kubernetes.Interface
	provider Provider
	pods     corelisters.PodLister
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder

	mu          sync.Mutex
	groups      map[types.UID]*Instance // last poll, by pod UID
	fingerprint map[types.UID]string
	emitted     map[string]bool // uid/reason of events sent
	forwarded   map[types.UID]map[string]bool
	kubeletPort int
	started     time.Time
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
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), kube: cfg.Kube, provider: cfg.Provider,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "vnode-pods"}),
		groups:      map[types.UID]*Instance{},
		fingerprint: map[types.UID]string{},
		emitted:     map[string]bool{},
		forwarded:   map[types.UID]map[string]bool{},
		started:     time.Now(),
	}, nil
}

// Run registers the node and runs it until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	defer n.queue.ShutDown()
	port, serveErr, err := n.serveKubelet(ctx)
	if err != nil {
		return err
	}
	n.kubeletPort = port
	if err := n.register(ctx); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: n.kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	// "kubelet, eci" is what kubectl describe shows in From, as in the guide.
	n.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: "eci"})

	factory := informers.NewSharedInformerFactoryWithOptions(n.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.cfg.NodeName).String()
	}))
	informer := factory.Core().V1().Pods()
	n.pods = informer.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			n.queue.Add(key)
		}
	}
	informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return fmt.Errorf("vnode: pod informer did not sync")
	}
	// Know the instances before the first sync, so a restarted node finds
	// the groups it made instead of asking for them again.
	if err := n.poll(ctx); err != nil {
		n.log.Error("reading instances", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { n.every(ctx, 10*time.Second, n.renewLease) })
	wg.Go(func() { n.every(ctx, time.Minute, n.updateNodeStatus) })
	wg.Go(func() { n.every(ctx, n.cfg.PollInterval, n.poll) })
	for range n.cfg.Workers {
		wg.Go(func() {
			for n.processNext(ctx) {
			}
		})
	}
	n.log.Info("virtual node ready", "kubelet_port", port)
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		n.log.Error("kubelet API stopped", "err", err)
	}
	n.queue.ShutDown()
	wg.Wait()
	return nil
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

// poll reads the node's instances and queues the pods whose instance changed.
func (n *Node) poll(ctx context.Context) error {
	list, err := n.provider.List(ctx, map[string]string{TagNode: n.cfg.NodeName})
	if err != nil {
		return fmt.Errorf("listing instances: %w", err)
	}
	fresh := make(map[types.UID]*Instance, len(list))
	var changed []string
	n.mu.Lock()
	for i := range list {
		in := &list[i]
		uid := podUID(in)
		fresh[uid] = in
		if fp := fingerprintOf(in); n.fingerprint[uid] != fp {
			n.fingerprint[uid] = fp
			changed = append(changed, in.Tags[TagNamespace]+"/"+in.Tags[TagPod])
		}
	}
	for uid := range n.fingerprint {
		if _, ok := fresh[uid]; !ok {
			// Gone from the listing (deleted): its pod learns why.
			delete(n.fingerprint, uid)
			if old := n.groups[uid]; old != nil {
				changed = append(changed, old.Tags[TagNamespace]+"/"+old.Tags[TagPod])
			}
		}
	}
	n.groups = fresh
	n.mu.Unlock()
	// Level-triggered: a live pod whose instance is not listed (deleted behind
	// the node's back, even before a poll saw it) is looked at again.
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
	return nil
}

func fingerprintOf(in *Instance) string {
	b, _ := json.Marshal([]any{in.Status, in.NoticeTime, in.Containers, len(in.Events), in.IP})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// podUID is the UID of an instance's pod: its ClientToken, or its tag where
// the backend does not return the token.
func podUID(in *Instance) types.UID {
	if in.Token != "" {
		return types.UID(in.Token)
	}
	return types.UID(in.Tags[TagPodUID])
}

func (n *Node) group(uid types.UID) *Instance {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[uid]
}

// register creates or updates the Node object, retrying when another writer
// (the node lifecycle controller, the node's previous run) got in between.
func (n *Node) register(ctx context.Context) error {
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error { return n.registerOnce(ctx) }); err != nil {
		return err
	}
	return n.renewLease(ctx)
}

func (n *Node) registerOnce(ctx context.Context) error {
	want := n.nodeObject()
	nodes := n.kube.CoreV1().Nodes()
	got, err := nodes.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if got, err = nodes.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating node %s: %w", want.Name, err)
		}
	case err != nil:
		return fmt.Errorf("reading node %s: %w", want.Name, err)
	default:
		got.Labels, got.Spec.Taints = want.Labels, want.Spec.Taints
		if got, err = nodes.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating node %s: %w", want.Name, err)
		}
	}
	got.Status = want.Status
	if _, err := nodes.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing status of node %s: %w", want.Name, err)
	}
	return nil
}

// The service has no fixed size: the node offers more than any workload here
// asks, so the scheduler never refuses a pod for capacity; stock is the
// market's business, and a pod waits for it with an event.
var capacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("40000"),
	corev1.ResourceMemory: resource.MustParse("160000Gi"),
	corev1.ResourcePods:   resource.MustParse("20000"),
}

func (n *Node) nodeObject() *corev1.Node {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName, Labels: map[string]string{
			"type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": n.cfg.NodeName,
			"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "spoteci-virtual-node",
		}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: n.cfg.NodeName}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(n.kubeletPort)}},
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.37.2-spoteci",
				ContainerRuntimeVersion: "containerd://spoteci-eci", OSImage: "spoteci virtual node"},
			Conditions: n.conditions(),
		},
	}
	if n.cfg.Taint {
		node.Spec.Taints = []corev1.Taint{{Key: TaintKey, Value: "spoteci", Effect: corev1.TaintEffectNoSchedule}}
	}
	return node
}

func (n *Node) conditions() []corev1.NodeCondition {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "spoteci virtual node is ready"),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "instances bring their own memory"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "instances bring their own disk"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "instances bring their own processes"),
	}
}

func (n *Node) updateNodeStatus(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error { return n.updateNodeStatusOnce(ctx) })
}

func (n *Node) updateNodeStatusOnce(ctx context.Context) error {
	node, err := n.kube.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return n.register(ctx) // someone deleted it: join again
	}
	if err != nil {
		return fmt.Errorf("reading node: %w", err)
	}
	fresh := n.conditions()
	for i := range fresh {
		for _, old := range node.Status.Conditions {
			if old.Type == fresh[i].Type && old.Status == fresh[i].Status {
				fresh[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status.Conditions = fresh
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(n.kubeletPort)
	if _, err := n.kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing node status: %w", err)
	}
	return nil
}

// renewLease keeps the node's Lease fresh, as a kubelet does, so the node
// lifecycle controller does not mark it unreachable.
func (n *Node) renewLease(ctx context.Context) error {
	leases := n.kube.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := n.kube.CoreV1().Nodes().Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading node for its lease: %w", err)
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr(n.cfg.NodeName), LeaseDurationSeconds: ptr(int32(40)), RenewTime: &now},
		}
		_, err = leases.Create(ctx, lease, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating lease: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading lease: %w", err)
	}
	lease.Spec.RenewTime, lease.Spec.HolderIdentity = &now, ptr(n.cfg.NodeName)
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renewing lease: %w", err)
	}
	return nil
}
