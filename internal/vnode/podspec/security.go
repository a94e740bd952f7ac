package podspec

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// A pod's securityContext as a kubelet honours it with runc: the pod's
// runAsUser, runAsGroup, runAsNonRoot and seccompProfile merged into each
// container's (the container's own winning), sent as the container's
// SecurityContext; fsGroup, supplementalGroups, their policy and sysctls
// as the group's. What an instance cannot honour is refused by
// unsupportedSecurity, never dropped.

// containerSecurity is the ECI security context of container c of pod;
// nil when neither sets anything.
func containerSecurity(pod *corev1.Pod, c corev1.Container) *eciapi.ContainerSecurityContext {
	out := &eciapi.ContainerSecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		out.RunAsUser, out.RunAsGroup = psc.RunAsUser, psc.RunAsGroup
		out.RunAsNonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		if p := psc.SeccompProfile; p != nil {
			out.SeccompProfile = string(p.Type)
		}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			out.RunAsUser = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			out.RunAsGroup = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			out.RunAsNonRoot = *sc.RunAsNonRoot
		}
		if p := sc.SeccompProfile; p != nil {
			out.SeccompProfile = string(p.Type)
		}
		out.ReadOnlyRootFilesystem = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
		out.AllowPrivilegeEscalation = sc.AllowPrivilegeEscalation
		if caps := sc.Capabilities; caps != nil && (len(caps.Add) > 0 || len(caps.Drop) > 0) {
			out.Capability = &eciapi.Capability{}
			for _, c := range caps.Add {
				out.Capability.Add = append(out.Capability.Add, string(c))
			}
			for _, c := range caps.Drop {
				out.Capability.Drop = append(out.Capability.Drop, string(c))
			}
		}
	}
	if *out == (eciapi.ContainerSecurityContext{}) {
		return nil
	}
	return out
}

// podSecurity is the ECI security context of pod's group; nil when the pod
// sets none of its fields.
func podSecurity(pod *corev1.Pod) *eciapi.SecurityContext {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return nil
	}
	out := &eciapi.SecurityContext{FsGroup: psc.FSGroup, SupplementalGroups: psc.SupplementalGroups}
	if p := psc.SupplementalGroupsPolicy; p != nil {
		out.SupplementalGroupsPolicy = string(*p)
	}
	for _, s := range psc.Sysctls {
		out.Sysctls = append(out.Sysctls, eciapi.Sysctl{Name: s.Name, Value: s.Value})
	}
	if out.FsGroup == nil && len(out.SupplementalGroups) == 0 && out.SupplementalGroupsPolicy == "" && len(out.Sysctls) == 0 {
		return nil
	}
	return out
}

// unsupportedSecurity names the first security setting of pod that an
// instance cannot honour, as a Kubernetes field error; "" if there is none.
// Honoured as asked, hence accepted: appArmorProfile Unconfined (no
// profile is applied), procMount Default, both fsGroupChangePolicy values
// (volumes are new, so owned at creation either way) and both
// seLinuxChangePolicy values (no SELinux label is applied).
func unsupportedSecurity(pod *corev1.Pod) string {
	forbid := func(path, why string) string {
		return fmt.Sprintf("%s: Forbidden: %s: not supported by spot ECI instances", path, why)
	}
	unsupported := func(path, value, supported, why string) string {
		return fmt.Sprintf("%s: Unsupported value: %q: supported values: %s: %s", path, value, supported, why)
	}
	// Shared by the pod's and the containers' contexts.
	common := func(path string, selinux *corev1.SELinuxOptions, windows *corev1.WindowsSecurityContextOptions,
		seccomp *corev1.SeccompProfile, apparmor *corev1.AppArmorProfile) string {
		switch {
		case selinux != nil:
			return forbid(path+".seLinuxOptions", "SELinux labels are not applied")
		case windows != nil:
			return forbid(path+".windowsOptions", "instances run Linux containers")
		case seccomp != nil && seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault:
			return unsupported(path+".seccompProfile.type", string(seccomp.Type), `"RuntimeDefault"`,
				"every container keeps the runtime's default seccomp filter on the shared kernel")
		case apparmor != nil && apparmor.Type != corev1.AppArmorProfileTypeUnconfined:
			return unsupported(path+".appArmorProfile.type", string(apparmor.Type), `"Unconfined"`, "no AppArmor profile is applied")
		}
		return ""
	}
	spec := pod.Spec
	if spec.HostUsers != nil && !*spec.HostUsers {
		return forbid("spec.hostUsers", "user namespaces are not available")
	}
	if psc := spec.SecurityContext; psc != nil {
		if msg := common("spec.securityContext", psc.SELinuxOptions, psc.WindowsOptions, psc.SeccompProfile, psc.AppArmorProfile); msg != "" {
			return msg
		}
	}
	check := func(kind string, cs []corev1.Container) string {
		for i, c := range cs {
			sc := c.SecurityContext
			if sc == nil {
				continue
			}
			path := "spec." + kind + "[" + strconv.Itoa(i) + "].securityContext"
			if msg := common(path, sc.SELinuxOptions, sc.WindowsOptions, sc.SeccompProfile, sc.AppArmorProfile); msg != "" {
				return msg
			}
			if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
				return unsupported(path+".procMount", string(*sc.ProcMount), `"Default"`, "/proc stays masked on the shared kernel")
			}
			if caps := sc.Capabilities; caps != nil {
				for j, name := range caps.Add {
					p := fmt.Sprintf("%s.capabilities.add[%d]", path, j)
					norm, ok := eciapi.CapabilityName(string(name))
					switch {
					case !ok:
						return unsupported(p, string(name), "Linux capabilities", "unknown capability")
					case !eciapi.Addable(norm):
						return forbid(p, fmt.Sprintf("container %q asks for capability %s, which acts on the shared kernel (addable: %v)", c.Name, name, eciapi.AddableCapabilities))
					}
				}
				for j, name := range caps.Drop {
					if _, ok := eciapi.CapabilityName(string(name)); !ok {
						return unsupported(fmt.Sprintf("%s.capabilities.drop[%d]", path, j), string(name), "Linux capabilities", "unknown capability")
					}
				}
			}
		}
		return ""
	}
	if msg := check("initContainers", spec.InitContainers); msg != "" {
		return msg
	}
	return check("containers", spec.Containers)
}

// ForbiddenSysctl is the kubelet's admission message for the first sysctl
// of pod that is not allowed (Kubernetes' safe set, as a kubelet without
// --allowed-unsafe-sysctls); "" if there is none.
func ForbiddenSysctl(pod *corev1.Pod) string {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return ""
	}
	for _, s := range psc.Sysctls {
		if !eciapi.SafeSysctl(s.Name) {
			return fmt.Sprintf("forbidden sysctl: %q not allowlisted", s.Name)
		}
	}
	return ""
}
