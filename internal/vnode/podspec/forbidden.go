package podspec

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ForbiddenField names the first field of pod that asks for what an ECI
// instance never gives, in the form of Kubernetes' field errors: the
// host's namespaces or files, or privileges over it, or a security setting
// it cannot honour (unsupportedSecurity); "" if there is none.
func ForbiddenField(pod *corev1.Pod) string {
	spec := pod.Spec
	field := func(path, why string) string {
		return fmt.Sprintf("%s: Forbidden: %s: a spot ECI instance is isolated from the host", path, why)
	}
	switch {
	case spec.HostNetwork:
		return field("spec.hostNetwork", "the host's network is not available")
	case spec.HostPID:
		return field("spec.hostPID", "the host's process namespace is not available")
	case spec.HostIPC:
		return field("spec.hostIPC", "the host's IPC namespace is not available")
	}
	for i, v := range spec.Volumes {
		if v.HostPath != nil {
			return field(fmt.Sprintf("spec.volumes[%d].hostPath", i), fmt.Sprintf("volume %q mounts %s of the host", v.Name, v.HostPath.Path))
		}
	}
	check := func(kind string, cs []corev1.Container) string {
		for i, c := range cs {
			if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
				return field(fmt.Sprintf("spec.%s[%d].securityContext.privileged", kind, i), fmt.Sprintf("container %q asks to be privileged", c.Name))
			}
		}
		return ""
	}
	if msg := check("initContainers", spec.InitContainers); msg != "" {
		return msg
	}
	if msg := check("containers", spec.Containers); msg != "" {
		return msg
	}
	return unsupportedSecurity(pod)
}

// IgnoredEphemeralContainers says, in the form of a field error, that the
// pod's ephemeral containers (kubectl debug) will not run: an instance's
// containers are fixed when it is made. "" if it has none.
func IgnoredEphemeralContainers(pod *corev1.Pod) string {
	cs := pod.Spec.EphemeralContainers
	if len(cs) == 0 {
		return ""
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = strconv.Quote(c.Name)
	}
	return fmt.Sprintf("spec.ephemeralContainers: Forbidden: ephemeral containers (%s) cannot be added to a spot ECI instance, whose containers are fixed when it is made; they will not run",
		strings.Join(names, ", "))
}
