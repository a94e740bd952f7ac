package runtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/spoteci/spoteci/internal/runtime/daemon"
)

// TestLogSurvivesRestart: a container writes numbered lines without end;
// the runtime is closed, as spoteci is on a restart, while the container
// goes on writing into its FIFO (which fills, and then it waits, alive:
// no SIGPIPE), and a new runtime on the same folder goes on copying. The
// log afterwards holds every line once, in order, as records of the log
// file's format.
func TestLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var regs Registries
	if err := regs.AddMirror(env.Mirror()); err != nil {
		t.Fatal(err)
	}
	r1, err := New(context.Background(), Config{Dir: dir, Address: env.Daemon.Address, Registries: regs, Namespace: "spoteci-test"})
	if err != nil {
		t.Fatal(err)
	}
	// About 10,000 lines a second, until /tmp/stop exists.
	start(t, r1, Instance{ID: "chatty", Containers: []Container{busybox("main",
		`i=0; while [ ! -e /tmp/stop ]; do echo "line $i"; i=$((i+1)); [ $((i % 50)) -eq 0 ] && usleep 5000; done; echo "end $i"`)}})
	waitState(t, r1, "chatty", "main", StateRunning)
	waitFor(t, 30*time.Second, "lines in the log", func() bool {
		return strings.Count(readLog(t, r1, "chatty", "main"), "\n") >= 2000
	})
	r1.Close() // spoteci goes away; the container writes on

	// The container's output fills its FIFO while nobody reads it.
	stdout := filepath.Join(dir, "instances", "chatty", fifoDir, "main-stdout")
	waitFor(t, 30*time.Second, "the FIFO to fill", func() bool { return fifoHolds(t, stdout) >= 32<<10 })

	r2 := openRuntime(t, dir)
	if st, _ := r2.Status("chatty"); st.Containers[0].State != StateRunning {
		t.Fatalf("the container is %+v after the restart, want Running", st.Containers[0])
	}
	seen := strings.Count(readLog(t, r2, "chatty", "main"), "\n")
	waitFor(t, 30*time.Second, "the log to go on", func() bool {
		return strings.Count(readLog(t, r2, "chatty", "main"), "\n") > seen+5000
	})
	if code, err := r2.Exec(context.Background(), "chatty", "main", []string{"touch", "/tmp/stop"}, ExecIO{}); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if cs := waitState(t, r2, "chatty", "main", StateTerminated); cs.ExitCode != 0 {
		t.Fatalf("ended %d %s %q, want 0 (not killed by SIGPIPE)", cs.ExitCode, cs.Reason, cs.Message)
	}

	// Read as it ended: the end is recorded once the log is whole.
	lines := strings.Split(strings.TrimSuffix(readLog(t, r2, "chatty", "main"), "\n"), "\n")
	last := lines[len(lines)-1]
	n, err := strconv.Atoi(strings.TrimPrefix(last, "end "))
	if err != nil {
		t.Fatalf("the log ends with %q, want end N", last)
	}
	if len(lines) != n+1 {
		t.Errorf("the log holds %d lines, want %d (line 0 to line %d, then %q)", len(lines), n+1, n-1, last)
	}
	for i, l := range lines[:len(lines)-1] {
		if want := fmt.Sprint("line ", i); l != want {
			t.Fatalf("line %d of the log is %q, want %q", i, l, want)
		}
	}
	// The file itself: one record a line, <RFC3339Nano> F|P <output>, in
	// time order (P: a part of a line, cut where a read of the FIFO ended).
	f, err := os.Open(filepath.Join(dir, "instances", "chatty", "main.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var prev time.Time
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		stamp, rest, ok := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || err != nil || !(strings.HasPrefix(rest, "F ") || strings.HasPrefix(rest, "P ")) || !strings.HasSuffix(stamp, "Z") || at.Before(prev) {
			t.Fatalf("record %q is not <RFC3339Nano UTC, in order> F|P <output>", sc.Text())
		}
		prev = at
	}
}

// fifoHolds is the number of bytes waiting in the FIFO at path, read with
// FIONREAD through a reading end that reads nothing.
func fifoHolds(t *testing.T, path string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ) // FIONREAD
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNoProcessBesideContainer: a running container is its shim and its own
// processes, nothing else: no logging process.
func TestNoProcessBesideContainer(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "lone", Containers: []Container{busybox("main", `sleep 3600`)}})
	waitState(t, r, "lone", "main", StateRunning)
	in, _ := r.table.get("lone")
	pid := in.containers[0].runningPID()
	var shim int
	for _, s := range daemon.Shims() {
		if i := slices.Index(s.Args, "-id"); i >= 0 && i+1 < len(s.Args) && s.Args[i+1] == "lone.0" {
			shim = s.PID
		}
	}
	if shim == 0 || pid == 0 {
		t.Fatalf("shim %d, container's process %d: want both", shim, pid)
	}
	// Every process the shim started, or in the container's cgroup.
	procs := []int{shim}
	all, err := procfs.AllProcs()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		stat, err := p.Stat()
		if err != nil {
			continue // ended meanwhile
		}
		if in, _ := inCgroup(p.PID, containerCgroup("lone", "main")); stat.PPID == shim || in {
			procs = append(procs, p.PID)
		}
	}
	slices.Sort(procs)
	if want := []int{min(shim, pid), max(shim, pid)}; !slices.Equal(procs, want) {
		var names []string
		for _, p := range procs {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			names = append(names, fmt.Sprintf("%d %s", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
		t.Errorf("processes of the container: %q, want only its shim %d and its own %d", names, shim, pid)
	}
}
