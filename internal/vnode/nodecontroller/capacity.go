package nodecontroller

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// maxPods is the node's pods, whatever the stock. The bound on pods is
// Kubernetes', not the market's: a pod that waits for spot stock holds a
// slot with no instance, and pay-as-you-go (and fallback) has no stock, so
// counting sellable instances would refuse the very pods that should wait
// on the node with an event. 20,000 is ACK's advice for a cluster's pods on
// virtual nodes behind many Services, and well above the 1,000-pod storms.
const maxPods = 20000

// minCapacity is the floor of the node's capacity, and its capacity when
// the backend gives no numbers (the real cloud says only whether a pool has
// stock) or cannot be asked at first registration: each pod slot holds the
// smallest size the spec method sells (2 vCPU) with 8 GiB, and the 30 GiB
// of temporary storage every instance has (ephemeral storage, which is the
// instances' own and no market's: it is the node's whatever the stock).
var minCapacity = corev1.ResourceList{
	corev1.ResourceCPU:              *resource.NewQuantity(2*maxPods, resource.DecimalSI),
	corev1.ResourceMemory:           *resource.NewQuantity(8*maxPods<<30, resource.BinarySI),
	corev1.ResourcePods:             *resource.NewQuantity(maxPods, resource.DecimalSI),
	corev1.ResourceEphemeralStorage: *resource.NewQuantity(eciapi.DefaultEphemeralStorage*maxPods<<30, resource.BinarySI),
}

// The ceiling of the node's capacity, in the scheduler's units: its
// scores multiply allocatable by 100 in int64 (noderesources'
// leastRequestedScore), and an overflow fails a pod's scheduling with an
// invalid score once two nodes fit it. The default market (10,000 of each
// pool) is past it in memory: a zone sells about 400 million GiB.
const (
	maxMilliCPU    = 1e15    // 10^12 vCPU
	maxMemoryBytes = 1 << 56 // 64 PiB
)

// capacityOf is the node's capacity (and allocatable) from the pools of its
// zone, or of its region when it has none.
//
// The rule: cpu and memory are the sum over the pools of stock × size,
// what the market can sell as spot now. Stock, not what is left of it: the
// scheduler takes the node's own pods off allocatable itself (and so other
// nodes of the same zone count the same stock: an upper bound). The sum is
// floored at minCapacity because pay-as-you-go is sold without stock (the
// service has no limit on it; the real cloud's is the account's quota, which
// no API here reports) and because a pod without fallback must still be
// scheduled to wait for stock with its event: a market whose stock a test or
// an operator set to 0 never makes the scheduler refuse pods. Pools without
// numbers count for nothing; with none at all the node has minCapacity.
func capacityOf(pools []provider.Pool) corev1.ResourceList {
	var milliCPU, bytes float64
	for _, p := range pools {
		if p.Stock <= 0 {
			continue
		}
		milliCPU += float64(p.Stock) * float64(p.VCPU) * 1000
		bytes += float64(p.Stock) * p.MemoryGiB * (1 << 30)
	}
	cpu := clamp(milliCPU, minCapacity.Cpu().MilliValue(), maxMilliCPU)
	memory := clamp(bytes, minCapacity.Memory().Value(), maxMemoryBytes)
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(cpu, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memory, resource.BinarySI),
		corev1.ResourcePods:   minCapacity[corev1.ResourcePods],
		// The scheduler fits ephemeral-storage requests (the limits, when
		// only those are set) in it.
		corev1.ResourceEphemeralStorage: minCapacity[corev1.ResourceEphemeralStorage],
	}
}

// clamp is v in [lo, hi] as an int64; v is a float so that no sum of stock
// overflows before it is bounded.
func clamp(v float64, lo, hi int64) int64 {
	switch {
	case math.IsNaN(v) || v < float64(lo):
		return lo
	case v > float64(hi):
		return hi
	}
	return int64(v)
}
