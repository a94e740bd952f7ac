package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// An instance's network namespace is held by an open file of the runtime,
// not pinned by a bind mount: a mount on the host is read again by every
// later container start (runc parses the host's mountinfo several times a
// start), so a pin per instance made each start dearer the more instances
// ran. runc and the CNI plugins open it by the path of that file,
// /proc/<runtime's pid>/fd/<n>. While a container of the instance runs,
// its processes hold the namespace too: a runtime that starts again (a
// restart of spoteci) holds it again from a running container's
// /proc/<pid>/ns/net (adoptNetNS). One whose containers all ended meanwhile
// (a restart's back-off) lost it with them, as a kubelet's pod loses its
// sandbox when the pause container dies: the next launch makes a new one
// and asks the plugins for the same IP.

// netnsHolder holds the instances' network namespaces open.
type netnsHolder struct {
	dir string // runtime folder, where earlier runtimes pinned them

	mu   sync.Mutex
	held map[string]*os.File // by instance id
}

// pinPath is where an earlier runtime pinned the namespace of instance id
// with a bind mount; such a pin is taken over (held, and unmounted).
func (h *netnsHolder) pinPath(id string) string { return filepath.Join(h.dir, "netns", id) }

// nsPath is the path of instance id's network namespace while the runtime
// holds it.
func (h *netnsHolder) nsPath(id string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.held[id]
	if !ok {
		return "", false
	}
	return fdPath(f), true
}

// fdPath is the path by which another process opens what f is.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()) }

// holds reports whether the runtime holds instance id's network namespace.
func (h *netnsHolder) holds(id string) bool {
	_, ok := h.nsPath(id)
	return ok
}

// hold keeps f, instance id's network namespace; one held already is kept
// and f closed.
func (h *netnsHolder) hold(id string, f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.held[id]; ok {
		f.Close()
		return
	}
	h.held[id] = f
}

// unhold stops holding instance id's namespace and returns its file, nil if
// none was held.
func (h *netnsHolder) unhold(id string) *os.File {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.held[id]
	delete(h.held, id)
	return f
}

// closeAll lets every namespace go: those with a running container live on
// in it.
func (h *netnsHolder) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, f := range h.held {
		f.Close()
		delete(h.held, id)
	}
}

// namespace returns instance id's namespace, held: the one held already,
// one pinned by an earlier runtime, or a new one (fresh).
func (h *netnsHolder) namespace(id string) (path string, fresh bool, err error) {
	if path, ok := h.nsPath(id); ok {
		return path, false, nil
	}
	if took, err := h.takeOverPin(id); err != nil || took {
		path, _ := h.nsPath(id)
		return path, false, err
	}
	f, err := newNetNS()
	if err != nil {
		return "", false, fmt.Errorf("network namespace of %s: %w", id, err)
	}
	h.hold(id, f)
	path, _ = h.nsPath(id)
	return path, true, nil
}

// takeOverPin holds the namespace that an earlier runtime pinned for
// instance id, if any, and removes the pin.
func (h *netnsHolder) takeOverPin(id string) (bool, error) {
	pin := h.pinPath(id)
	if !isNetNS(pin) {
		return false, nil
	}
	f, err := os.Open(pin)
	if err != nil {
		return false, fmt.Errorf("network namespace of %s: %w", id, err)
	}
	h.hold(id, f)
	return true, unpin(pin)
}

// unpin removes a bind-mount pin of an earlier runtime.
func unpin(pin string) error {
	if err := unix.Unmount(pin, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", pin, err)
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// adoptNetNS holds the network namespace of instance id from process pid,
// a running container's first process in cgroup cg (checked, so that a
// reused pid is not taken for it).
func (h *netnsHolder) adoptNetNS(id string, pid int, cg string) error {
	if h.holds(id) {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if in, err := inCgroup(pid, cg); err != nil {
		return err
	} else if !in {
		return errNotOurs
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	// Still alive once the namespace is open: the pid was not reused
	// between the check and the open.
	if alive, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 0); err != nil || alive != 0 {
		f.Close()
		return errNotOurs
	}
	h.hold(id, f)
	return nil
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// newNetNS creates a network namespace with its loopback up and returns it
// open.
//
// The namespace is made on a locked thread that then goes back to the host's
// namespace and to the scheduler. Letting the thread die instead (the usual
// way) kills every child it ever forked with Pdeathsig: the control plane's
// components (issue 19). Only when the way back fails does the thread stay
// locked, so that Go ends it rather than run goroutines in the wrong
// namespace.
func newNetNS() (*os.File, error) {
	type made struct {
		f   *os.File
		err error
	}
	c := make(chan made, 1)
	go func() {
		goruntime.LockOSThread()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		host, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			c <- made{err: fmt.Errorf("opening the host's network namespace: %w", err)}
			return
		}
		defer unix.Close(host)
		var f *os.File
		err = enterNewNetNS()
		if err == nil {
			f, err = os.Open(self)
		}
		if serr := unix.Setns(host, unix.CLONE_NEWNET); serr != nil {
			// Still locked: the thread ends with this goroutine.
			if f != nil {
				f.Close()
			}
			c <- made{err: errors.Join(err, fmt.Errorf("returning to the host's network namespace: %w", serr))}
			return
		}
		goruntime.UnlockOSThread()
		c <- made{f, err}
	}()
	m := <-c
	return m.f, m.err
}

// enterNewNetNS moves the calling (locked) thread into a new network
// namespace and sets its loopback up.
func enterNewNetNS() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	return loopbackUp()
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}
