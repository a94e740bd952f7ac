package podcontroller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/spoteci/spoteci/internal/vnode/provider"
)

// TestEvictedStatus: an instance the runtime evicted fails its pod as a
// kubelet's eviction does, Evicted with the message, once its containers
// ended, even those that exited 0 on SIGTERM.
func TestEvictedStatus(t *testing.T) {
	pod := testPod()
	started := wall0.Add(-30 * time.Second)
	msg := "Pod ephemeral local storage usage exceeds the total limit of containers 1Gi. "
	g := &provider.Instance{ID: "eci-1", Status: provider.StatusRunning, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerRunning, Started: started}}},
		Events:     []provider.Event{{Type: "Warning", Reason: ReasonEvicted, Message: msg}}}
	if st := podStatus(pod, g); st.Phase != corev1.PodRunning || st.Reason != "" {
		t.Errorf("while its containers stop: %s %s, want Running", st.Phase, st.Reason)
	}
	// Its containers ended (0, on SIGTERM) before the group says so: the
	// pod's phase is final already, and so is the eviction.
	g.Containers[0].State = provider.ContainerState{State: provider.ContainerTerminated, ExitCode: 0, Reason: "Completed", Started: started, Finished: wall0}
	for _, status := range []provider.InstanceStatus{provider.StatusRunning, provider.StatusFailed} {
		g.Status = status
		st := podStatus(pod, g)
		if st.Phase != corev1.PodFailed || st.Reason != ReasonEvicted || st.Message != msg {
			t.Errorf("evicted, group %s: %s %s %q, want Failed Evicted %q", status, st.Phase, st.Reason, st.Message, msg)
		}
	}
	st := podStatus(pod, g)
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Ready of an evicted pod %+v", c)
	}
	// A container's own Evicted-looking event is no eviction of the pod.
	other := &provider.Instance{ID: "eci-2", Status: provider.StatusFailed, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerTerminated, ExitCode: 1, Reason: "Error"}}},
		Events:     []provider.Event{{Type: "Warning", Reason: ReasonEvicted, Message: "x", Container: "pi"}}}
	if st := podStatus(testPod(), other); st.Reason != "" {
		t.Errorf("reason %q from a container's event", st.Reason)
	}
}
