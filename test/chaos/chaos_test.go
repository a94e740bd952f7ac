// Package chaos is spoteci's standing fault suite. It runs a real control
// plane, the ECI service and the virtual node as separate processes, drives
// a workload of spot Jobs whose pods are reclaimed again and again, and at
// moments drawn from a seed kill -9 one part (the service, the node,
// containerd, kube-apiserver, etcd, or all of them at once) and starts it
// again. At the end it checks what must hold whatever happened:
//
//   - at most one live instance per pod UID, and none whose pod is gone;
//   - every Job completes and every pod ends Completed or BidFailed (none
//     stuck);
//   - no container process outlives its instance;
//   - every ended instance has one bill of contiguous lines, and what was
//     billed before a fault is unchanged after it;
//   - every SpotToBeReleased precedes its release by the notice lead.
//
// `go test ./test/chaos` (part of make test) injects a few faults, one of
// each kind; `make chaos` hundreds. The seed is printed: -chaos.seed
// replays a schedule.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/chart"
	"github.com/spoteci/spoteci/internal/cluster"
	"github.com/spoteci/spoteci/internal/ecisdk"
	"github.com/spoteci/spoteci/internal/forker"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

var (
	faultCount = flag.Int("chaos.faults", len(kinds), "faults to inject (the first ones take each kind once)")
	seedFlag   = flag.Uint64("chaos.seed", 0, "seed of the schedule; 0 takes one from the clock (printed)")
)

// scale makes the 5-minute checks and notice lead 1.25 s, and a market hour
// 15 s.
const scale = 240

// noticeLead is ECI's: SpotToBeReleased comes this long before the release.
const noticeLead = 5 * time.Minute

// The kinds of fault.
const (
	faultService    = "eci-service"
	faultNode       = "node"
	faultContainerd = "containerd"
	faultAPIServer  = "kube-apiserver"
	faultEtcd       = "etcd"
	faultAll        = "everything"
)

var kinds = []string{faultService, faultNode, faultContainerd, faultAPIServer, faultEtcd, faultAll}

func TestFaults(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (replay: go test ./test/chaos -chaos.seed %d -chaos.faults %d)", seed, seed, *faultCount)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wg sync.WaitGroup
	wg.Go(func() { s.reclaim(ctx, rand.New(rand.NewPCG(seed+1, seed))) })
	jobs := 0
	newJob := func() {
		s.apply(jobManifest(fmt.Sprint("work-", jobs)))
		jobs++
	}
	newJob()

	order := slices.Clone(kinds)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	billed := map[string]float64{} // ended groups' amounts, as last seen
	started := time.Now()
	for i := range *faultCount {
		kind := kinds[rng.IntN(len(kinds))]
		if i < len(order) {
			kind = order[i]
		}
		time.Sleep(time.Duration(3000+rng.IntN(5000)) * time.Millisecond)
		if i%2 == 0 {
			newJob() // work keeps arriving, so that every fault meets some
		}
		s.checkBills(billed) // what was billed before this fault
		took := s.inject(kind)
		s.waitHealthy()
		s.checkBills(billed) // ... is billed the same after it
		t.Logf("fault %d/%d: %s, back in %.1fs (%.0fs in)", i+1, *faultCount, kind, took.Seconds(), time.Since(started).Seconds())
	}
	cancel()
	wg.Wait()
	s.cli("market", "set", "--type", specType, "--reset")

	s.waitJobsComplete(jobs)
	s.checkInstances()
	s.checkProcesses()
	s.checkBills(billed)
	s.checkNotices()
	t.Logf("%d faults, %d Jobs, %d instances billed: every invariant held", *faultCount, jobs, len(billed))
}

// specType is the type the workload's pods run on, in every zone.
const specType = "ecs.c5.large"

// jobManifest is a Job in the shape the README recommends for spot: Indexed,
// with backoffLimitPerIndex and reclaims ignored.
func jobManifest(name string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 20
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions:
      - type: DisruptionTarget
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-spot-strategy: SpotWithPriceLimit
        k8s.aliyun.com/eci-spot-price-limit: "0.5"
        k8s.aliyun.com/eci-spot-duration: "0"
        k8s.aliyun.com/eci-use-specs: %s
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 2
      containers:
      - name: work
        image: busybox
        command: ["sh", "-c", "sleep 15"]
`, name, specType)
}

// stack is the system under test: the control plane, the service and the
// node, each a process this test started and may kill.
type stack struct {
	t                           *testing.T
	bin, spoteci, state, images string
	kubeDir, ns                 string
	nodeKubeconfig              string // the chart's ServiceAccount, which the node runs as
	kube                        *cluster.Cluster
	server, node                *proc
}

// proc is a spoteci process with its output kept.
type proc struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func start(t *testing.T) *stack {
	root, _ := filepath.Abs("../..")
	s := &stack{t: t, bin: filepath.Join(root, "bin"), ns: "chaos"}
	for _, b := range append(slices.Clone(cluster.Binaries), "kubectl", "images/busybox.tar") {
		if _, err := os.Stat(filepath.Join(s.bin, b)); err != nil {
			t.Skipf("bin/%s is missing: build the control plane and images with `make kube images`", b)
		}
	}
	tmp := t.TempDir()
	s.spoteci, s.images = filepath.Join(tmp, "spoteci"), filepath.Join(s.bin, "images")
	if out, err := exec.Command("go", "build", "-o", s.spoteci, "github.com/spoteci/spoteci/cmd/spoteci").CombinedOutput(); err != nil {
		t.Fatalf("building spoteci: %v\n%s", err, out)
	}
	s.kubeDir, s.state = filepath.Join(tmp, "kube"), filepath.Join(tmp, "eci")
	s.startKube()
	id, err := chart.Install(context.Background(), s.kube.Kubeconfig(), chart.Local("virtual-kubelet-spoteci"), filepath.Join(tmp, "node.kubeconfig"), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.nodeKubeconfig = id.Kubeconfig
	s.startServer()
	s.startNode()
	t.Cleanup(s.stop)
	s.kubectl("create", "namespace", s.ns)
	return s
}

func (s *stack) startKube() {
	kube, err := cluster.Start(context.Background(), cluster.Config{StateDir: s.kubeDir, BinDir: s.bin})
	if err != nil {
		s.t.Fatal(err)
	}
	s.kube = kube
}

func (s *stack) run(args ...string) *proc {
	p := &proc{cmd: exec.Command(s.spoteci, args...), logs: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := forker.Start(p.cmd); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// startServer starts the service; it serves once eci.json is new.
func (s *stack) startServer() {
	info := filepath.Join(s.state, eciapi.InfoFile)
	var before time.Time
	if st, err := os.Stat(info); err == nil {
		before = st.ModTime()
	}
	forward := cluster.KubernetesServiceIP + ":443=" + strings.TrimPrefix(s.kube.Server(), "https://")
	s.server = s.run("server", "--state-dir", s.state, "--time-scale", fmt.Sprint(scale), "--image-cache", s.images, "--forward", forward)
	s.until(30*time.Second, "the ECI service serves", func() error {
		st, err := os.Stat(info)
		if err != nil || !st.ModTime().After(before) {
			return fmt.Errorf("eci.json not written yet\n%s", tail(s.server.logs.String()))
		}
		_, err = eciapi.ReadServerInfo(s.state)
		return err
	})
}

// startNode starts the node under the chart's identity, electing itself
// leader with the chart's default terms; a restart keeps the identity, as
// a container restarted in its pod does.
func (s *stack) startNode() {
	s.node = s.run("node", "--kubeconfig", s.nodeKubeconfig, "--state-dir", s.state, "--taint=false", "--approve-serving-csr",
		"--namespace", chart.Local("").Namespace, "--leader-elect", "--leader-elect-identity", "chaos-node")
}

// stop ends the processes and deletes every instance (spoteci down).
func (s *stack) stop() {
	for _, p := range []*proc{s.node, s.server} {
		if p != nil && p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()
		}
	}
	if out, err := exec.Command(s.spoteci, "down", "--state-dir", s.state, "--image-cache", s.images).CombinedOutput(); err != nil {
		s.t.Errorf("spoteci down: %v\n%s", err, out)
	}
	s.kube.Stop(context.Background())
	if s.t.Failed() {
		s.t.Logf("node log:\n%s\nservice log:\n%s", tail(s.node.logs.String()), tail(s.server.logs.String()))
	}
}

// inject kills one part with SIGKILL and starts it again, and returns how
// long that took.
func (s *stack) inject(kind string) time.Duration {
	began := time.Now()
	kill := func(pid int) {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	killProc := func(p *proc) {
		kill(p.cmd.Process.Pid)
		p.cmd.Wait()
	}
	restartKube := func(component string) {
		if component != "" {
			kill(s.kube.PIDs()[component])
		} else {
			for _, pid := range s.kube.PIDs() {
				kill(pid)
			}
		}
		s.kube.Stop(context.Background())
		s.startKube()
	}
	switch kind {
	case faultService:
		killProc(s.server)
		s.startServer()
	case faultNode:
		killProc(s.node)
		s.startNode()
	case faultContainerd:
		old := s.containerdPID()
		kill(old)
		// The service starts it again by itself.
		s.until(30*time.Second, "containerd started again", func() error {
			if pid := s.containerdPID(); pid == 0 || pid == old {
				return fmt.Errorf("containerd pid %d", pid)
			}
			return nil
		})
	case faultAPIServer, faultEtcd:
		restartKube(kind)
	case faultAll:
		kill(s.node.cmd.Process.Pid)
		kill(s.server.cmd.Process.Pid)
		kill(s.containerdPID())
		s.node.cmd.Wait()
		s.server.cmd.Wait()
		restartKube("")
		s.startServer()
		s.startNode()
	default:
		s.t.Fatalf("unknown fault %q", kind)
	}
	return time.Since(began)
}

// containerdPID is the pid of the service's containerd, 0 when none runs.
func (s *stack) containerdPID() int {
	b, err := os.ReadFile(filepath.Join(s.state, "containerd", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// waitHealthy waits until the apiserver answers and the service lists.
func (s *stack) waitHealthy() {
	s.until(60*time.Second, "the cluster and the service answer", func() error {
		if _, err := s.kubectlErr("get", "--raw", "/readyz"); err != nil {
			return err
		}
		_, err := s.groups()
		return err
	})
}

// reclaim raises the workload's price above its limit now and then, for
// long enough that a check reclaims what runs, until ctx ends.
func (s *stack) reclaim(ctx context.Context, rng *rand.Rand) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(2000+rng.IntN(4000)) * time.Millisecond):
		}
		s.cliErr("market", "set", "--type", specType, "--price", "0.9") // fails while the service is down: fine
		time.Sleep(1500 * time.Millisecond)                             // one 5-minute check
		s.cliErr("market", "set", "--type", specType, "--reset")
	}
}

// waitJobsComplete waits for every Job to complete and every pod to end
// Completed or BidFailed.
func (s *stack) waitJobsComplete(jobs int) {
	defer func() {
		if s.t.Failed() {
			out, _ := s.kubectlErr("-n", s.ns, "get", "jobs", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status}{"\n"}{end}`)
			s.t.Logf("Jobs:\n%s", out)
			out, _ = s.kubectlErr("-n", s.ns, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.reason} deleting={.metadata.deletionTimestamp} {.metadata.annotations.k8s\.aliyun\.com/eci-instance-id} {.status.containerStatuses[0].state.terminated}{"\n"}{end}`)
			var odd []string
			for _, line := range strings.Split(out, "\n") {
				if !strings.Contains(line, " Succeeded ") && !strings.Contains(line, " BidFailed ") {
					odd = append(odd, line)
				}
			}
			s.t.Logf("pods neither Completed nor BidFailed:\n%s", strings.Join(odd, "\n"))
			if len(odd) > 0 {
				groups, _ := s.groups()
				for _, g := range groups {
					for _, line := range odd {
						if strings.Contains(line, g.ContainerGroupId) {
							b, _ := json.Marshal(g)
							s.t.Logf("its instance: %s", b)
						}
					}
				}
			}
			out, _ = s.kubectlErr("-n", s.ns, "get", "events", "--field-selector", "type=Warning", "-o", `jsonpath={range .items[*]}{.involvedObject.name} {.reason} {.message}{"\n"}{end}`)
			s.t.Logf("Warning events:\n%s", tail(out))
		}
	}()
	// An index reclaimed n times waits out the Job controller's back-off
	// of 10 s x 2^(n-1), up to 10 minutes, before its replacement, even
	// though podFailurePolicy ignores reclaims (kubernetes issue 130881):
	// after a long run the first Jobs may need all of it.
	s.until(12*time.Minute, fmt.Sprintf("all %d Jobs complete", jobs), func() error {
		out, err := s.kubectlErr("-n", s.ns, "get", "jobs", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.succeeded}/{.spec.completions}{" "}{end}`)
		if err != nil {
			return err
		}
		done := 0
		for _, f := range strings.Fields(out) {
			name, counts, _ := strings.Cut(f, "=")
			got, want, _ := strings.Cut(counts, "/")
			if got != want {
				return fmt.Errorf("%s has %s of %s: %s", name, got, want, out)
			}
			done++
		}
		if done != jobs {
			return fmt.Errorf("%d of %d Jobs listed", done, jobs)
		}
		return nil
	})
	s.until(time.Minute, "every pod Completed or BidFailed", func() error {
		var list struct {
			Items []struct {
				Metadata struct {
					Name              string
					DeletionTimestamp *string
				}
				Status struct{ Phase, Reason string }
			}
		}
		out, err := s.kubectlErr("-n", s.ns, "get", "pods", "-o", "json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		for _, p := range list.Items {
			ok := p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed" && p.Status.Reason == "BidFailed"
			if !ok || p.Metadata.DeletionTimestamp != nil {
				return fmt.Errorf("pod %s is %s %s (deleting: %v)", p.Metadata.Name, p.Status.Phase, p.Status.Reason, p.Metadata.DeletionTimestamp != nil)
			}
		}
		return nil
	})
}

// checkInstances: at most one live instance per pod UID, and none whose pod
// is gone.
func (s *stack) checkInstances() {
	out := s.kubectl("-n", s.ns, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.uid}{" "}{.status.phase}{"\n"}{end}`)
	phase := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if uid, p, ok := strings.Cut(line, " "); ok {
			phase[uid] = p
		}
	}
	s.until(time.Minute, "no live instance but a running pod's", func() error {
		groups, err := s.groups()
		if err != nil {
			return err
		}
		live := map[string][]string{}
		for _, g := range groups {
			if g.Status == eciapi.StatusPending || g.Status == eciapi.StatusRunning {
				uid := g.Spoteci.ClientToken
				live[uid] = append(live[uid], g.ContainerGroupId)
				if phase[uid] != "Running" {
					return fmt.Errorf("instance %s is %s but its pod %s is %q", g.ContainerGroupId, g.Status, uid, phase[uid])
				}
			}
		}
		for uid, ids := range live {
			if len(ids) > 1 {
				s.t.Errorf("pod %s has %d live instances: %v", uid, len(ids), ids)
			}
		}
		return nil
	})
}

// checkProcesses: every container process of the service's containerd
// belongs to a live instance.
func (s *stack) checkProcesses() {
	s.until(time.Minute, "no container process outlives its instance", func() error {
		groups, err := s.groups()
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, g := range groups {
			live[g.ContainerGroupId] = g.Status == eciapi.StatusPending || g.Status == eciapi.StatusRunning
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil || !strings.Contains(string(b), s.state) {
				continue
			}
			args := strings.Split(string(b), "\x00")
			if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) && strings.Contains(args[0], "shim") {
				id, _, _ := strings.Cut(args[i+1], ".")
				if !live[id] {
					return fmt.Errorf("a shim (pid %s) runs for instance %s, which is not live", filepath.Base(filepath.Dir(p)), id)
				}
			}
		}
		return nil
	})
}

// checkBills: every group has one bill whose lines follow each other without
// gap or overlap and add up to its amount; an ended group's amount is what
// it was when last seen.
func (s *stack) checkBills(billed map[string]float64) {
	var bill eciapi.DescribeBillResponse
	s.until(time.Minute, "the bill", func() (err error) {
		bill, err = s.admin().DescribeBill(context.Background(), eciapi.DescribeBillRequest{})
		return err
	})
	seen := map[string]bool{}
	for _, it := range bill.Items {
		if seen[it.ContainerGroupId] {
			s.t.Errorf("group %s is billed twice", it.ContainerGroupId)
		}
		seen[it.ContainerGroupId] = true
		sum := 0.0
		for i, l := range it.Lines {
			sum += l.Amount
			if i > 0 && !l.From.Equal(it.Lines[i-1].To) {
				s.t.Errorf("group %s: line %d starts at %s, the one before ends at %s", it.ContainerGroupId, i, l.From, it.Lines[i-1].To)
			}
		}
		if math.Abs(sum-it.Amount) > 1e-9 {
			s.t.Errorf("group %s: lines add up to %v, the bill says %v", it.ContainerGroupId, sum, it.Amount)
		}
		if !ended(it.Status) {
			continue
		}
		if was, ok := billed[it.ContainerGroupId]; ok && math.Abs(was-it.Amount) > 1e-9 {
			s.t.Errorf("group %s (%s) was billed %v and now %v", it.ContainerGroupId, it.Status, was, it.Amount)
		}
		billed[it.ContainerGroupId] = it.Amount
	}
	for id := range billed {
		if !seen[id] {
			s.t.Errorf("group %s, billed before, is no longer in the bill", id)
		}
	}
}

func ended(status string) bool {
	switch status {
	case eciapi.StatusSucceeded, eciapi.StatusFailed, eciapi.StatusExpired, eciapi.StatusDeleted:
		return true
	}
	return false
}

// checkNotices: every released group had its notice the lead before.
func (s *stack) checkNotices() {
	bill, err := s.admin().DescribeBill(context.Background(), eciapi.DescribeBillRequest{})
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for _, it := range bill.Items {
		ids = append(ids, it.ContainerGroupId)
	}
	released := 0
	sdk := s.sdk()
	defer sdk.Close()
	for chunk := range slices.Chunk(ids, 50) {
		resp, err := sdk.DescribeContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: chunk})
		if err != nil {
			s.t.Fatal(err)
		}
		for _, g := range resp.ContainerGroups {
			// From the events themselves: restarts must neither repeat a
			// notice nor release without one, the lead after it.
			var notices, releases []time.Time
			for _, e := range g.Events {
				if e.Spoteci == nil {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, e.Spoteci.Timestamp)
				if err != nil {
					s.t.Errorf("group %s: event %s at %q", g.ContainerGroupId, e.Reason, e.Spoteci.Timestamp)
					continue
				}
				switch e.Reason {
				case eciapi.ReasonSpotToBeReleased:
					notices = append(notices, at)
				case "SpotReleased":
					releases = append(releases, at)
				}
			}
			if len(releases) == 0 && len(notices) <= 1 {
				continue // not released (a notice may be pending when deleted)
			}
			released++
			if len(notices) != 1 || len(releases) != 1 {
				s.t.Errorf("group %s: %d SpotToBeReleased and %d releases, want one of each", g.ContainerGroupId, len(notices), len(releases))
				continue
			}
			if lead := releases[0].Sub(notices[0]); lead < noticeLead-time.Second || lead > noticeLead+time.Second {
				s.t.Errorf("group %s: SpotToBeReleased %s before its release, want %s", g.ContainerGroupId, lead, noticeLead)
			}
		}
	}
	if released == 0 {
		s.t.Error("no instance was reclaimed: the workload did not meet the market")
	}
	s.t.Logf("%d instances released, each noticed %s before", released, noticeLead)
}

// groups lists the service's groups (deleted ones left out).
func (s *stack) groups() ([]wire.ContainerGroup, error) {
	sdk := s.sdk()
	defer sdk.Close()
	resp, err := sdk.DescribeAllContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{}, 100)
	return resp.ContainerGroups, err
}

func (s *stack) sdk() *ecisdk.Client {
	info, err := eciapi.ReadServerInfo(s.state)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := ecisdk.Local(info, 1)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *stack) admin() *eciapi.Client {
	info, err := eciapi.ReadServerInfo(s.state)
	if err != nil {
		s.t.Fatal(err)
	}
	return &eciapi.Client{Endpoint: info.Endpoint, Token: info.Token}
}

func (s *stack) apply(manifest string) {
	s.until(time.Minute, "kubectl apply", func() error {
		cmd := exec.Command(filepath.Join(s.bin, "kubectl"), "--kubeconfig", s.kube.Kubeconfig(), "-n", s.ns, "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

func (s *stack) kubectl(args ...string) string {
	out, err := s.kubectlErr(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *stack) kubectlErr(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(s.bin, "kubectl"), append([]string{"--kubeconfig", s.kube.Kubeconfig(), "--request-timeout", "10s"}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *stack) cli(args ...string) {
	if out, err := s.cliErr(args...); err != nil {
		s.t.Fatalf("spoteci %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *stack) cliErr(args ...string) (string, error) {
	out, err := exec.Command(s.spoteci, append(args, "--state-dir", s.state)...).CombinedOutput()
	return string(out), err
}

// until polls f every 200 ms until it returns nil, or fails the test.
func (s *stack) until(timeout time.Duration, what string, f func() error) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
