//go:build linux

package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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
)

// shimBin is the spoteci binary built once by TestMain, used as the shim.
var shimBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "spoteci-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	shimBin = filepath.Join(tmp, "spoteci")
	build := exec.Command("go", "build", "-o", shimBin, "github.com/spoteci/spoteci/cmd/spoteci")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the spoteci binary for the shim:", err)
		return 1
	}
	return m.Run()
}

// newHost returns a Host on a fresh state folder.
func newHost(t testing.TB) (*Host, string) {
	t.Helper()
	dir := t.TempDir()
	h, err := NewHost(dir, shimBin)
	if err != nil {
		t.Fatal(err)
	}
	return h, dir
}

// start starts instance id and removes it (killing what runs) at the end of the test.
func start(t testing.TB, h *Host, id string, grace time.Duration, cs ...Container) {
	t.Helper()
	if err := h.Start(context.Background(), id, cs, grace); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Remove(id); err != nil {
			t.Error(err)
		}
	})
}

func sh(name, script string, args ...string) Container {
	return Container{Name: name, Command: []string{"sh", "-c", script, "sh"}, Args: args}
}

// waitFor polls cond until it holds or the timeout expires.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitTerminated waits until every container of id is Terminated.
func waitTerminated(t testing.TB, h *Host, id string) []ContainerStatus {
	t.Helper()
	var sts []ContainerStatus
	waitFor(t, 10*time.Second, id+" to terminate", func() bool {
		var err error
		sts, err = h.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			if st.State != StateTerminated {
				return false
			}
		}
		return len(sts) > 0
	})
	return sts
}

// waitExit waits until Exits returns id.
func waitExit(t testing.TB, h *Host, id string) {
	t.Helper()
	waitFor(t, 10*time.Second, "Exits to return "+id, func() bool {
		ids, err := h.Exits()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ids, id)
	})
}

func readLog(t testing.TB, h *Host, id, name string, opts LogOptions) string {
	t.Helper()
	r, err := h.Log(id, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// waitRunning waits until a container is Running and returns its running.json.
func waitRunning(t testing.TB, h *Host, id, name string) runningRecord {
	t.Helper()
	var run runningRecord
	waitFor(t, 10*time.Second, fmt.Sprintf("%s/%s to run", id, name), func() bool {
		return readJSON(filepath.Join(h.instanceDir(id), name, runningFile), &run) == nil
	})
	return run
}

// waitLog waits until the log of a container contains s.
func waitLog(t testing.TB, h *Host, id, name, s string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("log of %s/%s to contain %q", id, name, s), func() bool {
		return strings.Contains(readLog(t, h, id, name, LogOptions{Tail: -1}), s)
	})
}

func TestCompleted(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "ok", time.Second, sh("main", "echo hello; echo oops >&2; echo world"))
	sts := waitTerminated(t, h, "ok")
	st := sts[0]
	if st.Name != "main" || st.ExitCode != 0 || st.Reason != ReasonCompleted || st.Message != "" {
		t.Errorf("status = %+v, want Completed 0", st)
	}
	if st.PID <= 0 || st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		t.Errorf("status = %+v, want a pid and ordered times", st)
	}
	if got, want := readLog(t, h, "ok", "main", LogOptions{Tail: -1}), "hello\noops\nworld\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	waitExit(t, h, "ok")
	if ids, err := h.Exits(); err != nil || len(ids) != 0 {
		t.Errorf("second Exits = %v, %v; want nothing", ids, err)
	}
}

func TestExitCode(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "fail", time.Second, sh("main", "exit 3"))
	st := waitTerminated(t, h, "fail")[0]
	if st.ExitCode != 3 || st.Reason != ReasonError {
		t.Errorf("status = %+v, want Error 3", st)
	}
}

func TestEnvArgsWorkingDir(t *testing.T) {
	t.Setenv("SPOTECI_SERVER_SECRET", "leaked")
	h, dir := newHost(t)
	wd := t.TempDir()
	script := `echo "foo=$FOO args=$1,$2 pwd=$(pwd) secret=${SPOTECI_SERVER_SECRET-unset} home=$HOME host=$HOSTNAME path=$PATH"`
	c := sh("main", script, "a b", "c")
	c.Env = []string{"FOO=bar", "PATH=/usr/bin:/bin", "FOO=baz"}
	c.WorkingDir = wd
	start(t, h, "env", time.Second, c, sh("dflt", "pwd"), Container{Name: "sigs", Command: []string{"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}})
	waitTerminated(t, h, "env")
	want := fmt.Sprintf("foo=baz args=a b,c pwd=%s secret=unset home=/ host=env path=/usr/bin:/bin\n", wd)
	if got := readLog(t, h, "env", "main", LogOptions{Tail: -1}); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	want = filepath.Join(dir, instancesDir, "env", "dflt") + "\n"
	if got := readLog(t, h, "env", "dflt", LogOptions{Tail: -1}); got != want {
		t.Errorf("default working dir = %q, want %q", got, want)
	}
	// No standard signal (1 to 31) is ignored or blocked, SIGPIPE above all.
	// Real-time signals are left out: under make, signal 32 (glibc's
	// internal SIGCANCEL) arrives ignored from the parent, and Go keeps it so.
	got := readLog(t, h, "env", "sigs", LogOptions{Tail: -1})
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		name, hex, _ := strings.Cut(line, ":\t")
		mask, err := strconv.ParseUint(hex, 16, 64)
		if err != nil || mask&0x7fffffff != 0 {
			t.Errorf("%s of the process = %q: standard signals blocked or ignored (all of %q)", name, hex, got)
		}
	}
}

func TestNoCommand(t *testing.T) {
	h, _ := newHost(t)
	err := h.Start(context.Background(), "nocmd", []Container{{Name: "main"}}, 0)
	if !errors.Is(err, ErrNoCommand) || !strings.Contains(err.Error(), "container main has no command") {
		t.Errorf("Start = %v, want ErrNoCommand", err)
	}
	if _, err := h.Status("nocmd"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status = %v, want ErrNotFound", err)
	}
}

func TestStartErrors(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "bad", time.Second,
		Container{Name: "missing", Command: []string{"spoteci-no-such-program"}},
		Container{Name: "abs", Command: []string{"/no/such/program"}},
		Container{Name: "wd", Command: []string{"true"}, WorkingDir: "/no/such/dir"},
		Container{Name: "good", Command: []string{"true"}},
	)
	sts := waitTerminated(t, h, "bad")
	want := []struct {
		name, reason, msg string
		code              int
	}{
		{"missing", ReasonStartError, "executable file not found in $PATH", 127},
		{"abs", ReasonStartError, "/no/such/program", 127},
		{"wd", ReasonStartError, "working directory", 128},
		{"good", ReasonCompleted, "", 0},
	}
	if len(sts) != len(want) {
		t.Fatalf("got %d statuses, want %d", len(sts), len(want))
	}
	for i, w := range want {
		st := sts[i]
		if st.Name != w.name || st.Reason != w.reason || st.ExitCode != w.code || !strings.Contains(st.Message, w.msg) {
			t.Errorf("status %d = %+v, want %s %s %d %q", i, st, w.name, w.reason, w.code, w.msg)
		}
	}
	waitExit(t, h, "bad")
}

func TestStartIdempotent(t *testing.T) {
	h, _ := newHost(t)
	c := sh("main", "echo once; sleep 30")
	start(t, h, "idem", time.Second, c)
	if err := h.Start(context.Background(), "idem", []Container{c}, time.Second); err != nil {
		t.Fatal(err)
	}
	waitLog(t, h, "idem", "main", "once")
	if err := h.Start(context.Background(), "idem", []Container{c, sh("side", "echo side")}, time.Second); err != nil {
		t.Fatal(err)
	}
	waitLog(t, h, "idem", "side", "side")
	waitRunning(t, h, "idem", "main")
	if got := readLog(t, h, "idem", "main", LogOptions{Tail: -1}); got != "once\n" {
		t.Errorf("log = %q, want one start", got)
	}
	sts, err := h.Status("idem")
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 || sts[0].Name != "main" || sts[0].State != StateRunning || sts[1].Name != "side" {
		t.Errorf("status = %+v", sts)
	}
}

func TestStopGraceful(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "trap", 0, sh("main", `trap "echo got SIGTERM; exit 0" TERM; echo ready; while true; do sleep 0.1; done`))
	waitLog(t, h, "trap", "main", "ready")
	if err := h.Stop(context.Background(), "trap", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st := waitTerminated(t, h, "trap")[0]
	if st.ExitCode != 0 || st.Reason != ReasonCompleted {
		t.Errorf("status = %+v, want Completed 0", st)
	}
	if got := readLog(t, h, "trap", "main", LogOptions{Tail: -1}); !strings.Contains(got, "got SIGTERM") {
		t.Errorf("log = %q, want got SIGTERM", got)
	}
	waitExit(t, h, "trap")
	// Stop is idempotent.
	if err := h.Stop(context.Background(), "trap", 0); err != nil {
		t.Error(err)
	}
	if err := h.Stop(context.Background(), "unknown", 0); err != nil {
		t.Error(err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "stubborn", 0, sh("main", `trap "" TERM; echo ready; while true; do sleep 0.1; done`))
	waitLog(t, h, "stubborn", "main", "ready")
	const grace = 300 * time.Millisecond
	stopped := time.Now()
	if err := h.Stop(context.Background(), "stubborn", grace); err != nil {
		t.Fatal(err)
	}
	if time.Since(stopped) > grace/2 {
		t.Errorf("Stop took %v: it must not wait for the grace", time.Since(stopped))
	}
	st := waitTerminated(t, h, "stubborn")[0]
	if st.ExitCode != 137 || st.Reason != ReasonKilled {
		t.Errorf("status = %+v, want Killed 137", st)
	}
	if d := st.FinishedAt.Sub(stopped); d < grace-10*time.Millisecond {
		t.Errorf("killed %v after Stop, before the grace of %v", d, grace)
	}
}

func TestStopImmediate(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "now", time.Hour, sh("main", `trap "" TERM; echo ready; while true; do sleep 0.1; done`))
	waitLog(t, h, "now", "main", "ready")
	if err := h.Stop(context.Background(), "now", 0); err != nil {
		t.Fatal(err)
	}
	st := waitTerminated(t, h, "now")[0]
	if st.ExitCode != 137 || st.Reason != ReasonKilled {
		t.Errorf("status = %+v, want Killed 137", st)
	}
}

// TestStopRacesStart stops instances right after starting them: the shims
// must find the stop request whether or not their process has started.
func TestStopRacesStart(t *testing.T) {
	h, _ := newHost(t)
	for i := range 20 {
		id := fmt.Sprintf("race%d", i)
		start(t, h, id, time.Hour, sh("main", "sleep 30"), sh("side", "sleep 30"))
		if err := h.Stop(context.Background(), id, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		id := fmt.Sprintf("race%d", i)
		for _, st := range waitTerminated(t, h, id) {
			if st.Reason != ReasonKilled || st.ExitCode != 137 {
				t.Errorf("%s: status = %+v, want Killed 137", id, st)
			}
		}
	}
}

// TestShimSIGTERM sends SIGTERM to a shim directly (as a host shutdown
// would): it stops its container with the grace given to Start.
func TestShimSIGTERM(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "direct", 200*time.Millisecond, sh("main", `trap "" TERM; echo ready; while true; do sleep 0.1; done`))
	waitLog(t, h, "direct", "main", "ready")
	run := waitRunning(t, h, "direct", "main")
	if err := syscall.Kill(run.ShimPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitTerminated(t, h, "direct")[0]
	if st.ExitCode != 137 || st.Reason != ReasonKilled {
		t.Errorf("status = %+v, want Killed 137", st)
	}
}

// TestRestartedServer: a new Host on the same folder sees a container that
// kept running and reports its later exit, and on its first Exits the
// instances that ended while no Host looked.
func TestRestartedServer(t *testing.T) {
	h1, dir := newHost(t)
	gate := filepath.Join(t.TempDir(), "go")
	start(t, h1, "long", time.Second, sh("main", `echo ready; while [ ! -e "$1" ]; do sleep 0.02; done; echo bye; exit 7`, gate))
	start(t, h1, "short", time.Second, Container{Name: "main", Command: []string{"true"}})
	waitLog(t, h1, "long", "main", "ready")
	waitRunning(t, h1, "long", "main")
	waitExit(t, h1, "short") // consumed by the old server, which then "crashed"

	h2, err := NewHost(dir, shimBin)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := h2.Exits()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"short"}) {
		t.Errorf("first Exits of the new Host = %v, want [short]", ids)
	}
	sts, err := h2.Status("long")
	if err != nil {
		t.Fatal(err)
	}
	if sts[0].State != StateRunning || sts[0].PID <= 0 {
		t.Errorf("status = %+v, want Running", sts[0])
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitExit(t, h2, "long")
	st := waitTerminated(t, h2, "long")[0]
	if st.ExitCode != 7 || st.Reason != ReasonError {
		t.Errorf("status = %+v, want Error 7", st)
	}
	if got := readLog(t, h2, "long", "main", LogOptions{Tail: -1}); got != "ready\nbye\n" {
		t.Errorf("log = %q", got)
	}
}

// TestShimKilled: a shim killed with SIGKILL leaves its container Lost, and
// the container is killed.
func TestShimKilled(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "lost", time.Second, sh("main", "echo ready; sleep 30"))
	waitLog(t, h, "lost", "main", "ready")
	run := waitRunning(t, h, "lost", "main")
	if err := syscall.Kill(run.ShimPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, h, "lost")
	st := waitTerminated(t, h, "lost")[0]
	if st.Reason != ReasonLost {
		t.Errorf("status = %+v, want Lost", st)
	}
	waitFor(t, 5*time.Second, "the container to be killed", func() bool {
		_, zombie, err := procStart(run.PID) // init may take its time to reap it
		return err != nil || zombie
	})
}

func TestMultiContainerExits(t *testing.T) {
	h, _ := newHost(t)
	gate := filepath.Join(t.TempDir(), "go")
	start(t, h, "multi", time.Second,
		Container{Name: "fast", Command: []string{"true"}},
		sh("slow", `while [ ! -e "$1" ]; do sleep 0.02; done`, gate))
	waitFor(t, 10*time.Second, "fast to terminate", func() bool {
		sts, err := h.Status("multi")
		return err == nil && sts[0].State == StateTerminated
	})
	if ids, err := h.Exits(); err != nil || len(ids) != 0 {
		t.Errorf("Exits = %v, %v with a container still running", ids, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitExit(t, h, "multi")
}

func TestLogTailFollow(t *testing.T) {
	h, _ := newHost(t)
	gate := filepath.Join(t.TempDir(), "go")
	start(t, h, "logs", time.Second, sh("main",
		`for i in 1 2 3 4 5; do echo line$i; done; printf 'part'; while [ ! -e "$1" ]; do sleep 0.02; done; echo ial; echo line7; printf 'end'`, gate))
	waitLog(t, h, "logs", "main", "line5\npart")

	if got, want := readLog(t, h, "logs", "main", LogOptions{Tail: 2}), "line5\npart"; got != want {
		t.Errorf("Tail 2 = %q, want %q", got, want)
	}
	if got, want := readLog(t, h, "logs", "main", LogOptions{Tail: 0}), ""; got != want {
		t.Errorf("Tail 0 = %q, want %q", got, want)
	}
	if got := readLog(t, h, "logs", "main", LogOptions{Tail: -1, SinceTime: time.Now().Add(time.Hour)}); got != "" {
		t.Errorf("SinceTime in the future = %q, want nothing", got)
	}
	stamped := readLog(t, h, "logs", "main", LogOptions{Tail: 1, Timestamps: true})
	ts, rest, _ := strings.Cut(stamped, " ")
	if when, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(when) > time.Minute || rest != "part" {
		t.Errorf("Timestamps = %q (%v)", stamped, err)
	}

	// Follow from the last line, then release the container.
	r, err := h.Log("logs", "main", LogOptions{Tail: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		data, _ := io.ReadAll(r)
		got <- string(data)
	}()
	time.Sleep(150 * time.Millisecond)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if want := "partial\nline7\nend"; s != want {
			t.Errorf("Follow = %q, want %q", s, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not end when the container did")
	}
	if got, want := readLog(t, h, "logs", "main", LogOptions{Tail: 4}), "line5\npartial\nline7\nend"; got != want {
		t.Errorf("Tail 4 = %q, want %q", got, want)
	}
}

func TestLogFollowClose(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "chatty", time.Second, sh("main", `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.05; done`))
	r, err := h.Log("chatty", "main", LogOptions{Tail: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(r)
	for i := 1; i <= 3; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("tick %d\n", i) {
			t.Fatalf("line %d = %q, %v", i, line, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Log("chatty", "nope", LogOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Log of an unknown container = %v, want ErrNotFound", err)
	}
	if _, err := h.Log("nope", "main", LogOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Log of an unknown instance = %v, want ErrNotFound", err)
	}
}

func TestRemove(t *testing.T) {
	h, dir := newHost(t)
	if err := h.Start(context.Background(), "rm", []Container{sh("main", "sleep 30")}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background(), "rmdone", []Container{{Name: "main", Command: []string{"true"}}}, 0); err != nil {
		t.Fatal(err)
	}
	waitTerminated(t, h, "rmdone")
	waitFor(t, 10*time.Second, "rm to run", func() bool {
		sts, err := h.Status("rm")
		return err == nil && sts[0].State == StateRunning
	})
	for _, id := range []string{"rm", "rmdone", "unknown"} {
		if err := h.Remove(id); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Status(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Status(%s) after Remove = %v, want ErrNotFound", id, err)
		}
	}
	if ids, err := h.Exits(); err != nil || len(ids) != 0 {
		t.Errorf("Exits after Remove = %v, %v; want nothing", ids, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, instancesDir))
	if len(left) != 0 {
		t.Errorf("left in the state folder: %v", left)
	}
}

func TestInvalidNames(t *testing.T) {
	h, _ := newHost(t)
	for _, id := range []string{"", ".", "..", "a/b", ".hidden", strings.Repeat("x", 201)} {
		if err := h.Start(context.Background(), id, []Container{{Name: "c", Command: []string{"true"}}}, 0); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Start(%q) = %v, want ErrInvalidName", id, err)
		}
	}
	err := h.Start(context.Background(), "ok", []Container{{Name: "c", Command: []string{"true"}}, {Name: "c", Command: []string{"true"}}}, 0)
	if err == nil {
		t.Error("Start with a container name used twice succeeded")
	}
}

// TestNoZombies: the shims this process started are reaped.
func TestNoZombies(t *testing.T) {
	h, _ := newHost(t)
	for i := range 10 {
		start(t, h, fmt.Sprintf("z%d", i), 0, Container{Name: "main", Command: []string{"true"}})
	}
	for i := range 10 {
		waitTerminated(t, h, fmt.Sprintf("z%d", i))
	}
	children := fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid())
	if _, err := os.Stat(children); err != nil {
		t.Skip("no /proc/PID/task/TID/children")
	}
	waitFor(t, 5*time.Second, "no zombie children", func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
		for _, task := range tasks {
			data, _ := os.ReadFile(task)
			for _, pid := range strings.Fields(string(data)) {
				stat, _ := os.ReadFile("/proc/" + pid + "/stat")
				if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
					return false
				}
			}
		}
		return true
	})
}

func TestAppendRecordsDecode(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	var file []byte
	for _, chunk := range []string{"one\ntw", "o\n", "thr", "ee\nfour"} {
		file = appendRecords(file, at, []byte(chunk))
	}
	for _, tc := range []struct {
		opts LogOptions
		want string
	}{
		{LogOptions{}, "one\ntwo\nthree\nfour"},
		{LogOptions{Timestamps: true}, "2024-05-06T07:08:09.123456789Z one\n2024-05-06T07:08:09.123456789Z two\n" +
			"2024-05-06T07:08:09.123456789Z three\n2024-05-06T07:08:09.123456789Z four"},
		{LogOptions{SinceTime: at.Add(time.Nanosecond)}, ""},
		{LogOptions{SinceTime: at}, "one\ntwo\nthree\nfour"},
	} {
		dec := logDecoder{opts: tc.opts}
		var out []byte
		for _, line := range strings.SplitAfter(string(file), "\n") {
			if line != "" {
				out = dec.decode(out, []byte(strings.TrimSuffix(line, "\n")))
			}
		}
		if string(out) != tc.want {
			t.Errorf("decode %+v = %q, want %q", tc.opts, out, tc.want)
		}
	}
}

// TestQueued: Status, Stop and Remove work on instances whose spec the
// launchers may not have written yet.
func TestQueued(t *testing.T) {
	h, dir := newHost(t)
	c := []Container{sh("main", "sleep 30")}
	for i := range 20 {
		id := fmt.Sprintf("q%d", i)
		if err := h.Start(context.Background(), id, c, time.Hour); err != nil {
			t.Fatal(err)
		}
		sts, err := h.Status(id)
		if err != nil || len(sts) != 1 || sts[0].Name != "main" || sts[0].State == StateTerminated {
			t.Fatalf("Status right after Start = %+v, %v", sts, err)
		}
		if i%2 == 0 {
			if err := h.Stop(context.Background(), id, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Remove(id); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Status(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Status after Remove = %v, want ErrNotFound", err)
		}
	}
	// Whatever the launchers were doing, nothing is left behind.
	waitFor(t, 5*time.Second, "the state folder to be empty", func() bool {
		for _, sub := range []string{specsDir, instancesDir, exitsDir} {
			if names, _ := readDirNames(filepath.Join(dir, sub)); len(names) > 0 {
				return false
			}
		}
		return true
	})
}

func TestLongLines(t *testing.T) {
	h, _ := newHost(t)
	start(t, h, "long", time.Second, sh("main", `head -c 200000 /dev/zero | tr '\0' a; echo; echo end`))
	waitTerminated(t, h, "long")
	if got := readLog(t, h, "long", "main", LogOptions{Tail: 1}); got != "end\n" {
		t.Errorf("Tail 1 = %q", got)
	}
	got := readLog(t, h, "long", "main", LogOptions{Tail: 2})
	if want := strings.Repeat("a", 200000) + "\nend\n"; got != want {
		t.Errorf("Tail 2 = %d bytes, want %d", len(got), len(want))
	}
}

// TestFolderDeleted: a shim whose container folder is deleted kills its
// container.
func TestFolderDeleted(t *testing.T) {
	h, dir := newHost(t)
	start(t, h, "gone", time.Second, sh("main", "echo ready; sleep 30"))
	waitLog(t, h, "gone", "main", "ready")
	run := waitRunning(t, h, "gone", "main")
	for _, p := range []string{h.specPath("gone"), filepath.Join(dir, instancesDir, "gone")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 3*orphanPoll, "the container to be killed", func() bool {
		_, zombie, err := procStart(run.PID)
		return err != nil || zombie
	})
}

// TestRelaunch: a container in a spec whose shim never started (the server
// stopped between Start and the fork) is started by the next Host.
func TestRelaunch(t *testing.T) {
	dir := t.TempDir()
	for _, sub := range []string{specsDir, instancesDir, exitsDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := specRecord{Containers: []containerSpec{{Name: "main", Command: []string{"sh", "-c", "echo relaunched"}}}}
	if err := writeJSON(filepath.Join(dir, specsDir, "orphan.json"), spec); err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(dir, shimBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Remove("orphan") })
	waitExit(t, h, "orphan")
	if got := readLog(t, h, "orphan", "main", LogOptions{Tail: -1}); got != "relaunched\n" {
		t.Errorf("log = %q", got)
	}
}

// BenchmarkStart starts one `true` container per op, b.N instances, and
// reports the Start calls per second (starts/s) and the containers that went
// through to their exit per second, shims included (containers/s).
func BenchmarkStart(b *testing.B) {
	h, _ := newHost(b)
	c := []Container{{Name: "main", Command: []string{"true"}}}
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d", i)
	}
	b.ResetTimer()
	began := time.Now()
	for i := 0; i < b.N; i++ {
		if err := h.Start(ctx, ids[i], c, 0); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(began)
	b.StopTimer()
	waitAllExited(b, h, ids)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "starts/s")
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "containers/s")
}

// BenchmarkStartParallel is BenchmarkStart with concurrent callers, as the
// ECI service's request handlers are.
func BenchmarkStartParallel(b *testing.B) {
	h, _ := newHost(b)
	c := []Container{{Name: "main", Command: []string{"true"}}}
	ctx := context.Background()
	var mu sync.Mutex
	var ids []string
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			id := fmt.Sprintf("bench-%d", len(ids))
			ids = append(ids, id)
			mu.Unlock()
			if err := h.Start(ctx, id, c, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(began)
	b.StopTimer()
	waitAllExited(b, h, ids)
	b.ReportMetric(float64(len(ids))/elapsed.Seconds(), "starts/s")
	b.ReportMetric(float64(len(ids))/time.Since(began).Seconds(), "containers/s")
}

func waitAllExited(b *testing.B, h *Host, ids []string) {
	left := make(map[string]bool, len(ids))
	for _, id := range ids {
		left[id] = true
	}
	waitFor(b, time.Minute+time.Duration(len(ids))*20*time.Millisecond, "the benchmark's containers to exit", func() bool {
		got, err := h.Exits()
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range got {
			delete(left, id)
		}
		return len(left) == 0
	})
}
