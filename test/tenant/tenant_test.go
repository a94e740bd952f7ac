// Package tenant is the standing adversarial suite of issue 19: `spoteci up`
// as `make up` runs it, and a hostile tenant's pods (the attacker program,
// built into an image here) that try to reach the host. The pods report
// what they saw as JSON lines in their logs; the tests judge.
package tenant

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/cluster"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/test/testimage"
)

// env is the `spoteci up` all tests attack.
var env struct {
	bin, state, kubeconfig string
	up                     *exec.Cmd
	upLog                  *syncBuffer
	skip                   string
}

// attackerImage is the reference the tenants' pods run.
const attackerImage = "tenant/attacker:1"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	root, _ := filepath.Abs("../..")
	env.bin = filepath.Join(root, "bin")
	for _, b := range append(cluster.Binaries, "kubectl", "spoteci") {
		if _, err := os.Stat(filepath.Join(env.bin, b)); err != nil {
			env.skip = fmt.Sprintf("bin/%s is missing: run `make build kube images`", b)
			return m.Run()
		}
	}
	if _, err := os.Stat(filepath.Join(env.bin, "images", "perl.tar")); err != nil {
		env.skip = "bin/images is missing: run `make images`"
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "spoteci-tenant")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	env.state = filepath.Join(tmp, "state")
	env.kubeconfig = filepath.Join(env.state, "kubeconfig")
	archive, err := testimage.Build(tmp, "github.com/spoteci/spoteci/test/tenant/attacker", attackerImage)
	if err != nil {
		panic(err)
	}
	// As `make up` runs it, with the market at its default speed.
	env.upLog = &syncBuffer{}
	env.up = exec.Command(filepath.Join(env.bin, "spoteci"), "up", "--state-dir", env.state, "--time-scale", "60",
		"--image-cache", filepath.Join(env.bin, "images"))
	env.up.Stdout, env.up.Stderr = env.upLog, env.upLog
	env.up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := env.up.Start(); err != nil {
		panic(err)
	}
	code := 1
	defer func() {
		env.up.Process.Signal(syscall.SIGINT)
		env.up.Wait()
		if out, err := exec.Command(filepath.Join(env.bin, "spoteci"), "down", "--state-dir", env.state).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "spoteci down: %v\n%s", err, out)
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(env.upLog.String(), "spoteci is up") {
		if time.Now().After(deadline) || env.up.ProcessState != nil {
			fmt.Fprintf(os.Stderr, "spoteci up did not come up:\n%s", env.upLog.String())
			return code
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := exec.Command(filepath.Join(env.bin, "spoteci"), "image", "load", archive, "--name", attackerImage, "--state-dir", env.state).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "loading the attacker's image: %v\n%s", err, out)
		return code
	}
	code = m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "spoteci up's output:\n%s", tail(env.upLog.String(), 4000))
	}
	return code
}

// syncBuffer is spoteci up's output: written by exec's copier while the
// tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func skipWithoutUp(t *testing.T) {
	t.Helper()
	if env.skip != "" {
		t.Skip(env.skip)
	}
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(env.bin, "kubectl"), append([]string{"--kubeconfig", env.kubeconfig}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// namespace makes a tenant's namespace, deleted after the test.
func namespace(t *testing.T, name string) string {
	t.Helper()
	kubectl(t, "create", "namespace", name)
	t.Cleanup(func() {
		exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "delete", "namespace", name, "--wait=false").Run()
	})
	return name
}

// attack runs the attacker with args in a pod of ns, with more fields for
// its container (YAML, indented for the container), and returns what it
// reported once it ended.
func attack(t *testing.T, ns, pod, container string, args ...string) []finding {
	t.Helper()
	return report(t, ns, pod, runAttacker(t, ns, pod, container, args...))
}

// report is what the attacker in pod reported, once the pod ended in phase.
func report(t *testing.T, ns, pod, phase string) []finding {
	t.Helper()
	log := kubectl(t, "-n", ns, "logs", pod)
	var out []finding
	done := false
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var f finding
		if json.Unmarshal(sc.Bytes(), &f) != nil {
			continue
		}
		if f.Attack == "done" {
			done = true
			continue
		}
		out = append(out, f)
	}
	if !done {
		t.Fatalf("the attacker in %s/%s did not finish (phase %s):\n%s", ns, pod, phase, log)
	}
	return out
}

// runAttacker runs the attacker with args in a pod of ns and returns the
// pod's phase once it ended.
func runAttacker(t *testing.T, ns, pod, container string, args ...string) string {
	t.Helper()
	createAttacker(t, ns, pod, container, args...)
	return waitEnded(t, ns, pod)
}

// createAttacker creates the pod of runAttacker.
func createAttacker(t *testing.T, ns, pod, container string, args ...string) {
	t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  restartPolicy: Never
  automountServiceAccountToken: true
  containers:
  - name: attacker
    image: %s
    args: [%s]
%s`, pod, ns, attackerImage, strings.Join(quoted, ", "), container)
	cmd := exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("creating pod %s/%s: %v\n%s", ns, pod, err, out)
	}
}

// waitEnded waits for pod to end and returns its phase.
func waitEnded(t *testing.T, ns, pod string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		phase := strings.TrimSpace(kubectl(t, "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.phase}"))
		if phase == "Succeeded" || phase == "Failed" {
			return phase
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s did not end (phase %q):\n%s", ns, pod, phase, kubectl(t, "-n", ns, "describe", "pod", pod))
		}
		time.Sleep(time.Second)
	}
}

// finding is one line of the attacker's report.
type finding struct {
	Attack string `json:"attack"`
	Target string `json:"target"`
	Result string `json:"result"`
}

// TestPodReachesNothingOfTheHost: with NET_RAW, a tenant's pod sends raw
// SYNs to 127.0.0.1 through its gateway and connects to the gateway, on
// every port that spoteci up's processes listen on; nothing answers. The
// apiserver answers through the kubernetes service.
func TestPodReachesNothingOfTheHost(t *testing.T) {
	skipWithoutUp(t)
	ports := upListeners(t)
	// The enumeration must have found the listeners we know of.
	for what, addr := range knownListeners(t) {
		if _, ok := ports[addr]; !ok {
			t.Fatalf("the listeners of spoteci up's processes %v miss the %s at %d", ports, what, addr)
		}
	}
	t.Logf("spoteci up's listeners: %v", ports)
	var list []string
	for p := range ports {
		list = append(list, strconv.Itoa(p))
	}
	sort.Strings(list)
	ns := namespace(t, "tenant-b")
	findings := attack(t, ns, "probe", `    securityContext:
      capabilities:
        add: ["NET_RAW"]
`, "probe", strings.Join(list, ","))
	seen := map[string]int{}
	for _, f := range findings {
		t.Logf("%s %s: %s", f.Attack, f.Target, f.Result)
		seen[f.Attack]++
		switch f.Attack {
		case "raw-syn", "connect-gateway":
			if f.Result != "silent" {
				t.Errorf("%s %s (%s): %s", f.Attack, f.Target, ports[portOf(f.Target)], f.Result)
			}
		case "apiserver":
			if !strings.HasPrefix(f.Result, "answered") {
				t.Errorf("the apiserver through the kubernetes service at %s: %s", f.Target, f.Result)
			}
		default:
			t.Errorf("the probe could not run: %s %s: %s", f.Attack, f.Target, f.Result)
		}
	}
	if seen["raw-syn"] != len(ports) || seen["connect-gateway"] != len(ports) || seen["apiserver"] != 1 {
		t.Errorf("the probe tried %v, want %d ports each way and the apiserver", seen, len(ports))
	}
}

func portOf(target string) int {
	_, p, _ := net.SplitHostPort(target)
	n, _ := strconv.Atoi(p)
	return n
}

// TestNoRawSocketByDefault: a pod that asks for nothing has Kubernetes'
// default capabilities, without NET_RAW.
func TestNoRawSocketByDefault(t *testing.T) {
	skipWithoutUp(t)
	ns := namespace(t, "tenant-a")
	for _, f := range attack(t, ns, "caps", "", "caps") {
		if f.Attack == "raw-socket" && !strings.HasPrefix(f.Result, "refused") {
			t.Errorf("a pod without capabilities opened a raw socket: %s", f.Result)
		}
	}
}

// TestForkBombBounded: a pod that forks until the kernel refuses is
// stopped by its pids limit, and another tenant's pod starts meanwhile.
func TestForkBombBounded(t *testing.T) {
	skipWithoutUp(t)
	a, b := namespace(t, "tenant-bomb"), namespace(t, "tenant-victim")
	createAttacker(t, a, "bomb", "", "forkbomb", "20s")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _ := exec.Command(filepath.Join(env.bin, "kubectl"), "--kubeconfig", env.kubeconfig, "-n", a, "logs", "bomb").CombinedOutput()
		if strings.Contains(string(out), `"forkbomb"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fork bomb did not report:\n%s", kubectl(t, "-n", a, "describe", "pod", "bomb"))
		}
		time.Sleep(time.Second)
	}
	// While the bomb holds every pid it got, a pod of another tenant runs.
	victim := attack(t, b, "victim", "", "caps")
	if len(victim) == 0 {
		t.Errorf("the victim's pod reported nothing")
	}
	for _, f := range report(t, a, "bomb", waitEnded(t, a, "bomb")) {
		t.Logf("%s: %s processes, %s", f.Attack, f.Target, f.Result)
		if f.Attack == "forkbomb" && !strings.HasPrefix(f.Result, "refused") {
			t.Errorf("a fork bomb started %s processes and was %s", f.Target, f.Result)
		}
	}
}

// TestDiskBounded: a pod that writes past its ephemeral-storage limit is
// evicted, as a kubelet evicts it.
func TestDiskBounded(t *testing.T) {
	skipWithoutUp(t)
	ns := namespace(t, "tenant-disk")
	phase := runAttacker(t, ns, "fill", `    resources:
      limits:
        ephemeral-storage: 32Mi
`, "fill", "/big", "96")
	reason := strings.TrimSpace(kubectl(t, "-n", ns, "get", "pod", "fill", "-o", "jsonpath={.status.reason}"))
	if phase != "Failed" || reason != "Evicted" {
		t.Errorf("a pod that wrote 96 MiB past its 32Mi ended %s (reason %q), want Failed (Evicted):\n%s",
			phase, reason, kubectl(t, "-n", ns, "describe", "pod", "fill"))
	}
}

// knownListeners are listeners spoteci up is known to have: the
// apiserver, the ECI service and the local registry.
func knownListeners(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	info, err := eciapi.ReadServerInfo(env.state)
	if err != nil {
		t.Fatal(err)
	}
	out["ECI service"] = portOf(strings.TrimPrefix(strings.TrimPrefix(info.Endpoint, "http://"), "https://"))
	server := strings.TrimSpace(kubectl(t, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	out["apiserver"] = portOf(u.Host)
	for line := range strings.SplitSeq(env.upLog.String(), "\n") {
		if _, addr, ok := strings.Cut(line, "local registry: "); ok {
			out["registry"] = portOf(strings.Fields(addr)[0])
		}
	}
	return out
}

// upListeners are the TCP ports that spoteci up and every process under it
// listen on, with the listening program's name.
func upListeners(t *testing.T) map[int]string {
	t.Helper()
	procs := descendants(env.up.Process.Pid)
	inodes := map[string]string{}
	for pid, comm := range procs {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = comm
			}
		}
	}
	ports := map[int]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" { // LISTEN
				continue
			}
			comm, ok := inodes[f[9]]
			if !ok {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			p, _ := strconv.ParseUint(hexPort, 16, 16)
			ports[int(p)] = comm
		}
	}
	if len(ports) == 0 {
		t.Fatal("found no listener of spoteci up")
	}
	return ports
}

// descendants are pid and every process under it, by name.
func descendants(root int) map[int]string {
	parent, comm := map[int]int{}, map[int]string{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:open])))
		rest := strings.Fields(string(b[close+1:]))
		if len(rest) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(rest[1])
		parent[pid], comm[pid] = ppid, string(b[open+1:close])
	}
	out := map[int]string{root: comm[root]}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if _, in := out[pid]; !in {
				if _, up := out[pp]; up {
					out[pid] = comm[pid]
					changed = true
				}
			}
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
