// Package e2e runs spoteci as a user does: a real control plane, the ECI
// service and the virtual node as separate processes, driven through the
// real kubectl built by `make kube` and the spoteci CLI.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// scale makes a market hour 15 wall seconds and the 5-minute checks and
// notice 1.25 s: long enough for the node to act inside the notice window.
// SPOTECI_E2E_SCALE sets another for benchmarks (1: the market's real
// time, where a notice comes 5 minutes before its release); the tests
// expect 240.
var scale = 240

// noticeLead is the wall time from a notice to its release.
func noticeLead() time.Duration { return 5 * time.Minute / time.Duration(scale) }

// env is the one environment all tests share; each test has its own
// namespace and its own instance types, so their prices do not collide.
var env struct {
	bin, spoteci, state, kubeconfig string
	nodeKubeconfig                  string // the chart's ServiceAccount, which the node runs as
	eciPort                         int    // the service's, fixed so that instances reach it at eciForward
	images                          string // bin/images, the built-in images
	cluster                         *cluster.Cluster
	server, node                    *process
	skip                            string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, _ := filepath.Abs("../..")
	env.bin = filepath.Join(root, "bin")
	for _, b := range append(cluster.Binaries, "kubectl") {
		if _, err := os.Stat(filepath.Join(env.bin, b)); err != nil {
			env.skip = fmt.Sprintf("bin/%s is missing: build the control plane with `make kube`", b)
			return m.Run()
		}
	}
	tmp, err := os.MkdirTemp("", "spoteci-e2e")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	env.spoteci = filepath.Join(tmp, "spoteci")
	env.images = filepath.Join(env.bin, "images")
	if _, err := os.Stat(filepath.Join(env.images, "perl.tar")); err != nil {
		env.skip = "bin/images/perl.tar is missing: build the images with `make images`"
		return m.Run()
	}
	build := exec.Command("go", "build", "-o", env.spoteci, "github.com/spoteci/spoteci/cmd/spoteci")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("building spoteci: " + err.Error())
	}
	ctx := context.Background()
	c, err := cluster.Start(ctx, cluster.Config{StateDir: filepath.Join(tmp, "kube"), BinDir: env.bin})
	if err != nil {
		panic(err)
	}
	defer c.Stop(ctx)
	env.cluster, env.kubeconfig = c, c.Kubeconfig()
	// The node runs as it would in a cluster: under the chart's identity.
	id, err := chart.Install(ctx, env.kubeconfig, chart.Local(nodeName), filepath.Join(tmp, "node.kubeconfig"), 24*time.Hour)
	if err != nil {
		panic(err)
	}
	env.nodeKubeconfig = id.Kubeconfig
	env.state = filepath.Join(tmp, "eci")
	if v, err := strconv.Atoi(os.Getenv("SPOTECI_E2E_SCALE")); err == nil && v > 0 {
		scale = v
	}
	if env.eciPort, err = freePort(); err != nil {
		panic(err)
	}
	env.server = startServer()
	env.node = startNode()
	code := m.Run()
	if err := stopModel(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	env.node.stop()
	env.server.stop()
	// Nothing may be left behind: every instance deleted, containerd stopped.
	if out, err := exec.Command(env.spoteci, "down", "--state-dir", env.state, "--image-cache", env.images).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "spoteci down: %v\n%s", err, out)
		code = 1
	}
	if left := leftovers(env.state); left != "" {
		fmt.Fprintf(os.Stderr, "spoteci down left behind:\n%s", left)
		code = 1
	}
	return code
}

// process is a spoteci subprocess with its output kept for failures.
type process struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

func start(args ...string) *process {
	p := &process{cmd: exec.Command(env.spoteci, args...), logs: &bytes.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := forker.Start(p.cmd); err != nil {
		panic(err)
	}
	return p
}

func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// eciForward is where instances reach the ECI service: a node the chart
// runs in an instance calls it there.
const eciForward = "10.0.0.2:80"

// freePort is a loopback port free now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts the service and returns once it serves. eci.json is
// kept: a restarted service takes the port it had, as the node expects.
func startServer() *process {
	info := filepath.Join(env.state, eciapi.InfoFile)
	var before time.Time
	if st, err := os.Stat(info); err == nil {
		before = st.ModTime()
	}
	// Instances reach the apiserver as the "kubernetes" service, as spoteci up sets it.
	forward := cluster.KubernetesServiceIP + ":443=" + strings.TrimPrefix(env.cluster.Server(), "https://")
	p := start(append([]string{"server", "--state-dir", env.state, "--time-scale", fmt.Sprint(scale), "--image-cache", env.images, "--forward", forward,
		"--listen", fmt.Sprintf("127.0.0.1:%d", env.eciPort), "--forward", fmt.Sprintf("%s=127.0.0.1:%d", eciForward, env.eciPort)},
		// More flags for a benchmark's experiments, as --launchers 4.
		strings.Fields(os.Getenv("SPOTECI_E2E_SERVER_ARGS"))...)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := os.Stat(info)
		if _, rerr := eciapi.ReadServerInfo(env.state); rerr == nil && err == nil && st.ModTime().After(before) {
			return p
		}
		if time.Now().After(deadline) {
			panic("the ECI service did not start:\n" + p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeName is the node the tests run; leaderLease is its replicas' election.
const (
	nodeName    = "virtual-kubelet-spoteci"
	leaderLease = "spoteci-" + nodeName
)

// startNode starts the node under the chart's identity, one replica of an
// election with short terms. Restarts keep the identity, as a container
// restarted in its pod does, and so take the Lease back at once.
func startNode() *process {
	return startReplica("e2e-node", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s", "--leader-elect-retry-period=1s")
}

func startReplica(identity string, args ...string) *process {
	return start(append([]string{"node", "--kubeconfig", env.nodeKubeconfig, "--state-dir", env.state, "--taint=false", "--approve-serving-csr",
		"--webhook-listen", "127.0.0.1:0", "--namespace", chart.Local(nodeName).Namespace, "--leader-elect", "--leader-elect-identity", identity}, args...)...)
}

func skipWithoutCluster(t testing.TB) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

// kubectl runs the real kubectl against the test cluster.
func kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := kubectlErr(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func kubectlErr(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(env.bin, "kubectl"), append([]string{"--kubeconfig", env.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// spoteci runs the spoteci CLI against the test service.
func spoteci(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.spoteci, append(args, "--state-dir", env.state)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("spoteci %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func setPrice(t testing.TB, typ, price string) {
	spoteci(t, "market", "set", "--type", typ, "--price", price)
}

func setStock(t testing.TB, typ string, stock int) {
	spoteci(t, "market", "set", "--type", typ, "--stock", fmt.Sprint(stock))
}

// namespace makes a namespace for the test and deletes it after.
func namespace(t testing.TB) string {
	t.Helper()
	ns := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	ns = strings.ReplaceAll(ns, "_", "-")
	if len(ns) > 50 {
		ns = ns[:50]
	}
	kubectl(t, "create", "namespace", ns)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kubectlErr("-n", ns, "get", "pods,events", "-o", "wide")
			t.Logf("namespace %s:\n%s\nnode log tail:\n%s", ns, out, tail(env.node.logs.String(), 3000))
		}
		kubectlErr("delete", "namespace", ns, "--wait=false")
	})
	return ns
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func apply(t testing.TB, ns, manifest string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "-n", ns, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// eventually polls cond every 200 ms until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen:\n%s", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pod is the part of a pod the tests read.
type pod struct {
	Metadata struct {
		Name, UID   string
		Annotations map[string]string
	}
	Status struct {
		Phase, Reason, Message string
		Conditions             []struct{ Type, Status, Reason, Message string }
		ContainerStatuses      []struct {
			Name  string
			Ready bool
			State map[string]json.RawMessage
		}
	}
}

func (p pod) condition(typ string) (status, reason string) {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

func pods(t testing.TB, ns, selector string) []pod {
	t.Helper()
	var list struct{ Items []pod }
	if err := json.Unmarshal([]byte(kubectl(t, "-n", ns, "get", "pods", "-l", selector, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// eciAdmin is the service's admin API (bills, market overrides).
func eciAdmin(t testing.TB) *eciapi.Client {
	t.Helper()
	info, err := eciapi.ReadServerInfo(env.state)
	if err != nil {
		t.Fatal(err)
	}
	return &eciapi.Client{Endpoint: info.Endpoint, Token: info.Token}
}

// eciSDK calls the service's ECI actions through the official SDK.
func eciSDK(t testing.TB) *ecisdk.Client { return eciSDKOf(t, env.state) }

// eciSDKOf calls the ECI actions of the service of state.
func eciSDKOf(t testing.TB, state string) *ecisdk.Client {
	t.Helper()
	info, err := eciapi.ReadServerInfo(state)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ecisdk.Local(info, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// groups lists the service's live instances of a namespace.
func groups(t testing.TB, ns string) []wire.ContainerGroup { return groupsOf(t, env.state, ns) }

// groupsOf lists the live instances of a namespace of the service of state.
func groupsOf(t testing.TB, state, ns string) []wire.ContainerGroup {
	t.Helper()
	resp, err := eciSDKOf(t, state).DescribeAllContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{Tags: []eciapi.Tag{{Key: "spoteci.io/namespace", Value: ns}}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ContainerGroups
}

// allGroups lists every instance of a namespace, deleted ones too, from the bill.
func allGroups(t testing.TB, ns string) []eciapi.BillItem {
	t.Helper()
	bill, err := eciAdmin(t).DescribeBill(context.Background(), eciapi.DescribeBillRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []eciapi.BillItem
	for _, it := range bill.Items {
		if strings.HasPrefix(it.ContainerGroupName, ns+"-") {
			out = append(out, it)
		}
	}
	return out
}

// groupLog is the container log of the (newest) instance of pod ns/name.
func groupLog(t testing.TB, ns, name string) string {
	t.Helper()
	for _, it := range allGroups(t, ns) {
		if it.ContainerGroupName == ns+"-"+name {
			resp, err := eciSDK(t).DescribeContainerLog(context.Background(), eciapi.DescribeContainerLogRequest{ContainerGroupId: it.ContainerGroupId})
			if err != nil {
				t.Fatal(err)
			}
			return resp.Content
		}
	}
	t.Fatalf("no instance for pod %s/%s", ns, name)
	return ""
}

// job renders a Job whose pods carry annotations and run command.
func job(name string, annotations map[string]string, command string, extraSpec string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
%s  template:
    metadata:
      annotations:
%s    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", %q]
      restartPolicy: Never
`, name, extraSpec, yamlMap(annotations, "        "), command)
}

// yamlMap renders m as YAML lines at indent, keys sorted.
func yamlMap(m map[string]string, indent string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s%s: %q\n", indent, k, m[k])
	}
	return b.String()
}

// loop is a container that says it started, then works until SIGTERM, which
// it reports in its log.
const loop = `echo started; trap 'echo got SIGTERM; exit 0' TERM; while :; do sleep 0.1; done`

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// leftovers lists what of a state folder's instances still exists after
// spoteci down: processes that name the folder (containerd, shims,
// loggers), mounted network namespaces, cgroups of its instances.
func leftovers(state string) string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), state) {
			out = append(out, "process "+filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	if mounts, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(mounts), "\n") {
			if strings.Contains(line, state) {
				out = append(out, "mount "+line)
			}
		}
	}
	return strings.Join(out, "\n")
}
