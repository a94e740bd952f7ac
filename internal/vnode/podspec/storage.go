package podspec

import (
	corev1 "k8s.io/api/core/v1"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// storageRequest asks for the pod's ephemeral storage as ECI's virtual node
// does: each container's ephemeral-storage limit, each emptyDir's sizeLimit,
// and the instance's temporary storage raised past ECI's 30 GiB by as much
// as the containers' ephemeral-storage requests go over it (whole GiB).
func storageRequest(pod *corev1.Pod, req *eciapi.CreateContainerGroupRequest) {
	var requested int64
	for i, c := range pod.Spec.Containers {
		if q, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; ok && i < len(req.Containers) {
			req.Containers[i].EphemeralStorageLimit = q.String()
		}
		if q, ok := c.Resources.Requests[corev1.ResourceEphemeralStorage]; ok {
			requested += q.Value()
		}
	}
	if over := requested - eciapi.DefaultEphemeralStorage<<30; over > 0 {
		req.EphemeralStorage = int((over + 1<<30 - 1) >> 30)
	}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Sign() <= 0 {
			continue
		}
		for i := range req.Volumes {
			if req.Volumes[i].Name == v.Name && req.Volumes[i].EmptyDirVolume != nil {
				req.Volumes[i].EmptyDirVolume.SizeLimit = v.EmptyDir.SizeLimit.String()
			}
		}
	}
}
