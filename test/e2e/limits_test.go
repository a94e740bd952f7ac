package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A pod that writes past its ephemeral-storage limit, or past an emptyDir's
// sizeLimit, ends Failed with reason Evicted, the kubelet's message and a
// Warning Evicted event, and kubectl get pod says Evicted; a pod within its
// limits runs on.
func TestEphemeralStorageEvicted(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: filler
spec:
  terminationGracePeriodSeconds: 5
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/fill bs=1048576 count=16; echo written; sleep 3600"]
    resources:
      limits: {ephemeral-storage: 8Mi}
---
apiVersion: v1
kind: Pod
metadata:
  name: scratch
spec:
  terminationGracePeriodSeconds: 5
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1048576 count=16; echo written; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    emptyDir: {sizeLimit: 8Mi}
---
apiVersion: v1
kind: Pod
metadata:
  name: modest
spec:
  terminationGracePeriodSeconds: 5
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/fill bs=1048576 count=2; echo written; sleep 3600"]
    resources:
      limits: {ephemeral-storage: 64Mi}
`)
	for name, want := range map[string]string{
		"filler":  "Pod ephemeral local storage usage exceeds the total limit of containers 8Mi.",
		"scratch": `Usage of EmptyDir volume "data" exceeds the limit "8Mi".`,
	} {
		// kubectl's STATUS column is the pod's reason.
		eventually(t, 90*time.Second, name+" Evicted", func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "pod", name)
			return strings.Contains(out, "Evicted"), out
		})
		var p pod
		if err := json.Unmarshal([]byte(kubectl(t, "-n", ns, "get", "pod", name, "-o", "json")), &p); err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != "Failed" || p.Status.Reason != "Evicted" || strings.TrimSpace(p.Status.Message) != want {
			t.Errorf("%s: %s %s %q, want Failed Evicted %q", name, p.Status.Phase, p.Status.Reason, p.Status.Message, want)
		}
		eventually(t, 30*time.Second, name+"'s Warning Evicted event", func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name="+name+",reason=Evicted",
				"-o", "jsonpath={.items[*].type} {.items[*].message}")
			return strings.Contains(out, "Warning "+want), out
		})
	}
	// Measured as often as the others, the pod within its limits runs on.
	if out := kubectl(t, "-n", ns, "get", "pod", "modest", "-o", "jsonpath={.status.phase} {.status.reason}"); out != "Running " {
		t.Errorf("a pod within its limits is %q, want Running", out)
	}
}

// A fork bomb is held at its instance's pids limit while another pod
// starts and runs a command; deleting it ends it.
func TestForkBombContained(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	// Every process forks for good; the first is a sleep, which needs no
	// fork to live on. The CPU limit keeps the churn off the other tests.
	apply(t, ns, `apiVersion: v1
kind: Pod
metadata:
  name: bomb
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "exec 2>/dev/null; bomb() { while :; do bomb & done; }; bomb & exec sleep 3600"]
    resources:
      limits: {cpu: 250m, memory: 512Mi}
`)
	waitPodRunning(t, ns, "bomb")
	id := kubectl(t, "-n", ns, "get", "pod", "bomb", "-o", `jsonpath={.metadata.annotations.k8s\.aliyun\.com/eci-instance-id}`)
	cgroup := filepath.Join("/sys/fs/cgroup/pids/spoteci", id)
	read := func(name string) int {
		b, err := os.ReadFile(filepath.Join(cgroup, name))
		if err != nil {
			t.Fatalf("the bomb's cgroup: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s of the bomb: %q", name, b)
		}
		return n
	}
	limit := read("pids.max")
	pidMax, _ := os.ReadFile("/proc/sys/kernel/pid_max")
	if hostMax, _ := strconv.Atoi(strings.TrimSpace(string(pidMax))); limit < 1024 || limit > hostMax/4 {
		t.Fatalf("pids.max %d: want at least 1024 and at most a quarter of pid_max %d", limit, hostMax)
	}
	eventually(t, 60*time.Second, "the bomb at its pids limit", func() (bool, string) {
		n := read("pids.current")
		if n > limit {
			t.Fatalf("%d processes, over the limit %d", n, limit)
		}
		return n >= limit-5, strconv.Itoa(n) + " processes"
	})
	apply(t, ns, podManifest("neighbour", nil))
	waitPodRunning(t, ns, "neighbour")
	if out := kubectl(t, "-n", ns, "exec", "neighbour", "--", "sh", "-c", "echo $(echo forked)"); out != "forked\n" {
		t.Errorf("exec beside the bomb: %q, want forked", out)
	}
	if n := read("pids.current"); n > limit || n < limit-5 {
		t.Errorf("the bomb has %d processes after the neighbour ran, want it still at its limit %d", n, limit)
	}
	kubectl(t, "-n", ns, "delete", "pod", "bomb", "--wait=true", "--timeout=60s")
	if _, err := os.Stat(cgroup); err == nil {
		eventually(t, 30*time.Second, "the bomb's processes gone", func() (bool, string) {
			b, err := os.ReadFile(filepath.Join(cgroup, "pids.current"))
			return err != nil || strings.TrimSpace(string(b)) == "0", string(b)
		})
	}
}
