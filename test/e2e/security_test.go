package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// securityPod is a busybox pod running script, with podSC and
// containerSC (YAML bodies, "" for none) as its pod's and container's
// securityContext, and an emptyDir at /data.
func securityPod(name, podSC, containerSC, script string) string {
	indent := func(body, pad string) string {
		if body == "" {
			return ""
		}
		return pad + strings.ReplaceAll(strings.TrimSpace(body), "\n", "\n"+pad) + "\n"
	}
	var pod, ctr string
	if podSC != "" {
		pod = "  securityContext:\n" + indent(podSC, "    ")
	}
	if containerSC != "" {
		ctr = "    securityContext:\n" + indent(containerSC, "      ")
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:
    k8s.aliyun.com/eci-use-specs: "2-4Gi"
spec:
  restartPolicy: Never
%s  volumes:
  - name: data
    emptyDir: {}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", %q]
    volumeMounts:
    - {name: data, mountPath: /data}
%s`, name, pod, script, ctr)
}

// TestSecurityContext: one pod per securityContext field, each checked from
// inside (its log), as a kubelet honours them with runc; runAsNonRoot over
// a root image waits with the kubelet's error; fields an instance cannot
// honour get a Warning naming them and the pod does not run.
func TestSecurityContext(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const status = `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; `
	ping := `ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 && echo ping-ok || echo ping-refused; `
	honoured := []struct {
		name, podSC, containerSC, script string
		want                             []string
	}{
		{"defaults", "", "", "id; " + status + ping + "touch /f && echo root-writable",
			[]string{"uid=0(root) gid=0(root)", "CapEff:\t00000000a80405fb", "CapBnd:\t00000000a80405fb", "NoNewPrivs:\t0", "Seccomp:\t2", "ping-refused", "root-writable"}},
		{"run-as-user", "runAsUser: 1000\nrunAsGroup: 3000", "", "id",
			[]string{"uid=1000 gid=3000 groups=3000\n"}},
		{"container-wins", "runAsUser: 1000", "runAsUser: 2000", "id -u",
			[]string{"2000\n"}},
		{"run-as-non-root", "runAsNonRoot: true\nrunAsUser: 1000", "", "id -u",
			[]string{"1000\n"}},
		{"read-only-root", "", "readOnlyRootFilesystem: true", "touch /f 2>&1; touch /data/f && echo volume-ok; echo >> /etc/hosts && echo hosts-ok",
			[]string{"touch: /f: Read-only file system", "volume-ok", "hosts-ok"}},
		{"drop-all", "", "capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}", status,
			[]string{"CapEff:\t0000000000000400", "CapBnd:\t0000000000000400"}},
		{"add-net-raw", "", "capabilities: {add: [NET_RAW]}", status + ping,
			[]string{"CapEff:\t00000000a80425fb", "ping-ok"}},
		{"no-escalation", "", "allowPrivilegeEscalation: false", status,
			[]string{"NoNewPrivs:\t1"}},
		{"seccomp", "seccompProfile: {type: RuntimeDefault}", "", status,
			[]string{"Seccomp:\t2"}},
		{"fs-group", "runAsUser: 1000\nfsGroup: 2000", "", "id; touch /data/f && stat -c '%a %g' /data /data/f",
			[]string{"uid=1000 gid=0(root) groups=0(root),2000\n", "2777 2000\n644 2000\n"}},
		{"supplemental", "supplementalGroups: [4000, 5000]", "", "id -G",
			[]string{"0 4000 5000\n"}},
		{"sysctl", "sysctls: [{name: net.ipv4.ip_unprivileged_port_start, value: \"0\"}]", "", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
			[]string{"0\n"}},
	}
	for _, tc := range honoured {
		apply(t, ns, securityPod(tc.name, tc.podSC, tc.containerSC, tc.script))
	}

	// runAsNonRoot over busybox, which runs as root: the kubelet's error.
	apply(t, ns, securityPod("non-root-refused", "runAsNonRoot: true", "", "id"))
	// What an instance cannot honour: a Warning naming the field.
	refused := map[string]string{
		"selinux":    "spec.securityContext.seLinuxOptions: Forbidden",
		"unconfined": `spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Unconfined"`,
		"sys-admin":  `spec.containers[0].securityContext.capabilities.add[0]: Forbidden: container "main" asks for capability SYS_ADMIN`,
	}
	apply(t, ns, securityPod("selinux", "seLinuxOptions: {level: \"s0:c123,c456\"}", "", "true"))
	apply(t, ns, securityPod("unconfined", "", "seccompProfile: {type: Unconfined}", "true"))
	apply(t, ns, securityPod("sys-admin", "", "capabilities: {add: [SYS_ADMIN]}", "true"))

	uid := kubectl(t, "-n", ns, "get", "pod", "non-root-refused", "-o", "jsonpath={.metadata.uid}")
	msg := fmt.Sprintf(`container has runAsNonRoot and image will run as root (pod: "non-root-refused_%s(%s)", container: main)`, ns, uid)
	eventually(t, 60*time.Second, "non-root-refused waiting with CreateContainerConfigError", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "non-root-refused", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}")
		return out == "CreateContainerConfigError "+msg, out
	})
	for name, field := range refused {
		eventually(t, 60*time.Second, name+" waiting with ForbiddenPodSpec", func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}")
			return strings.HasPrefix(out, "Pending ForbiddenPodSpec ") && strings.Contains(out, field), out
		})
	}
	eventually(t, 30*time.Second, "the Warning events", func() (bool, string) {
		events := kubectl(t, "-n", ns, "get", "events", "-o", "custom-columns=OBJ:.involvedObject.name,TYPE:.type,REASON:.reason,MESSAGE:.message")
		for name, field := range refused {
			if !strings.Contains(events, name) || !strings.Contains(events, "ForbiddenPodSpec") || !strings.Contains(events, field) {
				return false, events
			}
		}
		return strings.Contains(events, "Error: "+msg), events
	})

	for _, tc := range honoured {
		eventually(t, 90*time.Second, tc.name+" Succeeded", func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "pod", tc.name, "-o", "jsonpath={.status.phase}")
			return out == "Succeeded", out + "\n" + kubectl(t, "-n", ns, "describe", "pod", tc.name)
		})
		log := kubectl(t, "-n", ns, "logs", tc.name)
		for _, want := range tc.want {
			if !strings.Contains(log, want) {
				t.Errorf("%s: log lacks %q:\n%s", tc.name, want, log)
			}
		}
	}
}

// TestEphemeralContainerRefused: kubectl debug's ephemeral container cannot
// join a running instance; the node says so with a Warning naming the field
// instead of leaving kubectl debug waiting in silence.
func TestEphemeralContainerRefused(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: target
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
`)
	eventually(t, 60*time.Second, "target Running", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "target", "-o", "jsonpath={.status.phase}")
		return out == "Running", out
	})
	kubectl(t, "-n", ns, "debug", "target", "--image", "busybox", "-c", "dbg", "--", "true")
	eventually(t, 30*time.Second, "a Warning naming spec.ephemeralContainers", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=target,reason=ForbiddenPodSpec", "-o", "custom-columns=TYPE:.type,MESSAGE:.message")
		return strings.Contains(out, "Warning") && strings.Contains(out, `spec.ephemeralContainers: Forbidden: ephemeral containers ("dbg")`), out
	})
}

// TestSysctlForbidden: a pod with an unsafe sysctl is rejected as a
// kubelet's admission rejects it: Failed, reason SysctlForbidden, so that a
// Job counts the failure.
func TestSysctlForbidden(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: unsafe
spec:
  restartPolicy: Never
  securityContext:
    sysctls: [{name: net.ipv4.route_localnet, value: "1"}]
  containers:
  - name: main
    image: busybox
    command: ["true"]
`)
	want := `Pod was rejected: forbidden sysctl: "net.ipv4.route_localnet" not allowlisted`
	eventually(t, 60*time.Second, "the pod Failed with SysctlForbidden", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "unsafe", "-o", "jsonpath={.status.phase} {.status.reason} {.status.message}")
		return out == "Failed SysctlForbidden "+want, out
	})
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=unsafe,reason=SysctlForbidden", "-o", "custom-columns=TYPE:.type,MESSAGE:.message")
	if !strings.Contains(events, "Warning") || !strings.Contains(events, `forbidden sysctl: "net.ipv4.route_localnet" not allowlisted`) {
		t.Errorf("events:\n%s", events)
	}
	if gs := groups(t, ns); len(gs) != 0 {
		t.Errorf("a rejected pod got %d instances", len(gs))
	}
}
