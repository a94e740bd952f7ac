package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/procfs"
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
	in, err := inCgroup(pid, cg)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return errNotOurs
	}
	if err != nil {
		return err
	}
	if !in {
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

// procFS is the host's /proc.
var procFS = sync.OnceValues(procfs.NewDefaultFS)

// inCgroup reports whether process pid is in cg in some hierarchy.
func inCgroup(pid int, cg string) (bool, error) {
	fs, err := procFS()
	if err != nil {
		return false, err
	}
	return inCgroupOf(fs, pid, cg)
}

// inCgroupOf is inCgroup on the /proc of fs. Paths are compared by
// suffix: inside a cgroup namespace /proc shows them relative to its root.
func inCgroupOf(fs procfs.FS, pid int, cg string) (bool, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return false, err
	}
	cgroups, err := p.Cgroups()
	if err != nil {
		return false, err
	}
	for _, c := range cgroups {
		if strings.HasSuffix(c.Path, cg) { // cg starts with "/"
			return true, nil
		}
	}
	return false, nil
}
