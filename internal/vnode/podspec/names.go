package podspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// groupName is the ContainerGroupName of a pod's instance: NAMESPACE-NAME,
// in ECI's alphabet (lowercase letters, digits and hyphens: a pod name's
// dots become hyphens) and, when longer than 128 characters (a pod name
// may have 253), cut with a hash of the whole so that two long names that
// share a beginning stay apart. The pod's UID, not this name, is what ties
// an instance to its pod (ClientToken and tags).
func groupName(pod *corev1.Pod) string {
	full := pod.Namespace + "-" + pod.Name
	name := strings.ReplaceAll(full, ".", "-")
	if len(name) <= eciapi.MaxContainerGroupName {
		return name
	}
	sum := sha256.Sum256([]byte(full))
	suffix := "-" + hex.EncodeToString(sum[:4])
	return strings.TrimRight(name[:eciapi.MaxContainerGroupName-len(suffix)], "-") + suffix
}

// hostName is a pod's hostname as a kubelet makes it: spec.hostname, else
// the pod's name cut to 63 characters without a trailing hyphen or dot.
func hostName(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	return eciapi.ShortHostName(pod.Name)
}

// checkEnvCount refuses a container whose environment, with the variables
// the node adds for the kubernetes service (KUBERNETES_SERVICE_HOST and its
// kin), would exceed what an instance takes (eciapi.MaxEnvironmentVars):
// the pod may have MaxEnvironmentVars less those it does not set itself.
// Said before the instance is asked for, as a kubelet says a config error:
// the pod waits in CreateContainerConfigError (its envFrom sources may
// shrink) with a Warning naming the field and the limit.
func (s *sources) checkEnvCount(c corev1.Container, total int, service []string, own map[string]bool) error {
	if total <= eciapi.MaxEnvironmentVars {
		return nil
	}
	added := 0
	for _, k := range service {
		if !own[k] {
			added++
		}
	}
	field := "env"
	for i, pc := range s.pod.Spec.Containers {
		if pc.Name == c.Name {
			field = fmt.Sprintf("spec.containers[%d].env", i)
		}
	}
	return &ConfigError{reasonConfig, fmt.Sprintf("%s: Too many: %d: must have at most %d items (container %q, env and envFrom together: an instance takes %d environment variables and the node adds the %d of the kubernetes service)",
		field, total-added, eciapi.MaxEnvironmentVars-added, c.Name, eciapi.MaxEnvironmentVars, added)}
}
