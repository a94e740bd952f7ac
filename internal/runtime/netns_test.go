package runtime

import (
	"errors"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/spoteci/spoteci/internal/forker"
)

// TestNetNSRetiresNoThread forks two children with Pdeathsig, one through
// internal/forker (as internal/cluster starts the control plane) and one
// from an ordinary thread of the scheduler's pool (as anything else might),
// then makes hundreds of network namespaces: neither child may die. Before
// issue 19, each namespace retired a thread, and a child forked on it was
// SIGKILLed.
func TestNetNSRetiresNoThread(t *testing.T) {
	// Keep this goroutine on its thread (the main one, which Go never ends),
	// so newNetNS's goroutines run on the pool's threads, where the second
	// child is forked.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()

	viaForker := sleeper(t, forker.Start)
	pooled := sleeper(t, func(cmd *exec.Cmd) error {
		for {
			errc := make(chan error, 1)
			go func() {
				if unix.Gettid() == unix.Getpid() {
					errc <- errMainThread // never ends: try another thread
					return
				}
				errc <- cmd.Start()
			}()
			if err := <-errc; err != errMainThread {
				return err
			}
		}
	})
	children := []struct {
		name  string
		pidfd int
	}{{"the child forked through forker", viaForker}, {"the child forked on a pool thread", pooled}}

	const namespaces = 300
	for i := 1; i <= namespaces; i++ {
		f, err := newNetNS()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if !isNetNS(fdPath(f)) {
			t.Fatalf("%s is not a network namespace", fdPath(f))
		}
		// A retired thread's signal lands a moment after the thread ends:
		// give the last namespace's thread that moment.
		wait := 0
		if i == namespaces {
			wait = 500
		}
		for _, c := range children {
			if exited(t, c.pidfd, wait) {
				t.Fatalf("%s died after %d namespaces", c.name, i)
			}
		}
	}
	// The threads went back to the scheduler: every one must be in the
	// host's namespace, or goroutines would run in an instance's.
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && ns != host {
			t.Errorf("thread %s is in %s, not the host's %s", task.Name(), ns, host)
		}
	}
}

var errMainThread = errors.New("on the main thread")

// sleeper starts `sleep 600` with the control plane's Pdeathsig through
// start, and returns a pidfd of it; the test's end kills and reaps it. No
// goroutine waits for it meanwhile: one blocked in wait would hold the
// thread that forked it out of the pool.
func sleeper(t *testing.T, start func(*exec.Cmd) error) int {
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		unix.Close(fd)
	})
	return fd
}

// exited reports whether the process of pidfd has exited, waiting up to ms
// milliseconds for it.
func exited(t *testing.T, pidfd, ms int) bool {
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}
