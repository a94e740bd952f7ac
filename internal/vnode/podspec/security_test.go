package podspec

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestSecurityMerge: the pod's runAsUser, runAsGroup, runAsNonRoot and
// seccompProfile reach each container unless it sets its own, as
// Kubernetes' DetermineEffectiveSecurityContext merges them; the rest is
// the container's or the group's.
func TestSecurityMerge(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](3000), RunAsNonRoot: ptr(true),
			FSGroup: ptr[int64](2000), SupplementalGroups: []int64{4000}, SupplementalGroupsPolicy: ptr(corev1.SupplementalGroupsPolicyStrict),
			Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{
			{Name: "inherits"},
			{Name: "own", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr[int64](0), RunAsNonRoot: ptr(false),
				ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}, Drop: []corev1.Capability{"ALL"}}}},
		}}}
	wantInherits := &eciapi.ContainerSecurityContext{RunAsUser: ptr[int64](1000), RunAsGroup: ptr[int64](3000), RunAsNonRoot: true, SeccompProfile: "RuntimeDefault"}
	if got := containerSecurity(pod, pod.Spec.Containers[0]); !reflect.DeepEqual(got, wantInherits) {
		t.Errorf("inherits: %+v, want %+v", got, wantInherits)
	}
	wantOwn := &eciapi.ContainerSecurityContext{RunAsUser: ptr[int64](0), RunAsGroup: ptr[int64](3000), SeccompProfile: "RuntimeDefault",
		ReadOnlyRootFilesystem: true, AllowPrivilegeEscalation: ptr(false),
		Capability: &eciapi.Capability{Add: []string{"NET_RAW"}, Drop: []string{"ALL"}}}
	if got := containerSecurity(pod, pod.Spec.Containers[1]); !reflect.DeepEqual(got, wantOwn) {
		t.Errorf("own: %+v, want %+v", got, wantOwn)
	}
	wantPod := &eciapi.SecurityContext{FsGroup: ptr[int64](2000), SupplementalGroups: []int64{4000}, SupplementalGroupsPolicy: "Strict",
		Sysctls: []eciapi.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}}
	if got := podSecurity(pod); !reflect.DeepEqual(got, wantPod) {
		t.Errorf("pod: %+v, want %+v", got, wantPod)
	}
	plain := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", SecurityContext: &corev1.SecurityContext{}}}}}
	if sc, psc := containerSecurity(plain, plain.Spec.Containers[0]), podSecurity(plain); sc != nil || psc != nil {
		t.Errorf("a pod without settings sends %+v and %+v, want none", sc, psc)
	}
}

// TestUnsupportedSecurity: what an instance cannot honour is named, as a
// field error, and the pod refused; what it honours passes.
func TestUnsupportedSecurity(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*corev1.PodSpec)
		want string
	}{
		{"honoured", func(s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr[int64](1), FSGroup: ptr[int64](2),
				FSGroupChangePolicy: ptr(corev1.FSGroupChangeOnRootMismatch), SeccompProfile: &corev1.SeccompProfile{Type: "RuntimeDefault"},
				AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
				Sysctls:         []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}}
			s.Containers[0].SecurityContext = &corev1.SecurityContext{ProcMount: ptr(corev1.DefaultProcMount),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW", "net_admin", "CAP_SYS_PTRACE"}, Drop: []corev1.Capability{"ALL"}}}
		}, ""},
		{"pod seLinuxOptions", func(s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Level: "s0:c1"}}
		}, "spec.securityContext.seLinuxOptions: Forbidden"},
		{"pod seccomp Unconfined", func(s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}, `spec.securityContext.seccompProfile.type: Unsupported value: "Unconfined"`},
		{"hostUsers false", func(s *corev1.PodSpec) { s.HostUsers = ptr(false) }, "spec.hostUsers: Forbidden"},
		{"windowsOptions", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{}}
		}, "spec.containers[0].securityContext.windowsOptions: Forbidden"},
		{"appArmor RuntimeDefault", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}}
		}, `spec.containers[0].securityContext.appArmorProfile.type: Unsupported value: "RuntimeDefault"`},
		{"seccomp Localhost", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr("p.json")}}
		}, `spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Localhost"`},
		{"procMount Unmasked", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{ProcMount: ptr(corev1.UnmaskedProcMount)}
		}, `spec.containers[0].securityContext.procMount: Unsupported value: "Unmasked"`},
		{"SYS_ADMIN", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW", "SYS_ADMIN"}}}
		}, `spec.containers[0].securityContext.capabilities.add[1]: Forbidden: container "main" asks for capability SYS_ADMIN`},
		{"add ALL", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}}}
		}, `capabilities.add[0]: Forbidden`},
		{"unknown drop", func(s *corev1.PodSpec) {
			s.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"NET_RAWW"}}}}}
		}, `spec.initContainers[0].securityContext.capabilities.drop[0]: Unsupported value: "NET_RAWW"`},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}}}
		tc.mod(&pod.Spec)
		got := ForbiddenField(pod)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: ForbiddenField = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestForbiddenSysctl: an unsafe sysctl gets the kubelet's admission
// message; safe ones pass.
func TestForbiddenSysctl(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{
		Sysctls: []corev1.Sysctl{{Name: "net.ipv4.tcp_syncookies", Value: "1"}}}}}
	if got := ForbiddenSysctl(pod); got != "" {
		t.Errorf("a safe sysctl: %q", got)
	}
	pod.Spec.SecurityContext.Sysctls = append(pod.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: "net.ipv4.route_localnet", Value: "1"})
	if got, want := ForbiddenSysctl(pod), `forbidden sysctl: "net.ipv4.route_localnet" not allowlisted`; got != want {
		t.Errorf("ForbiddenSysctl = %q, want %q", got, want)
	}
}
