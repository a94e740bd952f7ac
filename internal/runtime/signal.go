package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A stop signals a container's first process as a kubelet does through
// containerd (SIGTERM to it alone, SIGKILL at the deadline; the kernel then
// ends the rest of its PID namespace). The signal goes from here, with the
// kernel's pidfd calls: through containerd it costs an RPC to the shim and
// an exec of `runc kill`, which does no more than this, and a reclaim storm
// sends 2,000 of them while its replacements wait for the CPU.

// errNotOurs says that the process to signal has ended, or that its pid now
// belongs to another process: there is nothing to signal.
var errNotOurs = errors.New("the container's process has ended")

// signalProcess sends sig to process pid if it is still in cgroup cg (the
// container's). The pidfd pins the process, so a pid reused after the
// container's exit is never signalled: a reused pid either fails the cgroup
// check or leaves the pidfd pointing at the ended process.
func signalProcess(pid int, cg string, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return errNotOurs
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return errNotOurs
	}
	if err != nil {
		return err
	}
	if !inCgroup(b, cg) {
		return errNotOurs
	}
	err = unix.PidfdSendSignal(fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return errNotOurs
	}
	if err != nil {
		return fmt.Errorf("pidfd_send_signal %d %s: %w", pid, sig, err)
	}
	return nil
}

// inCgroup reports whether a /proc/<pid>/cgroup file puts the process in
// cg in some hierarchy. Paths are compared by suffix: inside a cgroup
// namespace the file shows them relative to its root.
func inCgroup(procCgroup []byte, cg string) bool {
	for line := range bytes.Lines(procCgroup) {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(f) == 3 && strings.HasSuffix(f[2], cg) { // cg starts with "/"
			return true
		}
	}
	return false
}
