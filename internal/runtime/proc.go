//go:build linux

package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// bootID returns the kernel's boot id, which changes at every boot.
func bootID() (string, error) {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading boot id: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// procStart returns the start time of process pid in clock ticks after boot
// (field 22 of /proc/PID/stat) and whether it is a zombie.
func procStart(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("parsing /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("parsing /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parsing /proc/%d/stat: %w", pid, err)
	}
	return start, fields[0] == "Z" || fields[0] == "X", nil
}

// shimAlive reports whether the shim recorded in r still runs, telling a
// recycled pid or a reboot from the real shim.
func shimAlive(r runningRecord, boot string) bool {
	if r.BootID != boot {
		return false
	}
	start, zombie, err := procStart(r.ShimPID)
	return err == nil && !zombie && start == r.ShimStart
}

const is64bit = int(^uintptr(0) >> 63)

// siginfoChild is the part of the kernel's siginfo_t that waitid fills in for
// a child (as in internal/syscall/unix), padded to its 128 bytes.
type siginfoChild struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      [is64bit]int32
	Pid    int32
	Uid    uint32
	Status int32
	_      [128 - (6+is64bit)*4]byte
}

// Constants of waitid(2) that package syscall lacks.
const (
	pAll    = 0
	pPID    = 1
	wNoWait = 0x1000000
)

// waitid calls waitid(2) with WEXITED added to options and returns the pid of
// the child it found, 0 if none (with WNOHANG).
func waitid(idtype, id, options int) (int, error) {
	for {
		var info siginfoChild
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, uintptr(idtype), uintptr(id),
			uintptr(unsafe.Pointer(&info)), uintptr(options|syscall.WEXITED), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(info.Pid), nil
	}
}

// wait4 reaps child pid; with syscall.WNOHANG it returns 0 if pid has not exited.
func wait4(pid, options int) (int, syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, options, nil)
		if err == syscall.EINTR {
			continue
		}
		return got, ws, err
	}
}

// shimReaper reaps the shims this process started, which are its children
// until they exit (the shims of an earlier server are reparented to init, which
// reaps them). It needs neither a goroutine, nor a thread, nor a file
// descriptor per shim: a single goroutine wakes on SIGCHLD, peeks at the
// exited children with waitid(P_ALL, WNOWAIT) and reaps only its own, so it
// never steals the children of os/exec.
type shimReaper struct {
	once sync.Once
	mu   sync.Mutex
	pids map[int]func(shimExit) // shim pid -> called once the shim is reaped
}

// shimExit is how a shim ended, as far as its parent knows.
type shimExit struct {
	status syscall.WaitStatus
	known  bool // false if someone else reaped it
}

// failed reports whether the shim died or failed rather than returning normally.
func (e shimExit) failed() bool {
	return e.known && !(e.status.Exited() && e.status.ExitStatus() == 0)
}

func (e shimExit) String() string {
	switch {
	case !e.known:
		return "unknown status"
	case e.status.Signaled():
		return "killed by " + e.status.Signal().String()
	default:
		return "exit status " + strconv.Itoa(e.status.ExitStatus())
	}
}

var reaper shimReaper

// start launches the reaper goroutine once.
func (r *shimReaper) start() {
	r.once.Do(func() {
		r.pids = make(map[int]func(shimExit))
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGCHLD)
		go r.loop(sigs)
	})
}

// spawn runs fork (which returns the new pid) and has onExit called once
// the child has exited and been reaped. Forks run concurrently.
func (r *shimReaper) spawn(fork func() (int, error), onExit func(shimExit)) (int, error) {
	r.start()
	pid, err := fork()
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.pids[pid] = onExit
	r.mu.Unlock()
	// A child that exited before it was registered was skipped by the
	// reaper, and will raise no other SIGCHLD.
	r.reap(pid)
	return pid, nil
}

// reap reaps pid if it has exited, and then calls its onExit; it reports
// whether pid is gone.
func (r *shimReaper) reap(pid int) bool {
	got, ws, err := wait4(pid, syscall.WNOHANG)
	switch {
	case got == pid:
		r.done(pid, shimExit{status: ws, known: true})
	case errors.Is(err, syscall.ECHILD):
		r.done(pid, shimExit{})
	default:
		return false
	}
	return true
}

// done calls the onExit of pid, once, pid having been reaped.
func (r *shimReaper) done(pid int, e shimExit) {
	r.mu.Lock()
	onExit, ours := r.pids[pid]
	delete(r.pids, pid)
	r.mu.Unlock()
	if ours {
		onExit(e)
	}
}

func (r *shimReaper) loop(sigs <-chan os.Signal) {
	// The ticker is a safety net only: every exit of a shim raises SIGCHLD.
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			r.reapExited()
		case <-tick.C:
			r.sweep()
		}
	}
}

// reapExited reaps every exited shim, looking at exited children one at a time.
func (r *shimReaper) reapExited() {
	for {
		pid, err := waitid(pAll, 0, syscall.WNOHANG|wNoWait)
		if err != nil || pid == 0 {
			return // ECHILD: no children at all; 0: none exited
		}
		r.mu.Lock()
		_, ours := r.pids[pid]
		r.mu.Unlock()
		if !ours {
			// Someone else's child (or one of ours not registered yet)
			// hides the others until it is reaped: look at each of ours
			// instead.
			r.sweep()
			return
		}
		if !r.reap(pid) {
			return
		}
	}
}

// sweep reaps, one by one, the shims that have exited.
func (r *shimReaper) sweep() {
	r.mu.Lock()
	pids := make([]int, 0, len(r.pids))
	for pid := range r.pids {
		pids = append(pids, pid)
	}
	r.mu.Unlock()
	for _, pid := range pids {
		r.reap(pid)
	}
}
