package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The binaries built by `make kube`, relative to this package.
var binDir, _ = filepath.Abs(filepath.Join("..", "..", "bin"))

// helperEnv makes the test binary act as a parent that starts a cluster, prints
// the pids and waits to be killed (see TestNoOrphansWhenParentIsKilled).
const helperEnv = "SPOTECI_CLUSTER_TEST_HELPER_STATE"

func TestMain(m *testing.M) {
	if state := os.Getenv(helperEnv); state != "" {
		runHelper(state)
	}
	os.Exit(m.Run())
}

func runHelper(state string) {
	c, err := Start(context.Background(), Config{StateDir: state, BinDir: binDir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(c.PIDs())
	select {} // until killed
}

func requireBinaries(t testing.TB) {
	t.Helper()
	for _, name := range append(Binaries, "kubectl") {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			t.Skipf("bin/%s is missing: build the control plane with `make kube` (about 10 minutes cold)", name)
		}
	}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startCluster(t *testing.T, ctx context.Context, state string) *Cluster {
	t.Helper()
	c, err := Start(ctx, Config{StateDir: state, BinDir: binDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return c
}

// TestSpotReclaimedJob is the whole story of SPEC sections 1 and 4 against the
// real control plane, driven through the real kubectl, with one restart.
func TestSpotReclaimedJob(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	state := t.TempDir()
	c := startCluster(t, ctx, state)
	k := kubectl{t: t, kubeconfig: c.Kubeconfig()}

	if out := k.run(ctx, "version"); !strings.Contains(out, "Server Version: v1.37.2") ||
		!strings.Contains(out, "Client Version: v1.37.2") {
		t.Errorf("kubectl version:\n%s", out)
	}

	// A node as a virtual kubelet would register it: Ready, no taint, a lease
	// kept fresh so the node lifecycle controller does not taint it unreachable.
	k.apply(ctx, nodeYAML)
	now := time.Now().UTC().Format(time.RFC3339)
	k.run(ctx, "patch", "node", nodeName, "--subresource=status", "--type=merge", "-p", fmt.Sprintf(nodeStatus, now, now))
	leaseCtx, stopLease := context.WithCancel(ctx)
	defer stopLease()
	go k.renewLease(leaseCtx)

	k.apply(ctx, jobYAML)

	var seen []string
	for i := 1; i <= 3; i++ {
		victim := k.waitPod(ctx, fmt.Sprintf("pod %d of the Job bound to %s", i, nodeName), func(p pod) bool {
			return p.Spec.NodeName == nodeName && p.Status.Phase != "Failed" && !slices.Contains(seen, p.Metadata.Name)
		})
		seen = append(seen, victim.Metadata.Name)

		failedAt := time.Now()
		k.run(ctx, "patch", "pod", victim.Metadata.Name, "--subresource=status", "--type=strategic", "-p", reclaimedStatus(failedAt))

		if i == 1 {
			out := k.run(ctx, "get", "pod", victim.Metadata.Name)
			if status := column(out, victim.Metadata.Name, "STATUS"); status != "BidFailed" {
				t.Errorf("kubectl get pod: STATUS = %q, want BidFailed:\n%s", status, out)
			}
		}
		next := k.waitPod(ctx, fmt.Sprintf("replacement %d", i), func(p pod) bool {
			return p.Status.Phase != "Failed" && !slices.Contains(seen, p.Metadata.Name)
		})
		// Issue 130881: the Job's failure back-off applies even to pods that
		// podFailurePolicy ignores, so the replacement is not always immediate.
		t.Logf("failure %d: replacement %s created %v after the status write",
			i, next.Metadata.Name, time.Since(failedAt).Round(100*time.Millisecond))

		var job struct {
			Status struct {
				Failed     int `json:"failed"`
				Conditions []struct{ Type, Status string }
			} `json:"status"`
		}
		k.getJSON(ctx, &job, "get", "job", "pi")
		for _, cond := range job.Status.Conditions {
			if cond.Type == "Failed" && cond.Status == "True" {
				t.Fatalf("after %d reclaims the Job failed, though podFailurePolicy ignores DisruptionTarget", i)
			}
		}
	}
	out := k.run(ctx, "get", "pods", "-l", "batch.kubernetes.io/job-name=pi")
	if n := strings.Count(out, "BidFailed"); n != 3 {
		t.Errorf("want 3 BidFailed pods kept, got %d:\n%s", n, out)
	}
	t.Logf("kubectl get pods:\n%s", out)

	// Stop and start on the same state folder: etcd data and certificates are
	// reused, so the Job and the old kubeconfig are still good.
	stopLease()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case err, ok := <-c.Wait():
		if ok {
			t.Errorf("Wait after a clean stop: %v", err)
		}
	default:
		t.Error("Wait channel not closed after Stop")
	}
	oldKubeconfig, err := os.ReadFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c2 := startCluster(t, ctx, state)
	t.Logf("restart on the same state folder ready in %v", time.Since(began).Round(time.Millisecond))
	if c2.Server() == c.Server() {
		// The port was free again, so the previous kubeconfig must still work.
		if newKubeconfig, _ := os.ReadFile(c2.Kubeconfig()); !bytes.Equal(oldKubeconfig, newKubeconfig) {
			t.Error("kubeconfig changed across a restart on the same port")
		}
	}
	k.run(ctx, "get", "job", "pi")
	k.run(ctx, "get", "node", nodeName)
}

// TestNoOrphansWhenParentIsKilled SIGKILLs a process that started a cluster
// and checks that its control plane dies with it.
func TestNoOrphansWhenParentIsKilled(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	helper := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	var stderr bytes.Buffer
	helper.Stderr = &stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	var pids map[string]int
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&pids); err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper did not print its pids: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { // whatever the outcome, leave nothing of ours running
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if len(pids) != len(Binaries) {
		t.Fatalf("helper reported %v, want one pid per component", pids)
	}
	for name, pid := range pids {
		if !alive(pid) {
			t.Fatalf("%s (pid %d) is not running before the kill", name, pid)
		}
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	killed := time.Now()
	for name, pid := range pids {
		for alive(pid) {
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("%s (pid %d) still runs 10s after its parent was killed", name, pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("all %d components gone %v after SIGKILL of the parent", len(pids), time.Since(killed).Round(time.Millisecond))
}

func TestStartWithoutBinariesSaysMakeKube(t *testing.T) {
	_, err := Start(context.Background(), Config{StateDir: t.TempDir(), BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make kube") {
		t.Fatalf("err = %v, want a hint to run make kube", err)
	}
}

func TestStateFolderIsLocked(t *testing.T) {
	state := t.TempDir()
	f, err := lockState(state)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := lockState(state); err == nil {
		t.Fatal("second lock on the same state folder succeeded")
	}
}

// alive reports whether pid runs; a zombie (dead, not yet reaped by whoever
// inherited it) counts as gone.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

const nodeName = "spot-node"

const nodeYAML = `apiVersion: v1
kind: Node
metadata:
  name: spot-node
  labels:
    kubernetes.io/hostname: spot-node
    type: virtual-kubelet
`

// Capacity matters: the scheduler fits pods against allocatable, pods included.
const nodeStatus = `{"status":{
  "capacity":{"cpu":"8","memory":"32Gi","pods":"110"},
  "allocatable":{"cpu":"8","memory":"32Gi","pods":"110"},
  "conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"virtual node is ready",
    "lastHeartbeatTime":"%s","lastTransitionTime":"%s"}]}}`

// The guide's Job, with the failure policy that keeps reclaims off backoffLimit.
const jobYAML = `apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-use-specs: ecs.c5.large,2-4Gi
        k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo
    spec:
      containers:
      - name: pi
        image: perl
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
      restartPolicy: Never
`

// reclaimedStatus is the status write of a virtual node whose spot instance
// was released (SPEC sections 1 and 4), as a strategic merge patch so the
// conditions others set are kept.
func reclaimedStatus(at time.Time) string {
	ts := at.UTC().Format(time.RFC3339)
	msg := "The pod is a spot instance, and has been released at " + at.UTC().Format("2006-01-02T15:04Z")
	patch := map[string]any{"status": map[string]any{
		"phase": "Failed", "reason": "BidFailed", "message": msg,
		"conditions": []map[string]string{
			{"type": "DisruptionTarget", "status": "True", "reason": "BidFailed", "message": msg, "lastTransitionTime": ts},
			{"type": "ContainerInstanceExpired", "status": "True", "reason": "SpotToBeReleased",
				"message": "Spot ECI will be released in 5 minutes", "lastTransitionTime": ts},
		},
	}}
	data, _ := json.Marshal(patch)
	return string(data)
}

// kubectl drives the real bin/kubectl.
type kubectl struct {
	t          *testing.T
	kubeconfig string
}

func (k kubectl) exec(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (k kubectl) run(ctx context.Context, args ...string) string {
	k.t.Helper()
	out, err := k.exec(ctx, "", args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return out
}

func (k kubectl) apply(ctx context.Context, yaml string) {
	k.t.Helper()
	if _, err := k.exec(ctx, yaml, "apply", "-f", "-"); err != nil {
		k.t.Fatal(err)
	}
}

func (k kubectl) getJSON(ctx context.Context, v any, args ...string) {
	k.t.Helper()
	out := k.run(ctx, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
}

// renewLease does what a kubelet's heartbeat does, every 10 s, until ctx ends.
func (k kubectl) renewLease(ctx context.Context) {
	for {
		lease := fmt.Sprintf(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: %s, namespace: kube-node-lease}
spec: {holderIdentity: %s, leaseDurationSeconds: 40, renewTime: "%s"}
`, nodeName, nodeName, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
		if _, err := k.exec(ctx, lease, "apply", "-f", "-"); err != nil && ctx.Err() == nil {
			k.t.Logf("renew lease: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

type pod struct {
	Metadata struct{ Name string } `json:"metadata"`
	Spec     struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct{ Phase, Reason string } `json:"status"`
}

// waitPod polls the Job's pods until one matches; the deadline is generous
// because the Job controller's back-off grows with each failure.
func (k kubectl) waitPod(ctx context.Context, what string, match func(pod) bool) pod {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		var list struct{ Items []pod }
		out, err := k.exec(ctx, "", "get", "pods", "-l", "batch.kubernetes.io/job-name=pi", "-o", "json")
		if err == nil {
			err = json.Unmarshal([]byte(out), &list)
		}
		if err == nil {
			for _, p := range list.Items {
				if match(p) {
					return p
				}
			}
		}
		select {
		case <-ctx.Done():
			k.t.Fatalf("waiting for %s: %v (last error: %v)", what, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// column returns the value of a column for a row of kubectl's table output.
func column(table, row, col string) string {
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) < 2 {
		return ""
	}
	idx := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == col {
			idx = i
		}
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > idx && idx >= 0 && f[0] == row {
			return f[idx]
		}
	}
	return ""
}
