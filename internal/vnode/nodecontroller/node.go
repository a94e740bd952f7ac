// Package nodecontroller keeps the virtual node's Node object and Lease,
// as a kubelet does: its labels, taint, capacity (what the market sells),
// conditions and kubelet port, and a fresh Lease so that the node
// lifecycle controller does not mark it unreachable.
package nodecontroller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/spoteci/spoteci/internal/vnode/provider"
)

// TaintKey=TaintValue:NoSchedule is the taint the node carries in an
// existing cluster, so that only pods that tolerate it land on spot
// instances.
const (
	TaintKey   = "virtual-kubelet.io/provider"
	TaintValue = "spoteci"
)

// Config sets up a Controller.
type Config struct {
	// Name is the Node's.
	Name string
	Kube kubernetes.Interface
	// Taint the node TaintKey=TaintValue:NoSchedule.
	Taint bool
	// IP is the InternalIP, where the apiserver reaches the kubelet API.
	IP string
	// Provider says what the market sells, for the capacity; nil leaves
	// the node at minCapacity.
	Provider provider.Provider
	// Zone is the node's zone; empty: the whole region.
	Zone string
	// Labels are put on the Node over its own, as the kubelet's
	// --node-labels: another "type" keeps off it the pods the webhook routes
	// (nodeSelector type: virtual-kubelet).
	Labels map[string]string
	// Taints are put on the Node when it registers, beside its own, as the
	// kubelet's --register-with-taints.
	Taints []corev1.Taint
	Logger *slog.Logger
}

// Controller keeps the node's Node object and Lease.
type Controller struct {
	name        string
	kube        kubernetes.Interface
	taint       bool
	ip          string
	kubeletPort int
	provider    provider.Provider
	zone        string
	extraLabels map[string]string
	extraTaints []corev1.Taint
	log         *slog.Logger
	// capacity is the last known; nil before the first registration. One
	// goroutine at a time uses it: the registration, then the status loop.
	capacity corev1.ResourceList
}

// New returns a Controller of cfg.
func New(cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{name: cfg.Name, kube: cfg.Kube, taint: cfg.Taint, ip: cfg.IP, provider: cfg.Provider, zone: cfg.Zone, extraLabels: cfg.Labels, extraTaints: cfg.Taints, log: cfg.Logger}
}

// capacityTimeout bounds the market's answer: the node's status, its Ready
// heartbeat included, waits for it.
const capacityTimeout = 10 * time.Second

// Register creates or updates the Node object, with the kubelet API at
// kubeletPort. It fails for a zone the backend does not sell in, where
// every pod would fail; any other failure to read the market leaves the
// capacity at its last value (minCapacity at first), and the status loop,
// which starts soon after, asks again and reports it.
func (c *Controller) Register(ctx context.Context, kubeletPort int) error {
	c.kubeletPort = kubeletPort
	if err := c.refreshCapacity(ctx); errors.Is(err, provider.ErrUnknownZone) {
		return fmt.Errorf("vnode: zone %q: %w", c.zone, err)
	}
	return c.join(ctx)
}

// join creates or updates the Node object, retrying when another writer
// (the node lifecycle controller, the node's previous run) got in between.
// (KeepLease makes its Lease.)
func (c *Controller) join(ctx context.Context) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error { return c.registerOnce(ctx) })
}

func (c *Controller) registerOnce(ctx context.Context) error {
	want := c.nodeObject()
	nodes := c.kube.CoreV1().Nodes()
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

// refreshCapacity reads what the market sells in the node's zone (its
// region without one) and makes it the capacity (capacityOf); on failure
// the capacity keeps its last value.
func (c *Controller) refreshCapacity(ctx context.Context) error {
	if c.provider == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, capacityTimeout)
	defer cancel()
	pools, err := c.provider.Pools(ctx, c.zone)
	if err != nil {
		return fmt.Errorf("reading what the market sells for the node's capacity: %w", err)
	}
	c.capacity = capacityOf(pools)
	return nil
}

// currentCapacity is the last known capacity, minCapacity before any.
func (c *Controller) currentCapacity() corev1.ResourceList {
	if c.capacity == nil {
		return minCapacity.DeepCopy()
	}
	return c.capacity
}

// labels are the Node's: a virtual-kubelet's, and the well-known topology
// labels, so that a pod picks a zone's node with a nodeSelector.
func (c *Controller) labels() map[string]string {
	l := map[string]string{
		"type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": c.name,
		"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "spoteci-virtual-node",
	}
	if c.zone != "" {
		l[corev1.LabelTopologyZone] = c.zone
	}
	if c.provider != nil && c.provider.Region() != "" {
		l[corev1.LabelTopologyRegion] = c.provider.Region()
	}
	maps.Copy(l, c.extraLabels)
	return l
}

func (c *Controller) nodeObject() *corev1.Node {
	capacity := c.currentCapacity()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: c.name, Labels: c.labels()},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: c.ip}, {Type: corev1.NodeHostName, Address: c.name}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(c.kubeletPort)}},
			NodeInfo: corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.37.2-spoteci",
				ContainerRuntimeVersion: "containerd://spoteci-eci", OSImage: "spoteci virtual node"},
			Conditions: c.conditions(),
		},
	}
	node.Spec.Taints = slices.Clone(c.extraTaints)
	if c.taint {
		node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: TaintKey, Value: TaintValue, Effect: corev1.TaintEffectNoSchedule})
	}
	return node
}

func (c *Controller) conditions() []corev1.NodeCondition {
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

// KeepStatus writes the status every minute, as a kubelet's heartbeat,
// until ctx ends.
func (c *Controller) KeepStatus(ctx context.Context) {
	wait.NonSlidingUntilWithContext(ctx, func(ctx context.Context) {
		if err := c.updateStatus(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("periodic work", "err", err)
		}
	}, statusPeriod)
}

// statusPeriod is how often the status is written.
const statusPeriod = time.Minute

// updateStatus refreshes the capacity and writes the status. A
// capacity the market could not give keeps its last value: the status is
// written all the same, and the failure returned for the caller to log.
func (c *Controller) updateStatus(ctx context.Context) error {
	capErr := c.refreshCapacity(ctx)
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error { return c.updateNodeStatusOnce(ctx) })
	return errors.Join(err, capErr)
}

func (c *Controller) updateNodeStatusOnce(ctx context.Context) error {
	node, err := c.kube.CoreV1().Nodes().Get(ctx, c.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return c.join(ctx) // someone deleted it: join again
	}
	if err != nil {
		return fmt.Errorf("reading node: %w", err)
	}
	fresh := c.conditions()
	for i := range fresh {
		for _, old := range node.Status.Conditions {
			if old.Type == fresh[i].Type && old.Status == fresh[i].Status {
				fresh[i].LastTransitionTime = old.LastTransitionTime
			}
		}
	}
	node.Status.Conditions = fresh
	node.Status.Capacity, node.Status.Allocatable = c.currentCapacity(), c.currentCapacity()
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(c.kubeletPort)
	if _, err := c.kube.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("writing node status: %w", err)
	}
	return nil
}

// The node's Lease, as a kubelet's: valid 40 s, renewed every 10 s.
const (
	nodeLeaseSeconds = 40
	nodeLeaseRenew   = 10 * time.Second
)

// KeepLease keeps the node's Lease fresh until ctx ends, with the kubelet's
// own lease controller (component-helpers), so the node lifecycle
// controller does not mark the node unreachable. The Lease is made again
// if someone deletes it, owned by the Node so that it goes with the Node.
func (c *Controller) KeepLease(ctx context.Context) {
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(c.log.Handler()))
	lease.NewController(clock.RealClock{}, c.kube, c.name, nodeLeaseSeconds, nil, nodeLeaseRenew,
		c.name, corev1.NamespaceNodeLease, c.ownLease(ctx)).Run(ctx)
}

// ownLease makes the Node the owner of a new Lease, as the kubelet does; a
// Lease is made only once the Node can be read.
func (c *Controller) ownLease(ctx context.Context) lease.ProcessLeaseFunc {
	return func(l *coordinationv1.Lease) error {
		if len(l.OwnerReferences) > 0 {
			return nil
		}
		node, err := c.kube.CoreV1().Nodes().Get(ctx, c.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading node for its lease: %w", err)
		}
		l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}
		return nil
	}
}
