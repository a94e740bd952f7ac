package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/spoteci/spoteci/internal/forker"
	"github.com/spoteci/spoteci/internal/registry"
	"github.com/spoteci/spoteci/internal/runtime/daemon"
	"github.com/spoteci/spoteci/test/testimage"
)

// The kubelet peer of the Job benchmarks: a real kubelet (bin/kubelet, make
// kubelet, from the control plane's pinned module graph) on a containerd of
// its own that serves CRI (Debian's containerd 1.6, runc, cgroupfs, the CNI
// bridge plugin), registered as node kubeletNode in the e2e cluster. Its
// pods reach it as kwok's do: a label to select and a taint to tolerate.
//
// No public registry is reachable, so the test process serves one
// (internal/registry) that stands in for docker.io (busybox, from
// bin/images) and registry.k8s.io (the sandbox image, test/e2e/pause).
//
// Everything it keeps is under one temporary folder. What it changes on the
// host, a kubelet's usual footprint, is recorded before it starts and put
// back when it stops: iptables chains (KUBE-FIREWALL, the canaries), the
// kernel tunables a kubelet sets, the kubepods cgroups, the CNI bridge, the
// /var/log/containers links.
const (
	kubeletNode   = "kubelet-peer"
	kubeletLabel  = "type: kubelet"
	kubeletTaint  = "spoteci.io/bench-peer"
	kubeletBridge = "kpeer0"
	kubeletCNI    = "kubelet-peer"
	// kubeletSubnet is clear of spoteci's networks (10.88.0.0/16 to
	// 10.187.0.0/16), kwok's 10.200.0.0/16 and the service range.
	kubeletSubnet = "10.230.0.0/16"
	pauseImage    = "registry.k8s.io/pause:3.10"
)

// kubeletSysctls are the tunables a kubelet sets at start (its
// setupKernelTunables) and the CNI bridge's forwarding: put back after.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
	"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
}

type kubeletPeer struct {
	dir, sock           string
	kubelet, containerd *exec.Cmd
	reg                 *registry.Registry
	host                hostState
	once                sync.Once
}

// startKubeletPeer starts the peer and returns once its node is Ready; nil
// (and the peer's figures left out) without bin/kubelet or containerd, or
// with SPOTECI_BENCH_KUBELET=0 (the other peers alone, in minutes).
func startKubeletPeer(t testing.TB) *kubeletPeer {
	t.Helper()
	if os.Getenv("SPOTECI_BENCH_KUBELET") == "0" {
		t.Logf("no kubelet peer: SPOTECI_BENCH_KUBELET=0")
		return nil
	}
	bin := filepath.Join(env.bin, "kubelet")
	if _, err := os.Stat(bin); err != nil {
		t.Logf("no kubelet peer: %s is missing (make kubelet)", bin)
		return nil
	}
	ctrd, err := exec.LookPath("containerd")
	if err != nil {
		t.Logf("no kubelet peer: containerd is not installed (hack/deps.sh)")
		return nil
	}
	// Short, for the socket's 108 bytes.
	dir, err := os.MkdirTemp("", "kubelet-peer-")
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeletPeer{dir: dir, sock: filepath.Join(dir, "containerd.sock"), host: saveHost(t)}
	t.Cleanup(func() { k.stop(t) })
	ctx := context.Background()

	token := make([]byte, 16)
	rand.Read(token)
	if k.reg, err = registry.Start(ctx, filepath.Join(dir, "registry"), "", hex.EncodeToString(token), nil); err != nil {
		t.Fatal(err)
	}
	pause, err := testimage.Build(dir, "github.com/spoteci/spoteci/test/e2e/pause", pauseImage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Load(ctx, k.reg.Addr(), k.reg.Authenticator(), pause); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Load(ctx, k.reg.Addr(), k.reg.Authenticator(), filepath.Join(env.images, "busybox.tar"), "busybox"); err != nil {
		t.Fatal(err)
	}

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cni, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": kubeletCNI,
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": kubeletBridge, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{
				"type": "host-local", "ranges": [][]map[string]string{{{"subnet": kubeletSubnet}}},
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}}, "dataDir": filepath.Join(dir, "cni", "ipam"),
			},
		}},
	})
	write("cni/net.d/10-bridge.conflist", string(cni))
	cfg := write("containerd.toml", kubeletContainerdConfig(dir, k.sock, k.reg.Addr()))
	k.containerd = exec.Command(ctrd, "--config", cfg)
	k.containerd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	startLogged(t, k.containerd, filepath.Join(dir, "containerd.log"))
	eventually(t, 30*time.Second, "the peer's containerd answering", func() (bool, string) {
		c, err := net.DialTimeout("unix", k.sock, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil, tailFile(filepath.Join(dir, "containerd.log"), 2000)
	})

	rest, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ca := rest.TLSClientConfig.CAFile
	if len(rest.TLSClientConfig.CAData) > 0 {
		ca = write("ca.crt", string(rest.TLSClientConfig.CAData))
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	healthz, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	kcfg := write("kubelet.yaml", fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
maxPods: 1100
serializeImagePulls: false
podLogsDir: %q
resolvConf: /etc/resolv.conf
registerWithTaints:
- {key: %s, value: kubelet, effect: NoSchedule}
`, port, healthz, ca, k.sock, filepath.Join(dir, "pods"), kubeletTaint))
	// The admin kubeconfig: a benchmark peer, not a node to secure.
	k.kubelet = exec.Command(bin, "--config", kcfg, "--kubeconfig", env.kubeconfig, "--root-dir", filepath.Join(dir, "kubelet"),
		"--hostname-override", kubeletNode, "--node-labels", strings.ReplaceAll(kubeletLabel, ": ", "="))
	k.kubelet.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	startLogged(t, k.kubelet, filepath.Join(dir, "kubelet.log"))
	eventually(t, 2*time.Minute, "the kubelet's node Ready", func() (bool, string) {
		out, _ := kubectlErr("get", "node", kubeletNode)
		if k.kubelet.ProcessState != nil {
			t.Fatalf("the kubelet exited:\n%s", tailFile(filepath.Join(dir, "kubelet.log"), 4000))
		}
		return strings.Contains(out, " Ready"), out + tailFile(filepath.Join(dir, "kubelet.log"), 3000)
	})
	return k
}

// kubeletContainerdConfig is the peer's containerd: everything under dir,
// CRI on, runc under cgroupfs (the machine's cgroups are v1), the local
// registry as docker.io and registry.k8s.io. Without CAP_SYS_RESOURCE (in
// a container) no process may lower its OOM score, and runc fails every
// sandbox (whose pause CRI gives -998) with "can't get final child's PID
// from pipe": restrict_oom_score_adj keeps scores at containerd's or above,
// as for a rootless containerd.
func kubeletContainerdConfig(dir, sock, reg string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = %t
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://%s"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
    endpoint = ["http://%s"]
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"),
		pauseImage, !hasCapability(unix.CAP_SYS_RESOURCE), filepath.Join(dir, "runc"), filepath.Join(dir, "cni", "net.d"), reg, reg)
}

// hasCapability tells whether this process has capability c in its
// effective set.
func hasCapability(c int) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<c) != 0
		}
	}
	return false
}

// startLogged starts cmd with its output in the file at log.
func startLogged(t testing.TB, cmd *exec.Cmd, log string) {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := forker.Start(cmd); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
}

func tailFile(p string, n int) string {
	data, _ := os.ReadFile(p)
	return tail(string(data), n)
}

// matches tells whether a process belongs to the peer (the kubelet, its
// containerd, their shims): all name its folder.
func (k *kubeletPeer) matches(cmdline string) bool { return strings.Contains(cmdline, k.dir) }

// stop takes the peer down and puts the host back: the kubelet first (its
// pods are force-deleted from the API, as a lost node's are), then every
// sandbox through CRI (which stops the containers and tears their network
// down), containerd, stray shims, the mounts under its folder, and what it
// changed on the host. The caller deletes the controllers of its pods first.
func (k *kubeletPeer) stop(t testing.TB) {
	k.once.Do(func() {
		began := time.Now()
		stopCmd(k.kubelet)
		if t.Failed() {
			t.Logf("the kubelet's log:\n%s", tailFile(filepath.Join(k.dir, "kubelet.log"), 4000))
		}
		kubectlErr("delete", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+kubeletNode, "--force", "--grace-period=0", "--wait=false")
		kubectlErr("delete", "node", kubeletNode, "--wait=false")
		if k.containerd != nil {
			if n, err := k.removeSandboxes(); err != nil {
				t.Errorf("removing the peer's sandboxes: %v", err)
			} else if n > 0 {
				t.Logf("kubelet peer: removed %d sandboxes through CRI", n)
			}
		}
		stopCmd(k.containerd)
		for _, sh := range daemon.Shims() {
			if slices.Contains(sh.Args, k.sock) {
				syscall.Kill(sh.PID, syscall.SIGKILL)
			}
		}
		unmountUnder(t, k.dir)
		k.host.restore(t)
		if k.reg != nil {
			k.reg.Close()
		}
		if err := os.RemoveAll(k.dir); err != nil {
			t.Errorf("removing the peer's folder: %v", err)
		}
		t.Logf("kubelet peer stopped and the host put back in %s", time.Since(began).Round(100*time.Millisecond))
	})
}

// stopCmd ends a process we started: SIGTERM, SIGKILL after 30 seconds.
func stopCmd(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(cmd.Process.Pid, 0) == nil && !zombie(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// removeSandboxes stops and removes every pod sandbox of the peer's
// containerd, four at a time.
func (k *kubeletPeer) removeSandboxes() (int, error) {
	conn, err := grpc.NewClient("unix://"+k.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return 0, err
	}
	ids := make(chan string)
	errs := make(chan error, len(list.Items))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
					errs <- fmt.Errorf("stopping sandbox %s: %w", id, err)
					continue
				}
				if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
					errs <- fmt.Errorf("removing sandbox %s: %w", id, err)
				}
			}
		}()
	}
	for _, s := range list.Items {
		ids <- s.Id
	}
	close(ids)
	wg.Wait()
	close(errs)
	return len(list.Items), <-errs // the first, if any
}

// unmountUnder detaches every mount below dir, deepest first: the
// kubelet's shared bind of its root folder, volumes, rootfs, shm.
func unmountUnder(t testing.TB, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("reading mountinfo: %v", err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			t.Errorf("unmounting %s: %v", p, err)
		}
	}
}

// hostState is what a kubelet and CNI change on the host, as it was.
type hostState struct {
	iptables map[string]string // iptables-save's and ip6tables-save's output
	sysctls  map[string]string
	cgroups  map[string]bool // kubepods folders that existed, by path
	dirs     map[string]bool // folders that existed: /var/log/containers, /var/lib/cni
	entries  map[string]bool // what they held
	link     bool            // the bridge existed
	netns    map[string]bool // /var/run/netns entries
}

var hostDirs = []string{"/var/log/containers", "/var/lib/cni", "/var/lib/cni/results"}

func saveHost(t testing.TB) hostState {
	h := hostState{iptables: map[string]string{}, sysctls: map[string]string{}, cgroups: map[string]bool{},
		dirs: map[string]bool{}, entries: map[string]bool{}, netns: map[string]bool{}}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(save).Output()
		if err != nil {
			t.Fatalf("%s: %v", save, err)
		}
		h.iptables[save] = string(out)
	}
	for _, s := range kubeletSysctls {
		if v, err := os.ReadFile("/proc/sys/" + s); err == nil {
			h.sysctls[s] = strings.TrimSpace(string(v))
		}
	}
	for _, c := range kubepodsCgroups() {
		h.cgroups[c] = true
	}
	for _, d := range hostDirs {
		ents, err := os.ReadDir(d)
		h.dirs[d] = err == nil
		for _, e := range ents {
			h.entries[filepath.Join(d, e.Name())] = true
		}
	}
	_, err := net.InterfaceByName(kubeletBridge)
	h.link = err == nil
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		h.netns[e.Name()] = true
	}
	return h
}

// kubepodsCgroups are the kubelet's top cgroups in each v1 hierarchy.
func kubepodsCgroups() []string {
	m, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	return m
}

// restore puts back what the kubelet and CNI changed, and says what that
// was. Only what the kubelet and CNI make is touched (KUBE- and CNI-
// chains, not spoteci's rules, which may change meanwhile).
func (h hostState) restore(t testing.TB) {
	if h.iptables == nil {
		return
	}
	var changed []string
	for save, before := range h.iptables {
		cmd := strings.TrimSuffix(save, "-save")
		after, err := exec.Command(save).Output()
		if err != nil {
			t.Errorf("%s: %v", save, err)
			continue
		}
		b, a := parseIptables(before), parseIptables(string(after))
		for table, ta := range a {
			tb, ok := b[table]
			if !ok {
				// With iptables-nft the kubelet's chains leave their table
				// behind, empty; only nft could delete it.
				changed = append(changed, fmt.Sprintf("%s %s: table left, emptied", cmd, table))
			}
			// Jumps into the new chains from chains that stay, then the chains.
			for _, rule := range ta.rules {
				chain, _, _ := strings.Cut(rule, " ")
				if tb.has(rule) || !ownRule(rule) || ownChain(chain) && !tb.chains[chain] {
					continue
				}
				args, err := splitRule(rule)
				if err == nil {
					err = exec.Command(cmd, append([]string{"-w", "-t", table, "-D"}, args...)...).Run()
				}
				if err != nil {
					t.Errorf("%s -t %s -D %s: %v", cmd, table, rule, err)
				}
				changed = append(changed, fmt.Sprintf("%s %s: -A %s", cmd, table, rule))
			}
			// All flushed before any is deleted: one may jump to another.
			var chains []string
			for chain := range ta.chains {
				if !tb.chains[chain] && ownChain(chain) {
					chains = append(chains, chain)
					exec.Command(cmd, "-w", "-t", table, "-F", chain).Run()
				}
			}
			for _, chain := range chains {
				if out, err := exec.Command(cmd, "-w", "-t", table, "-X", chain).CombinedOutput(); err != nil {
					t.Errorf("%s -t %s -X %s: %v %s", cmd, table, chain, err, out)
				}
				changed = append(changed, fmt.Sprintf("%s %s: chain %s", cmd, table, chain))
			}
		}
		// Checked: the kubelet's and CNI's lines are as they were.
		again, _ := exec.Command(save).Output()
		if x, y := ownLines(before), ownLines(string(again)); !slices.Equal(x, y) {
			t.Errorf("%s: KUBE-/CNI- rules not as before the kubelet:\nbefore %q\nnow %q", save, x, y)
		}
	}
	for _, s := range kubeletSysctls {
		v, err := os.ReadFile("/proc/sys/" + s)
		old, ok := h.sysctls[s]
		if err != nil || !ok || strings.TrimSpace(string(v)) == old {
			continue
		}
		changed = append(changed, fmt.Sprintf("sysctl %s: %s (was %s)", s, strings.TrimSpace(string(v)), old))
		if err := os.WriteFile("/proc/sys/"+s, []byte(old), 0o644); err != nil {
			t.Errorf("restoring sysctl %s: %v", s, err)
		}
	}
	for _, c := range kubepodsCgroups() {
		if h.cgroups[c] {
			continue
		}
		changed = append(changed, "cgroup "+c)
		if err := removeCgroup(c); err != nil {
			t.Errorf("removing cgroup %s: %v", c, err)
		}
	}
	if _, err := net.InterfaceByName(kubeletBridge); err == nil && !h.link {
		changed = append(changed, "link "+kubeletBridge)
		if out, err := exec.Command("ip", "link", "del", kubeletBridge).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v %s", kubeletBridge, err, out)
		}
	}
	ents, _ := os.ReadDir("/var/run/netns")
	for _, e := range ents {
		if !h.netns[e.Name()] && strings.HasPrefix(e.Name(), "cni-") {
			p := filepath.Join("/var/run/netns", e.Name())
			changed = append(changed, "netns "+p)
			unix.Unmount(p, unix.MNT_DETACH)
			os.Remove(p)
		}
	}
	// Deepest first, so that a folder the run made is empty when its turn comes.
	for i := len(hostDirs) - 1; i >= 0; i-- {
		d := hostDirs[i]
		ents, _ := os.ReadDir(d)
		files := 0
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if !h.entries[p] && (d == "/var/log/containers" || strings.HasPrefix(e.Name(), kubeletCNI+"-")) {
				files++
				os.Remove(p)
			}
		}
		if files > 0 {
			changed = append(changed, fmt.Sprintf("%d files in %s", files, d))
		}
		if !h.dirs[d] {
			if err := os.Remove(d); err == nil {
				changed = append(changed, "folder "+d)
			}
		}
	}
	// One line: a benchmark's log is cut after a few.
	t.Logf("kubelet peer: %d host changes found and undone: %s", len(changed), strings.Join(changed, "; "))
}

// removeCgroup removes a cgroup folder and its children, deepest first.
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var first error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func ownChain(c string) bool { return strings.HasPrefix(c, "KUBE-") || strings.HasPrefix(c, "CNI-") }

func ownRule(r string) bool { return strings.Contains(r, "KUBE-") || strings.Contains(r, "CNI-") }

// ownLines are the chain and rule lines of an iptables-save output that
// name the kubelet's or CNI's chains, sorted.
func ownLines(save string) []string {
	var out []string
	for _, line := range strings.Split(save, "\n") {
		if (strings.HasPrefix(line, ":") || strings.HasPrefix(line, "-A ")) && ownRule(line) {
			line, _, _ = strings.Cut(line, " [") // a chain's counters
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

type iptTable struct {
	chains map[string]bool
	rules  []string // as -A gives them, without the -A
}

func (t iptTable) has(rule string) bool { return slices.Contains(t.rules, rule) }

func parseIptables(save string) map[string]iptTable {
	out := map[string]iptTable{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(save))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			cur = line[1:]
			out[cur] = iptTable{chains: map[string]bool{}}
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			out[cur].chains[name] = true
		case strings.HasPrefix(line, "-A "):
			t := out[cur]
			t.rules = append(t.rules, line[3:])
			out[cur] = t
		}
	}
	return out
}

// splitRule splits a rule as iptables-save writes it into arguments:
// fields, with double-quoted ones (comments) unquoted.
func splitRule(rule string) ([]string, error) {
	var args []string
	var cur strings.Builder
	in, had := false, false
	for i := 0; i < len(rule); i++ {
		c := rule[i]
		switch {
		case c == '\\' && in && i+1 < len(rule):
			i++
			cur.WriteByte(rule[i])
		case c == '"':
			in, had = !in, true
		case c == ' ' && !in:
			if cur.Len() > 0 || had {
				args = append(args, cur.String())
			}
			cur.Reset()
			had = false
		default:
			cur.WriteByte(c)
		}
	}
	if in {
		return nil, fmt.Errorf("unbalanced quote in %q", rule)
	}
	if cur.Len() > 0 || had {
		args = append(args, cur.String())
	}
	return args, nil
}

// procCPU is the CPU time (user and system) of a process and of its
// children that it waited for (runc under a shim, CNI plugins under
// containerd), in seconds.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 15 {
		return 0
	}
	var ticks int64
	for _, f := range fields[11:15] { // utime stime cutime cstime
		v, _ := strconv.ParseInt(f, 10, 64)
		ticks += v
	}
	return float64(ticks) / 100
}

// procsOf lists the processes whose command line matches, with their CPU
// seconds so far.
func procsOf(match func(cmdline string) bool) map[int]float64 {
	out := map[int]float64{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !match(strings.ReplaceAll(string(b), "\x00", " ")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		out[pid] = procCPU(pid)
	}
	return out
}

// cpuSince is the CPU the processes that match have used since before was
// taken (those that ended meanwhile are lost: shims of deleted containers).
func cpuSince(before map[int]float64, match func(string) bool) float64 {
	var sum float64
	for pid, cpu := range procsOf(match) {
		sum += cpu - before[pid]
	}
	return sum
}

// rssOf is the resident memory of the processes that match, in MiB: the
// sum of their resident sets, and of their proportional sets (PSS: a page
// that n processes share counts 1/n in each), which is what they hold
// together; a thousand shims share one binary.
func rssOf(match func(string) bool) (rss, pss float64) {
	for pid := range procsOf(match) {
		rss += rssMiB(pid)
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
				pss += float64(kb) / 1024
				break
			}
		}
	}
	return rss, pss
}
