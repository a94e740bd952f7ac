package podspec

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

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
