package runtime

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

func TestInCgroup(t *testing.T) {
	proc := fakeProc(t, map[int]string{
		1: "12:pids:/spoteci/eci-1/main\n11:cpu,cpuacct:/spoteci/eci-1/main\n0::/\n",
		// Inside a cgroup namespace the paths are relative to its root.
		2: "5:memory:/host/spoteci/eci-1/main\n",
	})
	for cg, want := range map[string]bool{
		"/spoteci/eci-1/main":  true,
		"/spoteci/eci-1/mai":   false,
		"/spoteci/eci-1/main2": false,
		"/spoteci/eci-2/main":  false,
	} {
		if got, err := inCgroupOf(proc, 1, cg); err != nil || got != want {
			t.Errorf("inCgroup(%q) = %v, %v, want %v", cg, got, err, want)
		}
	}
	if in, err := inCgroupOf(proc, 2, "/spoteci/eci-1/main"); err != nil || !in {
		t.Errorf("a path below a cgroup namespace's root is not recognised: %v", err)
	}
	if _, err := inCgroupOf(proc, 3, "/spoteci/eci-1/main"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a process that is gone: %v, want ErrNotExist", err)
	}
}

// fakeProc is a /proc holding the cgroup file of each pid.
func fakeProc(t *testing.T, cgroups map[int]string) procfs.FS {
	dir := t.TempDir()
	for pid, content := range cgroups {
		p := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "cgroup"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	proc, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return proc
}

// A pid that is not in the container's cgroup (reused by another process
// after the container's exit) is never signalled.
func TestSignalProcessNotOurs(t *testing.T) {
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	pid := other.Process.Pid
	if err := signalProcess(pid, containerCgroup("eci-1", "main"), syscall.SIGKILL); !errors.Is(err, errNotOurs) {
		t.Fatalf("signalProcess of a process outside the container = %v, want errNotOurs", err)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the other process was signalled: %v", err)
	}
	other.Process.Kill()
	other.Wait()
	if err := signalProcess(pid, containerCgroup("eci-1", "main"), syscall.SIGKILL); !errors.Is(err, errNotOurs) {
		t.Fatalf("signalProcess of an ended process = %v, want errNotOurs", err)
	}
}

// A stop whose direct SIGKILL misses (here: a wrong pid) still ends the
// container, through containerd, and signals nothing else.
func TestStopKillsWhenTheSignalIsLost(t *testing.T) {
	r := newRuntime(t)
	start(t, r, Instance{ID: "deaf", Containers: []Container{busybox("main", `trap '' TERM; echo ready; while :; do sleep 0.1; done`)}})
	waitFor(t, 10*time.Second, "ready", func() bool { return readLog(t, r, "deaf", "main") == "ready\n" })
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	in, _ := r.table.get("deaf")
	in.mu.Lock()
	in.containers[0].pid = other.Process.Pid
	in.mu.Unlock()
	began := time.Now()
	if err := r.Stop(context.Background(), "deaf", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cs := waitState(t, r, "deaf", "main", StateTerminated)
	if cs.ExitCode != 137 {
		t.Errorf("ended %d (%s), want 137", cs.ExitCode, cs.Reason)
	}
	t.Logf("killed %s after the stop", time.Since(began).Round(10*time.Millisecond))
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a process outside the container was signalled: %v", err)
	}
}
