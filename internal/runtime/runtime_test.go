package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spoteci/spoteci/internal/runtime/daemon"
	"github.com/spoteci/spoteci/internal/runtime/runtimetest"
)

// The tests run against a real containerd (started as spoteci starts it)
// and a real registry on loopback holding the built-in busybox image.
var env *runtimetest.Env

func TestMain(m *testing.M) {
	var err error
	if env, err = runtimetest.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// newRuntime returns a runtime on a fresh folder, closed and destroyed at the
// end of the test.
func newRuntime(t testing.TB) *Containerd {
	t.Helper()
	return openRuntime(t, t.TempDir())
}

func openRuntime(t testing.TB, dir string) *Containerd {
	t.Helper()
	return openRuntimeWith(t, dir, func(*Config) {})
}

// openRuntimeWith opens a runtime on dir with the tests' configuration,
// changed by edit.
func openRuntimeWith(t testing.TB, dir string, edit func(*Config)) *Containerd {
	t.Helper()
	var regs Registries
	if err := regs.AddMirror(env.Mirror()); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: dir, Address: env.Daemon.Address, ContainerdState: env.Daemon.State(), Registries: regs,
		PullBackoff: 500 * time.Millisecond, Namespace: "spoteci-test"}
	edit(&cfg)
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Destroy(context.Background())
		r.Close()
	})
	return r
}

func busybox(name string, script string) Container {
	return Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", script}}
}

func start(t testing.TB, r *Containerd, in Instance) {
	t.Helper()
	if in.Hostname == "" {
		in.Hostname = in.ID
	}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := poll(timeout, func() (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// waitState waits until container name of id is in state and returns its status.
func waitState(t testing.TB, r *Containerd, id, name string, state State) ContainerStatus {
	t.Helper()
	var st Status
	var found ContainerStatus
	err := poll(time.Minute, func() (bool, error) {
		var err error
		if st, err = r.Status(id); err != nil {
			return false, err
		}
		for _, c := range st.Containers {
			if c.Name == name && c.State == state {
				found = c
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s/%s %s: %v; last status %+v", id, name, state, err, st)
	}
	return found
}

// poll asks cond every 20 ms until it holds, for timeout at most.
func poll(timeout time.Duration, cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, timeout, true,
		func(context.Context) (bool, error) { return cond() })
}

func readLog(t testing.TB, r *Containerd, id, name string) string {
	t.Helper()
	rc, err := r.Log(id, name, LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func reasons(st Status) []string {
	var out []string
	for _, e := range st.Events {
		out = append(out, e.Reason)
	}
	return out
}

func TestRunsImage(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "run", Hostname: "pi-abcde", Containers: []Container{
		busybox("main", `echo hello; echo err >&2; hostname; cat /etc/hostname; echo; pwd`),
	}})
	cs := waitState(t, r, "run", "main", StateTerminated)
	if cs.ExitCode != 0 || cs.Reason != ReasonCompleted {
		t.Errorf("ended %d %s %q, want 0 Completed", cs.ExitCode, cs.Reason, cs.Message)
	}
	if !strings.HasPrefix(cs.ImageID, "sha256:") {
		t.Errorf("ImageID = %q, want a digest", cs.ImageID)
	}
	got := readLog(t, r, "run", "main")
	// stdout and stderr are two pipes: the order between them is not kept.
	for _, want := range []string{"hello\n", "err\n", "pi-abcde\n", "\n/\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	st, _ := r.Status("run")
	if want := []string{"Pulling", "Pulled", "Created", "Started"}; !slices.Equal(reasons(st), want) {
		t.Errorf("events %v, want %v", reasons(st), want)
	}
	if ids, _ := r.Exits(); !slices.Contains(ids, "run") {
		t.Errorf("Exits() = %v, want run", ids)
	}
}

func TestProcessArgs(t *testing.T) {
	ep, cmd := []string{"/entry"}, []string{"default"}
	for _, tc := range []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/entry", "default"}},
		{nil, []string{"x"}, []string{"/entry", "x"}},
		{[]string{"perl"}, nil, []string{"perl"}},
		{[]string{"perl"}, []string{"-e", "1"}, []string{"perl", "-e", "1"}},
	} {
		if got := processArgs(ep, cmd, tc.command, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("processArgs(%v, %v) = %v, want %v", tc.command, tc.args, got, tc.want)
		}
	}
}

// TestImageDefaults: a container without a command runs the image's cmd;
// Args alone replace the cmd after the (here empty) entrypoint; Env and
// WorkingDir apply over the image's.
func TestImageDefaults(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "cmd", Containers: []Container{{Name: "main", Image: "busybox"}}})
	if cs := waitState(t, r, "cmd", "main", StateTerminated); cs.ExitCode != 0 {
		t.Errorf("the image's cmd (sh, stdin closed) ended %d %s %q", cs.ExitCode, cs.Reason, cs.Message)
	}
	start(t, r, Instance{ID: "args", Containers: []Container{{Name: "main", Image: "busybox", Args: []string{"-c", "true"}}}})
	if cs := waitState(t, r, "args", "main", StateTerminated); cs.Reason != ReasonStartError || !strings.Contains(cs.Message, "-c") {
		t.Errorf("args without an entrypoint ended %d %s %q, want a StartError naming -c", cs.ExitCode, cs.Reason, cs.Message)
	}
	start(t, r, Instance{ID: "env", Containers: []Container{
		{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "echo $GREETING from $(pwd) on $PATH"}, Env: []string{"GREETING=hi"}, WorkingDir: "/tmp"},
	}})
	waitState(t, r, "env", "main", StateTerminated)
	if got, want := readLog(t, r, "env", "main"), "hi from /tmp on /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

// TestSizedToSpec: the limits read inside a container are the instance's,
// or the container's own where it has smaller ones.
func TestSizedToSpec(t *testing.T) {
	r := newRuntime(t)
	const script = `cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us`
	start(t, r, Instance{ID: "sized", CPU: 2, Memory: 4 << 30, Containers: []Container{
		busybox("whole", script),
		{Name: "part", Image: "busybox", Command: []string{"sh", "-c", script}, CPU: 0.5, Memory: 256 << 20},
	}})
	waitState(t, r, "sized", "whole", StateTerminated)
	waitState(t, r, "sized", "part", StateTerminated)
	if got, want := readLog(t, r, "sized", "whole"), "4294967296\n200000\n100000\n"; got != want {
		t.Errorf("instance-sized container reads %q, want %q", got, want)
	}
	if got, want := readLog(t, r, "sized", "part"), "268435456\n50000\n100000\n"; got != want {
		t.Errorf("container with limits reads %q, want %q", got, want)
	}
}

func TestOOMKilled(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "oom", CPU: 1, Memory: 64 << 20, Containers: []Container{
		busybox("hog", `x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}`),
	}})
	cs := waitState(t, r, "oom", "hog", StateTerminated)
	if cs.Reason != ReasonOOMKilled || cs.ExitCode != 137 {
		t.Errorf("ended %d %s %q, want 137 OOMKilled", cs.ExitCode, cs.Reason, cs.Message)
	}
}

// TestIsolated: a container sees its own processes only, none of the host's
// files, and the default capabilities (containerd's without NET_RAW).
func TestIsolated(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "iso", Containers: []Container{
		busybox("main", `ps -o comm | tail -n +2 | tr '\n' ' '; echo; ls /work /usr/local/go 2>&1; grep CapEff /proc/self/status; ls `+r.cfg.Dir+` 2>&1; grep Seccomp: /proc/self/status`),
	}})
	waitState(t, r, "iso", "main", StateTerminated)
	got := readLog(t, r, "iso", "main")
	lines := strings.Split(got, "\n")
	// Its own: the shell, ps, and whichever of the pipe's other stages the
	// shell has started by the time ps reads /proc (busybox runs applets
	// through /proc/self/exe, so a stage may show as "exe"). Nothing else.
	procs := strings.Fields(lines[0])
	if len(procs) < 2 || len(procs) > 4 {
		t.Errorf("sees %d processes, want the shell, ps and at most two more:\n%s", len(procs), got)
	}
	for _, p := range procs {
		if p != "sh" && p != "ps" && p != "tail" && p != "tr" && p != "exe" {
			t.Errorf("sees a process %q that is not its own:\n%s", p, got)
		}
	}
	for _, host := range []string{"ls: /work: No such file or directory", "ls: /usr/local/go: No such file or directory"} {
		if !strings.Contains(got, host) {
			t.Errorf("sees the host's files (want %q):\n%s", host, got)
		}
	}
	if !strings.Contains(got, "CapEff:\t00000000a80405fb") { // without NET_RAW
		t.Errorf("capabilities are not the default set (containerd's without NET_RAW):\n%s", got)
	}
	if !strings.Contains(got, "No such file or directory") {
		t.Errorf("the state folder is visible:\n%s", got)
	}
	if !strings.Contains(got, "Seccomp:\t2") {
		t.Errorf("no seccomp filter:\n%s", got)
	}
}

// TestPodIP: containers of an instance share one IP that the host reaches.
func TestPodIP(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "web", Containers: []Container{
		busybox("server", `mkdir -p /www && echo served-by-$(hostname) > /www/index.html && httpd -f -p 8080 -h /www`),
		busybox("client", `sleep 1; wget -q -O - http://127.0.0.1:8080/ && sleep 3600`),
	}})
	waitState(t, r, "web", "server", StateRunning)
	var st Status
	waitFor(t, 10*time.Second, "an IP", func() bool { st, _ = r.Status("web"); return st.IP != "" })
	var body []byte
	waitFor(t, 10*time.Second, "the pod answering from the host", func() bool {
		resp, err := http.Get("http://" + st.IP + ":8080/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return true
	})
	if string(body) != "served-by-web\n" {
		t.Errorf("GET = %q", body)
	}
	waitFor(t, 10*time.Second, "the other container reaching it on localhost", func() bool {
		return strings.Contains(readLog(t, r, "web", "client"), "served-by-web")
	})
}

func TestStopGraceful(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "graceful", Containers: []Container{
		busybox("main", `trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done`),
	}})
	waitState(t, r, "graceful", "main", StateRunning)
	waitFor(t, 10*time.Second, "ready", func() bool { return strings.Contains(readLog(t, r, "graceful", "main"), "ready") })
	if err := r.Stop(context.Background(), "graceful", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cs := waitState(t, r, "graceful", "main", StateTerminated)
	if cs.ExitCode != 3 || !strings.Contains(readLog(t, r, "graceful", "main"), "got TERM") {
		t.Errorf("ended %d %s, log %q; want 3 after TERM", cs.ExitCode, cs.Reason, readLog(t, r, "graceful", "main"))
	}
	start(t, r, Instance{ID: "stubborn", Containers: []Container{busybox("main", `trap '' TERM; echo ready; while :; do sleep 0.1; done`)}})
	// Running first: the log can say ready before the launch has recorded
	// the start, and a stop in between ends the container at once (Lost).
	waitState(t, r, "stubborn", "main", StateRunning)
	waitFor(t, 10*time.Second, "ready", func() bool { return strings.Contains(readLog(t, r, "stubborn", "main"), "ready") })
	before, _ := r.Status("stubborn")
	began := time.Now()
	if err := r.Stop(context.Background(), "stubborn", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cs = waitState(t, r, "stubborn", "main", StateTerminated)
	if cs.ExitCode != 137 || time.Since(began) < 500*time.Millisecond {
		// Once seen under load (ended at once): say what it was before.
		t.Errorf("ended %d (%s) after %s, want 137 after the grace; before the stop: %+v", cs.ExitCode, cs.Reason, time.Since(began), before.Containers)
	}
}

func TestPullFailures(t *testing.T) {
	// A mirror on loopback with nothing behind it: a registry that is
	// configured, hence allowed, but down.
	r := openRuntimeWith(t, t.TempDir(), func(c *Config) {
		if err := c.Registries.AddMirror("down.example=http://127.0.0.1:1"); err != nil {
			t.Fatal(err)
		}
	})
	start(t, r, Instance{ID: "bad", Containers: []Container{{Name: "main", Image: "Not A Reference"}}})
	start(t, r, Instance{ID: "missing", Containers: []Container{{Name: "main", Image: "busybox:nope"}}})
	start(t, r, Instance{ID: "down", Containers: []Container{{Name: "main", Image: "127.0.0.1:1/busybox:1"}}})
	waitFor(t, 10*time.Second, "InvalidImageName", func() bool {
		st, _ := r.Status("bad")
		return st.Containers[0].Reason == "InvalidImageName"
	})
	for _, id := range []string{"missing", "down"} {
		for _, reason := range []string{ReasonErrImagePull, ReasonImagePullBackOff} {
			var cs ContainerStatus
			waitFor(t, 20*time.Second, id+" "+reason, func() bool {
				st, _ := r.Status(id)
				cs = st.Containers[0]
				return cs.Reason == reason
			})
			if cs.State != StateWaiting {
				t.Errorf("%s: %s in state %s", id, reason, cs.State)
			}
			t.Logf("%s: %s: %s", id, cs.Reason, cs.Message)
		}
	}
	st, _ := r.Status("missing")
	if msg := st.Containers[0].Message; !strings.Contains(msg, "busybox:nope") || !strings.Contains(msg, "not found") {
		t.Errorf("message %q does not name the image and the registry's answer", msg)
	}
	st, _ = r.Status("down")
	if msg := st.Containers[0].Message; !strings.Contains(msg, "connection refused") {
		t.Errorf("message %q does not say the registry cannot be reached", msg)
	}
	if got := reasons(st); !slices.Contains(got, "BackOff") || !slices.Contains(got, "Failed") || !slices.Contains(got, "Pulling") {
		t.Errorf("events %v, want Pulling, Failed, BackOff", got)
	}
}

// TestPullRefusesLoopback: an image on a registry on this machine other than
// the configured ones (the service's own listeners) fails in ErrImagePull
// saying so, and the puller never connects to it.
// TestPullRefusesRedirectToLoopback: a mirror that redirects to another
// listener of this machine meets the rule of a reference that names it.
func TestPullRefusesRedirectToLoopback(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	reached := make(chan struct{}, 8)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			reached <- struct{}{}
			c.Close()
		}
	}()
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "http://"+target.Addr().String()+req.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer mirror.Close()
	r := openRuntimeWith(t, t.TempDir(), func(c *Config) {
		if err := c.Registries.AddMirror("redirect.test=" + mirror.URL); err != nil {
			t.Fatal(err)
		}
	})
	start(t, r, Instance{ID: "redirected", Containers: []Container{{Name: "main", Image: "redirect.test/busybox:1"}}})
	var cs ContainerStatus
	waitFor(t, 20*time.Second, "ErrImagePull", func() bool {
		st, _ := r.Status("redirected")
		cs = st.Containers[0]
		return cs.Reason == ReasonErrImagePull || cs.Reason == ReasonImagePullBackOff
	})
	if want := "registry " + target.Addr().String() + " is not allowed"; !strings.Contains(cs.Message, want) {
		t.Errorf("%s: %q, want %q", cs.Reason, cs.Message, want)
	}
	select {
	case <-reached:
		t.Error("the puller followed a redirect to a refused listener")
	default:
	}
}

func TestPullRefusesLoopback(t *testing.T) {
	r := newRuntime(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	images := map[string]string{
		"loopback":    ln.Addr().String() + "/busybox:1",
		"localhost":   "localhost:" + port + "/etcd:1",
		"ipv6":        "[::1]:" + port + "/busybox:1",
		"unspecified": "0.0.0.0:" + port + "/busybox:1",
	}
	for id, image := range images {
		start(t, r, Instance{ID: id, Containers: []Container{{Name: "main", Image: image}}})
	}
	want := "is not allowed: only the local registry " + env.Registry.Addr() + " may be pulled from on loopback"
	for id, image := range images {
		var cs ContainerStatus
		waitFor(t, 20*time.Second, id+" in ErrImagePull or ImagePullBackOff", func() bool {
			st, _ := r.Status(id)
			cs = st.Containers[0]
			return cs.Reason == ReasonErrImagePull || cs.Reason == ReasonImagePullBackOff
		})
		if !strings.Contains(cs.Message, want) || !strings.Contains(cs.Message, image) {
			t.Errorf("%s: %s: %q, want the image and %q", id, cs.Reason, cs.Message, want)
		}
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Error("the puller connected to a refused registry")
	default:
	}
	// The local registry itself, named by its address, is pulled from.
	start(t, r, Instance{ID: "direct", Containers: []Container{{Name: "main", Image: env.Registry.Addr() + "/library/busybox:latest", Command: []string{"true"}}}})
	if cs := waitState(t, r, "direct", "main", StateTerminated); cs.ExitCode != 0 {
		t.Errorf("busybox by the local registry's address ended %d (%s)", cs.ExitCode, cs.Message)
	}
}

// TestRegistryHostAllowed: the registries a reference may name on this
// machine are the configured ones, whatever spelling of loopback it uses.
func TestRegistryHostAllowed(t *testing.T) {
	im := &images{base: base{cfg: Config{Registries: Registries{Mirrors: map[string][]string{
		"*":         {"http://127.0.0.1:5000"},
		"docker.io": {"http://localhost:6000/mirror", "https://mirror.example"},
	}}}}}
	for ref, ok := range map[string]bool{
		"busybox": true,
		"registry.cn-hangzhou.aliyuncs.com/eci_open/perl:5": true,
		"10.0.0.1:443/x":                 true, // not loopback: served by the catch-all mirror
		"127.0.0.1:5000/library/busybox": true,
		"localhost:5000/library/busybox": true,
		"127.0.0.1:6000/x":               true,
		"127.0.0.1:2379/x":               false,
		"127.0.0.2:5000/x":               false,
		"localhost/x":                    false,
		"localhost:10250/x":              false,
		"foo.localhost:5000/x":           false,
		"[::1]:5000/x":                   false,
		"0.0.0.0:5000/x":                 false,
		"LOCALHOST:2379/x":               false,
	} {
		err := im.checkRegistryHost(ref)
		if (err == nil) != ok {
			t.Errorf("checkRegistryHost(%s) = %v, want allowed %v", ref, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "only the local registry 127.0.0.1:5000, localhost:6000 may be pulled from on loopback") {
			t.Errorf("checkRegistryHost(%s) = %q", ref, err)
		}
	}
	none := &images{}
	if err := none.checkRegistryHost("127.0.0.1:5000/x"); err == nil || !strings.Contains(err.Error(), "no registry on loopback") {
		t.Errorf("without a registry on loopback: %v", err)
	}
}

// TestRestartAdopts: a new runtime on the same folder adopts the running
// containers and records the exit of those that ended meanwhile.
func TestRestartAdopts(t *testing.T) {
	dir := t.TempDir()
	r1, err := New(context.Background(), Config{Dir: dir, Address: env.Daemon.Address, Namespace: "spoteci-test",
		Registries: Registries{Mirrors: map[string][]string{"*": {"http://" + env.Registry.Addr()}}}})
	if err != nil {
		t.Fatal(err)
	}
	gate := "/tmp/gate" // inside the container
	start(t, r1, Instance{ID: "long", Containers: []Container{busybox("main", `echo one; while [ ! -e `+gate+` ]; do sleep 0.1; done; echo two`)}})
	start(t, r1, Instance{ID: "short", Containers: []Container{busybox("main", `sleep 1; exit 7`)}})
	waitState(t, r1, "long", "main", StateRunning)
	waitState(t, r1, "short", "main", StateRunning)
	r1.Close() // spoteci goes away; the containers do not
	time.Sleep(1500 * time.Millisecond)

	r2 := openRuntime(t, dir)
	cs := waitState(t, r2, "short", "main", StateTerminated)
	if cs.ExitCode != 7 {
		t.Errorf("exit recorded after the restart = %d %s, want 7", cs.ExitCode, cs.Reason)
	}
	if st, _ := r2.Status("long"); st.Containers[0].State != StateRunning {
		t.Fatalf("long is %s after the restart, want Running", st.Containers[0].State)
	}
	// The adopted container still runs and still logs.
	cont, err := r2.client.LoadContainer(r2.ctx, "long.0")
	if err != nil {
		t.Fatal(err)
	}
	task, err := cont.Task(r2.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = task
	r2.Stop(context.Background(), "long", 5*time.Second)
	waitState(t, r2, "long", "main", StateTerminated)
	if got := readLog(t, r2, "long", "main"); !strings.HasPrefix(got, "one\n") {
		t.Errorf("log = %q", got)
	}
}

// TestRemoveLeavesNothing: Remove deletes the task, container, snapshot,
// network namespace, cgroup and folder.
func TestRemoveLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "gone", CPU: 1, Memory: 1 << 30, Containers: []Container{busybox("main", `sleep 3600`)}})
	waitState(t, r, "gone", "main", StateRunning)
	if err := r.Remove(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status("gone"); err == nil {
		t.Error("Status after Remove succeeded")
	}
	if _, err := r.client.LoadContainer(r.ctx, "gone.0"); err == nil {
		t.Error("the containerd container is left")
	}
	if r.net.netns.holds("gone") {
		t.Error("the network namespace is still held")
	}
	for _, p := range []string{r.net.netns.pinPath("gone"), r.table.instanceDir("gone"), "/sys/fs/cgroup/memory/spoteci/gone", "/sys/fs/cgroup/cpu/spoteci/gone"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
}

// TestDestroySweepsOrphans: a containerd container that no instance holds
// any more (its delete failed under load) is deleted by Destroy, so that its
// shim does not outlive spoteci down.
func TestDestroySweepsOrphans(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "orphan", CPU: 1, Memory: 1 << 30, Containers: []Container{busybox("main", `sleep 3600`)}})
	waitState(t, r, "orphan", "main", StateRunning)
	in, _ := r.table.get("orphan")
	r.table.remove(in)
	if err := r.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.LoadContainer(r.ctx, "orphan.0"); err == nil {
		t.Error("Destroy left the orphan's containerd container")
	}
}

// buffer is a WriteCloser that keeps what it is written.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) { b.mu.Lock(); defer b.mu.Unlock(); return b.b.Write(p) }
func (b *buffer) Close() error                { return nil }
func (b *buffer) String() string              { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

func TestExec(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "exec", Hostname: "pod-x", Containers: []Container{
		{Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}, Env: []string{"FROM_SPEC=yes"}},
	}})
	waitState(t, r, "exec", "main", StateRunning)
	ctx := context.Background()
	var out, errOut buffer
	code, err := r.Exec(ctx, "exec", "main", []string{"sh", "-c", "echo out $FROM_SPEC $(hostname); echo err >&2; exit 3"}, ExecIO{Stdout: &out, Stderr: &errOut})
	if err != nil || code != 3 || out.String() != "out yes pod-x\n" || errOut.String() != "err\n" {
		t.Errorf("exec = %d, %v, stdout %q, stderr %q; want 3, out yes pod-x, err", code, err, out.String(), errOut.String())
	}
	var echoed buffer
	code, err = r.Exec(ctx, "exec", "main", []string{"cat"}, ExecIO{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &echoed})
	if err != nil || code != 0 || echoed.String() != "hello\nworld\n" {
		t.Errorf("exec cat = %d, %v, %q; want the input back", code, err, echoed.String())
	}
	var tty buffer
	code, err = r.Exec(ctx, "exec", "main", []string{"sh", "-c", "test -t 1 && echo a terminal"}, ExecIO{Stdout: &tty, TTY: true})
	if err != nil || code != 0 || !strings.Contains(tty.String(), "a terminal") {
		t.Errorf("exec with a TTY = %d, %v, %q", code, err, tty.String())
	}
	if _, err := r.Exec(ctx, "exec", "main", []string{"/no/such/program"}, ExecIO{Stdout: &out}); err == nil {
		t.Error("exec of a missing program succeeded")
	}
	r.Stop(ctx, "exec", 0)
	waitState(t, r, "exec", "main", StateTerminated)
	if _, err := r.Exec(ctx, "exec", "main", []string{"true"}, ExecIO{}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("exec in an ended container = %v, want ErrNotRunning", err)
	}
}

func TestVolumes(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "vols", Volumes: []Volume{
		{Name: "scratch"},
		{Name: "config", Files: []File{{Path: "app.conf", Data: []byte("a=1\n")}, {Path: "keys/secret", Data: []byte("s3cret"), Mode: 0o400}}},
		{Name: "mem", Memory: true},
	}, Containers: []Container{
		{Name: "writer", Image: "busybox", Command: []string{"sh", "-c", "echo shared > /data/file; echo $MY_IP > /data/ip; sleep 3600"},
			IPEnv: []string{"MY_IP"}, Mounts: []Mount{{Volume: "scratch", Path: "/data"}}},
		{Name: "reader", Image: "busybox", Command: []string{"sh", "-c", `while [ ! -e /in/ip ]; do sleep 0.1; done; cat /in/file /in/ip /etc/app/app.conf /etc/app/keys/secret; echo; stat -c %a /etc/app/keys/secret; touch /etc/app/x 2>&1; grep " /m " /proc/mounts | cut -d" " -f3; cat /sub/only 2>&1`},
			Mounts: []Mount{{Volume: "scratch", Path: "/in", ReadOnly: true}, {Volume: "config", Path: "/etc/app"}, {Volume: "mem", Path: "/m"},
				{Volume: "config", Path: "/sub", SubPath: "keys"}}},
	}})
	waitState(t, r, "vols", "reader", StateTerminated)
	st, _ := r.Status("vols")
	got := readLog(t, r, "vols", "reader")
	for _, want := range []string{"shared\n" + st.IP + "\n", "a=1\ns3cret\n400\n", "Read-only file system", "tmpfs\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("reader's log lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []Instance{
		{ID: "bad1", Volumes: []Volume{{Name: "v", Files: []File{{Path: "../escape"}}}}, Containers: []Container{busybox("c", "true")}},
		{ID: "bad2", Containers: []Container{{Name: "c", Image: "busybox", Mounts: []Mount{{Volume: "none", Path: "/x"}}}}},
		{ID: "bad3", Volumes: []Volume{{Name: "v"}}, Containers: []Container{{Name: "c", Image: "busybox", Mounts: []Mount{{Volume: "v", Path: "/x", SubPath: "../.."}}}}},
	} {
		if err := r.Start(context.Background(), bad); err == nil {
			t.Errorf("Start(%s) accepted a volume that leaves its folder", bad.ID)
		}
	}
}

// TestRestartPolicy: OnFailure restarts a failed container in place, after a
// back-off, counting the restarts, keeping the previous run's end and log;
// a success ends it. Never does not restart.
func TestRestartPolicy(t *testing.T) {
	r := openRuntimeWith(t, t.TempDir(), func(cfg *Config) { cfg.RestartBackoff = 200 * time.Millisecond })
	script := `echo run; if [ -e /data/ran ]; then echo second; exit 0; fi; touch /data/ran; echo first; exit 3`
	start(t, r, Instance{ID: "again", RestartPolicy: RestartOnFailure, Volumes: []Volume{{Name: "data"}}, Containers: []Container{
		{Name: "main", Image: "busybox", Command: []string{"sh", "-c", script}, Mounts: []Mount{{Volume: "data", Path: "/data"}}},
	}})
	cs := waitState(t, r, "again", "main", StateTerminated)
	if cs.ExitCode != 0 || cs.RestartCount != 1 || cs.LastTerminated == nil || cs.LastTerminated.ExitCode != 3 {
		t.Fatalf("after a restart: %+v (last %+v), want exit 0, 1 restart, last exit 3", cs, cs.LastTerminated)
	}
	if got := readLog(t, r, "again", "main"); got != "run\nsecond\n" {
		t.Errorf("log %q, want the second run's", got)
	}
	rc, err := r.Log("again", "main", LogOptions{Tail: -1, Previous: true})
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := io.ReadAll(rc)
	rc.Close()
	if string(prev) != "run\nfirst\n" {
		t.Errorf("previous log %q, want the first run's", prev)
	}
	st, _ := r.Status("again")
	if !slices.Contains(reasons(st), "BackOff") {
		t.Errorf("events %v lack BackOff", reasons(st))
	}
	start(t, r, Instance{ID: "once", RestartPolicy: RestartNever, Containers: []Container{busybox("main", "exit 3")}})
	if cs := waitState(t, r, "once", "main", StateTerminated); cs.RestartCount != 0 || cs.ExitCode != 3 {
		t.Errorf("Never: %+v", cs)
	}
	if _, err := r.Log("once", "main", LogOptions{Previous: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("previous log of a container never restarted: %v, want ErrNotFound", err)
	}
}

// TestStats: the cgroups of a running instance and its containers are
// sampled: CPU time grows, memory is counted, the rate comes with the
// second sample.
func TestStats(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "busy", CPU: 1, Memory: 256 << 20, Containers: []Container{busybox("spin", `while :; do :; done`)}})
	waitState(t, r, "busy", "spin", StateRunning)
	first, err := r.Stats("busy")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	second, err := r.Stats("busy")
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Containers) != 1 || second.Containers[0].Name != "spin" {
		t.Fatalf("containers sampled: %+v", second.Containers)
	}
	c := second.Containers[0]
	if second.UsageCoreNanoSeconds <= first.UsageCoreNanoSeconds || c.UsageCoreNanoSeconds == 0 {
		t.Errorf("CPU time did not grow: %d then %d (container %d)", first.UsageCoreNanoSeconds, second.UsageCoreNanoSeconds, c.UsageCoreNanoSeconds)
	}
	if c.UsageNanoCores < 1e8 || c.UsageNanoCores > 1.2e9 { // a spinning shell under a 1-vCPU limit
		t.Errorf("CPU rate %d nanocores, want about one core", c.UsageNanoCores)
	}
	if second.MemoryUsageBytes == 0 || second.WorkingSetBytes == 0 {
		t.Errorf("memory not counted: %+v", second.Usage)
	}
	if _, err := r.Stats("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stats of an unknown instance: %v", err)
	}
}

// TestContainerdKilled: kill -9 of containerd loses no container: the shims
// keep them; containerd started again on its folder finds them, and the
// runtime goes on (exec, an exit, a stop).
func TestContainerdKilled(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "survivor", Containers: []Container{busybox("main", `echo before; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after; exit 5`)}})
	waitState(t, r, "survivor", "main", StateRunning)
	if err := syscall.Kill(env.Daemon.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	d, err := daemon.Start(context.Background(), env.Daemon.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Daemon = d
	if st, _ := r.Status("survivor"); st.Containers[0].State != StateRunning {
		t.Fatalf("after containerd's restart: %+v", st.Containers[0])
	}
	var out buffer
	waitFor(t, 30*time.Second, "exec through the new containerd", func() bool {
		code, err := r.Exec(context.Background(), "survivor", "main", []string{"touch", "/tmp/go"}, ExecIO{Stdout: &out})
		return err == nil && code == 0
	})
	cs := waitState(t, r, "survivor", "main", StateTerminated)
	if cs.ExitCode != 5 || readLog(t, r, "survivor", "main") != "before\nafter\n" {
		t.Errorf("after containerd's restart the container ended %d with log %q", cs.ExitCode, readLog(t, r, "survivor", "main"))
	}
}

// TestRegistryHosts: a registry with a mirror of its own is tried after it;
// one without is served by the catch-all mirror instead (never asked:
// these machines reach no registry); one on loopback is asked directly,
// over plain HTTP.
func TestRegistryHosts(t *testing.T) {
	im := &images{base: base{cfg: Config{Registries: Registries{Mirrors: map[string][]string{
		"*":         {"http://127.0.0.1:5000"},
		"docker.io": {"https://mirror.example:443/base"},
	}}}}}
	hosts := im.hosts(nil)
	for _, tc := range []struct {
		ref  string
		want []string
	}{
		{"docker.io", []string{"https://mirror.example:443/base/v2", "https://registry-1.docker.io/v2"}},
		{"registry.cn-shanghai.aliyuncs.com", []string{"http://127.0.0.1:5000/v2"}},
		{"127.0.0.1:6000", []string{"http://127.0.0.1:6000/v2"}},
	} {
		got, err := hosts(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		for _, h := range got {
			urls = append(urls, h.Scheme+"://"+h.Host+h.Path)
		}
		if !slices.Equal(urls, tc.want) {
			t.Errorf("hosts(%s) = %v, want %v", tc.ref, urls, tc.want)
		}
	}
}

// TestRestart: Restart stops a running container (SIGTERM) and starts it
// again, and starts an ended one again, whatever the restart policy.
func TestRestart(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "again", CPU: 1, Memory: 1 << 30, Containers: []Container{
		busybox("once", `echo once`),
		busybox("loop", `trap 'exit 3' TERM; echo trapping; while :; do sleep 0.05; done`),
	}})
	waitState(t, r, "again", "once", StateTerminated)
	waitState(t, r, "again", "loop", StateRunning)
	// A SIGTERM before the trap is set is ignored: the shell is PID 1.
	waitFor(t, 15*time.Second, "the loop's trap", func() bool { return readLog(t, r, "again", "loop") == "trapping\n" })
	if err := r.Restart(context.Background(), "again", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "both restarted", func() bool {
		st, _ := r.Status("again")
		return st.Containers[0].RestartCount == 1 && st.Containers[0].State == StateTerminated &&
			st.Containers[1].RestartCount == 1 && st.Containers[1].State == StateRunning
	})
	st, _ := r.Status("again")
	if last := st.Containers[1].LastTerminated; last == nil || last.ExitCode != 3 {
		t.Errorf("the loop's last run %+v, want exit 3 from its SIGTERM trap", last)
	}
	if err := r.Restart(context.Background(), "nobody", time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("Restart of an unknown instance: %v", err)
	}
}

// A container's log is capped on disk and rotated, as a kubelet's: a
// container printing 2 MB under a 64 KiB cap leaves at most 3 files of about
// the cap, and the log read is the current file, ending with the last line.
func TestLogRotated(t *testing.T) {
	dir := t.TempDir()
	var regs Registries
	if err := regs.AddMirror(env.Mirror()); err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), Config{Dir: dir, Address: env.Daemon.Address, Registries: regs,
		Namespace: "spoteci-test", LogMaxSize: 64 << 10, LogMaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Destroy(context.Background())
		r.Close()
	})
	start(t, r, Instance{ID: "chatty", Containers: []Container{
		busybox("main", `i=0; while [ $i -lt 40000 ]; do echo "line $i of a chatty container"; i=$((i+1)); done; echo last`),
	}})
	waitState(t, r, "chatty", "main", StateTerminated)
	files, _ := filepath.Glob(filepath.Join(dir, "instances", "chatty", "main.log*"))
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if len(files) != 3 || total > 3*(64<<10+64<<10) {
		t.Errorf("log files %v hold %d bytes: want 3 files of about 64 KiB", files, total)
	}
	if got := readLog(t, r, "chatty", "main"); !strings.HasSuffix(got, "line 39999 of a chatty container\nlast\n") || len(got) > 64<<10 {
		t.Errorf("log read is %d bytes ending %q", len(got), got[max(0, len(got)-60):])
	}
}
