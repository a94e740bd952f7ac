package podcontroller

import (
	"github.com/spoteci/spoteci/internal/vnode/provider"
)

// ReasonEvicted is the reason of a pod whose instance was evicted for its
// ephemeral storage, as a kubelet's eviction manager says it.
const ReasonEvicted = "Evicted"

// evictionOf is the message of the instance's eviction, "" if it was not
// evicted: the runtime's Warning Evicted event, which the node forwards.
func evictionOf(in *provider.Instance) string {
	for _, e := range in.Events {
		if e.Reason == ReasonEvicted && e.Container == "" {
			return e.Message
		}
	}
	return ""
}
