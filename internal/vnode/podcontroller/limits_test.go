package podcontroller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
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

// TestStorageRequest: the pod's ephemeral-storage limits, emptyDir size
// limits and requests past ECI's 30 GiB go into the request.
func TestStorageRequest(t *testing.T) {
	gi := resource.MustParse("1Gi")
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "a", Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("40Gi")},
				Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("25Gi")}}},
			{Name: "b", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("5500Mi")}}},
		},
		Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &gi}}},
			{Name: "plain", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}}
	req := eciapi.CreateContainerGroupRequest{Containers: []eciapi.Container{{Name: "a"}, {Name: "b"}},
		Volumes: []eciapi.Volume{{Name: "data", EmptyDirVolume: &eciapi.EmptyDirVolume{}}, {Name: "plain", EmptyDirVolume: &eciapi.EmptyDirVolume{}}}}
	storageRequest(pod, &req)
	if req.Containers[0].EphemeralStorageLimit != "40Gi" || req.Containers[1].EphemeralStorageLimit != "" {
		t.Errorf("container limits %q %q, want 40Gi and none", req.Containers[0].EphemeralStorageLimit, req.Containers[1].EphemeralStorageLimit)
	}
	if req.Volumes[0].EmptyDirVolume.SizeLimit != "1Gi" || req.Volumes[1].EmptyDirVolume.SizeLimit != "" {
		t.Errorf("size limits %q %q, want 1Gi and none", req.Volumes[0].EmptyDirVolume.SizeLimit, req.Volumes[1].EmptyDirVolume.SizeLimit)
	}
	// 25Gi + 5500Mi is 30.37 GiB: one GiB on top of the 30.
	if req.EphemeralStorage != 1 {
		t.Errorf("EphemeralStorage %d, want 1", req.EphemeralStorage)
	}
	small := eciapi.CreateContainerGroupRequest{Containers: []eciapi.Container{{Name: "a"}}}
	storageRequest(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}}, &small)
	if small.EphemeralStorage != 0 || small.Containers[0].EphemeralStorageLimit != "" {
		t.Errorf("a pod that asks for nothing: %+v", small)
	}
}
