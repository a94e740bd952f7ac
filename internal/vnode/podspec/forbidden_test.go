package podspec

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestForbidden(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		mod  func(*corev1.PodSpec)
		want string
	}{
		{"plain", func(*corev1.PodSpec) {}, ""},
		{"hostNetwork", func(s *corev1.PodSpec) { s.HostNetwork = true }, "spec.hostNetwork: Forbidden"},
		{"hostPID", func(s *corev1.PodSpec) { s.HostPID = true }, "spec.hostPID: Forbidden"},
		{"hostIPC", func(s *corev1.PodSpec) { s.HostIPC = true }, "spec.hostIPC: Forbidden"},
		{"hostPath", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "ok"}, {Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, `spec.volumes[1].hostPath: Forbidden: volume "root" mounts / of the host`},
		{"privileged", func(s *corev1.PodSpec) {
			s.Containers = append(s.Containers, corev1.Container{Name: "side", SecurityContext: &corev1.SecurityContext{Privileged: &yes}})
		}, `spec.containers[1].securityContext.privileged: Forbidden: container "side"`},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}
		tc.mod(&pod.Spec)
		got := ForbiddenField(pod)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: ForbiddenField = %q, want %q", tc.name, got, tc.want)
		}
	}
}
