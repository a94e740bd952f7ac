package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The limits a pod meets on its way to an instance: as many environment
// variables as an instance takes less the kubernetes service's (the node's
// check, before it asks the service), and any pod name Kubernetes allows,
// 253 characters with dots, which the node turns into an instance name the
// service takes and a hostname as a kubelet cuts it.
func TestPodLimitsReachTheInstance(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	pod := func(name string, vars int) string {
		var env strings.Builder
		for i := range vars {
			fmt.Fprintf(&env, "    - {name: V%d, value: x}\n", i)
		}
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:
    k8s.aliyun.com/eci-use-specs: "2-4Gi"
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo host=$(hostname) vars=$(env | grep -c '^V[0-9]*=x$') service=$KUBERNETES_SERVICE_HOST"]
    env:
%s`, name, env.String())
	}
	// 1,000 less the 8 variables of the kubernetes service.
	const limit = 992
	long := strings.Repeat("a", 62) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 62)
	apply(t, ns, pod("at-limit", limit))
	apply(t, ns, pod("over-limit", limit+1))
	apply(t, ns, pod(long, 1))
	for name, want := range map[string]string{
		"at-limit": fmt.Sprintf("host=at-limit vars=%d service=", limit),
		long:       "host=" + strings.Repeat("a", 62) + " vars=1 service=",
	} {
		eventually(t, 60*time.Second, name[:min(len(name), 20)]+" Succeeded with its log", func() (bool, string) {
			phase := kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}")
			if phase != "Succeeded" {
				return false, phase
			}
			logs := kubectl(t, "-n", ns, "logs", name)
			return strings.HasPrefix(logs, want) && !strings.HasSuffix(strings.TrimSpace(logs), "service="), logs
		})
	}
	want := fmt.Sprintf("spec.containers[0].env: Too many: %d: must have at most %d items", limit+1, limit)
	eventually(t, 60*time.Second, "over-limit waiting in CreateContainerConfigError", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "over-limit", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}")
		return strings.HasPrefix(out, "CreateContainerConfigError "+want), out
	})
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=over-limit", "-o", "custom-columns=TYPE:.type,REASON:.reason,MESSAGE:.message")
	if !strings.Contains(events, "Warning") || !strings.Contains(events, "Error: "+want) {
		t.Errorf("over-limit's events lack the Warning naming the field and the limit:\n%s", events)
	}
	for _, g := range groups(t, ns) {
		if strings.Contains(g.ContainerGroupName, "over-limit") {
			t.Errorf("an instance was asked for the pod over the limit: %s", g.ContainerGroupName)
		}
	}
}
