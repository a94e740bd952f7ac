//go:build linux

package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is the Runtime that runs containers as processes of this host, each
// supervised by a detached shim process (see doc.go).
type Host struct {
	dir      string // absolute state folder
	shimPath string // absolute path of the spoteci binary
	boot     string // boot id of the kernel
	devNull  *os.File

	startMu [64]sync.Mutex // see lock

	exitsMu sync.Mutex
	scanned bool // Exits has done its first, full scan
}

// NewHost returns a Runtime keeping its state in dir (created if missing) and
// starting shims with the spoteci binary at shimPath. Several Hosts may share
// a dir one after the other (a restarted server picks up the containers of
// the previous one), not at the same time.
func NewHost(dir string, shimPath string) (*Host, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("runtime state folder %s: %w", dir, err)
	}
	absShim, err := filepath.Abs(shimPath)
	if err != nil {
		return nil, fmt.Errorf("shim binary %s: %w", shimPath, err)
	}
	if fi, err := os.Stat(absShim); err != nil {
		return nil, fmt.Errorf("shim binary: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("shim binary %s is not an executable file", absShim)
	}
	for _, sub := range []string{specsDir, instancesDir, exitsDir} {
		if err := os.MkdirAll(filepath.Join(absDir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("creating runtime state folder: %w", err)
		}
	}
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	return &Host{dir: absDir, shimPath: absShim, boot: boot, devNull: devNull}, nil
}

func (h *Host) instanceDir(id string) string { return filepath.Join(h.dir, instancesDir, id) }
func (h *Host) specPath(id string) string    { return filepath.Join(h.dir, specsDir, id+".json") }

// lock serializes the Starts of one instance (by a stripe of its id).
func (h *Host) lock(id string) *sync.Mutex {
	var sum uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(id); i++ {
		sum = (sum ^ uint32(id[i])) * 16777619
	}
	return &h.startMu[sum%uint32(len(h.startMu))]
}

// Start launches the containers of instance id, one shim per container, and
// returns without waiting for them. A container already in the instance's
// spec was started already and is left alone; the others are added to the
// spec and started. A container that cannot be run (missing executable, bad
// working dir) still starts: its shim records it as Terminated with Reason
// StartError.
func (h *Host) Start(ctx context.Context, id string, containers []Container, grace time.Duration) error {
	if err := validName("instance id", id); err != nil {
		return err
	}
	if len(containers) == 0 {
		return fmt.Errorf("instance %s has no containers", id)
	}
	seen := make(map[string]bool, len(containers))
	for _, c := range containers {
		if err := validName("container name", c.Name); err != nil {
			return fmt.Errorf("instance %s: %w", id, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("instance %s: container name %s is used twice", id, c.Name)
		}
		seen[c.Name] = true
		if len(c.Command) == 0 || c.Command[0] == "" {
			return fmt.Errorf("container %s has no command: %w: set command", c.Name, ErrNoCommand)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("starting instance %s: %w", id, err)
	}
	mu := h.lock(id)
	mu.Lock()
	defer mu.Unlock()

	spec := specRecord{Containers: make([]containerSpec, 0, len(containers))}
	add := func(c Container) {
		spec.Containers = append(spec.Containers, containerSpec{
			Name: c.Name, Command: c.Command, Args: c.Args, Env: c.Env, WorkingDir: c.WorkingDir, Grace: grace,
		})
	}
	var start []string // the containers to start
	// A new instance costs a single file: the exclusive create is the claim.
	f, err := os.OpenFile(h.specPath(id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	switch {
	case err == nil:
		for _, c := range containers {
			add(c)
			start = append(start, c.Name)
		}
		data, merr := json.Marshal(spec)
		if merr == nil {
			_, err = f.Write(data)
		} else {
			err = merr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(h.specPath(id))
			return fmt.Errorf("writing spec of instance %s: %w", id, err)
		}
	case errors.Is(err, fs.ErrExist):
		if spec, err = readSpec(h.dir, id); err != nil {
			return fmt.Errorf("starting instance %s: %w", id, err)
		}
		for _, c := range containers {
			if _, ok := spec.container(c.Name); !ok {
				add(c)
				start = append(start, c.Name)
			}
		}
		if len(start) == 0 {
			return nil
		}
		if err := writeJSON(h.specPath(id), spec); err != nil {
			return fmt.Errorf("adding containers to instance %s: %w", id, err)
		}
	default:
		return fmt.Errorf("writing spec of instance %s: %w", id, err)
	}
	for _, name := range start {
		if err := h.startShim(id, name); err != nil {
			err = fmt.Errorf("starting shim for %s/%s: %w", id, name, err)
			// The container is in the spec: record why it never ran.
			h.recordShimFailure(id, name, err)
			return err
		}
	}
	return nil
}

// recordShimFailure records a container whose shim could not be started as
// Terminated with Reason StartError.
func (h *Host) recordShimFailure(id, name string, cause error) {
	cdir := filepath.Join(h.instanceDir(id), name)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return
	}
	rec := exitRecord{FinishedAt: time.Now(), ExitCode: 128, Reason: ReasonStartError, Message: cause.Error()}
	if writeJSON(filepath.Join(cdir, exitFile), rec) == nil {
		_ = markIfAllTerminated(h.dir, id)
	}
}

// startShim fork/execs `spoteci shim` for one container, detached in its own
// session with /dev/null as its standard streams, and does not wait for it.
func (h *Host) startShim(id, name string) error {
	argv := []string{h.shimPath, "shim", "--dir", h.dir, "--id", id, "--container", name}
	fd := h.devNull.Fd()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   shimEnv,
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	_, err := reaper.spawn(func() (int, error) {
		return syscall.ForkExec(h.shimPath, argv, attr)
	}, func() { h.shimExited(id, name) })
	return err
}

// shimEnv is the environment of a shim: the shim needs none, and one P of the
// Go runtime keeps its footprint small.
var shimEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}

// shimExited runs when a shim started by this Host has been reaped: a shim
// that died without writing exit.json (killed, crashed) leaves its container
// unsupervised, so it is killed and recorded as Lost.
func (h *Host) shimExited(id, name string) {
	cdir := filepath.Join(h.instanceDir(id), name)
	if exists(filepath.Join(cdir, exitFile)) || !exists(h.specPath(id)) {
		return
	}
	_ = h.finalizeLost(id, name, "the shim supervising the container exited unexpectedly")
}

// finalizeLost records a container whose shim is gone as Terminated with
// Reason Lost, kills what is left of its process group, and writes the exits
// marker if it was the last container running.
func (h *Host) finalizeLost(id, name, msg string) error {
	cdir := filepath.Join(h.instanceDir(id), name)
	rec := exitRecord{FinishedAt: time.Now(), ExitCode: 128 + int(syscall.SIGKILL), Reason: ReasonLost, Message: msg}
	var run runningRecord
	if err := readJSON(filepath.Join(cdir, runningFile), &run); err == nil {
		rec.PID, rec.StartedAt = run.PID, run.StartedAt
		if run.BootID == h.boot && run.PID > 0 {
			_ = syscall.Kill(-run.PID, syscall.SIGKILL)
		}
	}
	if exists(filepath.Join(cdir, exitFile)) {
		return nil
	}
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return fmt.Errorf("recording lost container %s/%s: %w", id, name, err)
	}
	if err := writeJSON(filepath.Join(cdir, exitFile), rec); err != nil {
		return err
	}
	return markIfAllTerminated(h.dir, id)
}

// containerStatus reads the state of container name of instance id. A
// container whose shim is gone without a word is recorded as Lost on the way.
func (h *Host) containerStatus(id, name string) (ContainerStatus, error) {
	cdir := filepath.Join(h.instanceDir(id), name)
	st := ContainerStatus{Name: name, State: StateWaiting}
	for attempt := 0; attempt < 2; attempt++ {
		ex, ok, err := readExit(cdir)
		if err != nil {
			return st, err
		}
		if ok {
			st.State, st.PID = StateTerminated, ex.PID
			st.StartedAt, st.FinishedAt = ex.StartedAt, ex.FinishedAt
			st.ExitCode, st.Reason, st.Message = ex.ExitCode, ex.Reason, ex.Message
			return st, nil
		}
		if attempt == 1 {
			break
		}
		var run runningRecord
		if err := readJSON(filepath.Join(cdir, runningFile), &run); err != nil {
			// Missing: the shim has not started the process yet; cut
			// short: it is writing the file right now.
			return st, nil
		}
		if shimAlive(run, h.boot) {
			st.State, st.PID, st.StartedAt = StateRunning, run.PID, run.StartedAt
			return st, nil
		}
		// The shim is gone: it wrote exit.json just now, or it died.
		if _, ok, _ := readExit(cdir); !ok {
			msg := "the shim supervising the container is gone"
			if run.BootID != h.boot {
				msg = "the host rebooted while the container ran"
			}
			if err := h.finalizeLost(id, name, msg); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// spec reads the spec of instance id, ErrNotFound if there is none.
func (h *Host) spec(id string) (specRecord, error) {
	if validName("instance id", id) != nil {
		return specRecord{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	spec, err := readSpec(h.dir, id)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSpecPartial) {
		return spec, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return spec, err
}

// Status returns the status of every container of instance id, in the order
// they were given to Start.
func (h *Host) Status(id string) ([]ContainerStatus, error) {
	spec, err := h.spec(id)
	if err != nil {
		return nil, err
	}
	out := make([]ContainerStatus, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		st, err := h.containerStatus(id, c.Name)
		if err != nil {
			return nil, fmt.Errorf("status of container %s/%s: %w", id, c.Name, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// Stop asks the shims of instance id to stop their containers: SIGTERM to the
// process group, SIGKILL at now+grace. The request is the instance's .stop
// file, read by each shim when it gets SIGTERM and before and after it starts
// its process, so a shim still starting cannot miss it. A second Stop can
// shorten the deadline, never extend it.
func (h *Host) Stop(ctx context.Context, id string, grace time.Duration) error {
	spec, err := h.spec(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	idir := h.instanceDir(id)
	if err := os.MkdirAll(idir, 0o755); err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	now := time.Now()
	grace = max(grace, 0)
	rec := stopRecord{RequestedAt: now, Grace: grace, Deadline: now.Add(grace)}
	if old, ok, _ := readStop(idir); ok && old.Deadline.Before(rec.Deadline) {
		rec = old
	}
	if err := writeJSON(filepath.Join(idir, stopFile), rec); err != nil {
		if !exists(idir) {
			return nil // removed meanwhile
		}
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	for _, c := range spec.Containers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopping instance %s: %w", id, err)
		}
		cdir := filepath.Join(idir, c.Name)
		if exists(filepath.Join(cdir, exitFile)) {
			continue
		}
		var run runningRecord
		if err := readJSON(filepath.Join(cdir, runningFile), &run); err != nil {
			continue // not running yet: the shim will find the .stop file
		}
		if !shimAlive(run, h.boot) {
			continue
		}
		if err := syscall.Kill(run.ShimPID, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("stopping container %s/%s: signalling shim %d: %w", id, c.Name, run.ShimPID, err)
		}
	}
	return nil
}

// removeWait bounds how long Remove waits for the containers it kills.
const removeWait = 10 * time.Second

// Remove deletes instance id: its spec, its folder (logs included) and its
// exits marker. Containers still running are killed first (Stop with no
// grace), and Remove waits for their shims to record it.
func (h *Host) Remove(id string) error {
	if validName("instance id", id) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), removeWait)
	defer cancel()
	stopped := false
	for exists(h.specPath(id)) {
		sts, err := h.Status(id)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return fmt.Errorf("removing instance %s: %w", id, err)
		}
		running := false
		for _, st := range sts {
			if st.State != StateTerminated {
				running = true
			}
		}
		if !running {
			// Take the .done file if the last shim has not yet, so that
			// no shim writes an exits marker after the one deleted below.
			_ = markIfAllTerminated(h.dir, id)
			break
		}
		if !stopped {
			if err := h.Stop(ctx, id, 0); err != nil {
				return fmt.Errorf("removing instance %s: %w", id, err)
			}
			stopped = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("removing instance %s: containers still running after %v", id, removeWait)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, p := range []string{h.specPath(id), h.instanceDir(id), filepath.Join(h.dir, exitsDir, id)} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing instance %s: %w", id, err)
		}
	}
	return nil
}

// Exits returns the instances whose containers have all terminated since the
// last call: it lists the exits folder, where the last shim of an instance to
// finish drops a marker, and deletes what it returns. The first call of a
// Host also scans every instance, so a restarted server hears of the instances
// that ended while it was down, markers it read but did not act on included.
func (h *Host) Exits() ([]string, error) {
	h.exitsMu.Lock()
	defer h.exitsMu.Unlock()
	var ids []string
	seen := map[string]bool{}
	if !h.scanned {
		all, err := h.scanTerminated()
		if err != nil {
			return nil, err
		}
		for _, id := range all {
			seen[id] = true
		}
		ids = all
	}
	edir := filepath.Join(h.dir, exitsDir)
	names, err := readDirNames(edir)
	if err != nil {
		return nil, fmt.Errorf("reading exits: %w", err)
	}
	for _, id := range names {
		if err := os.Remove(filepath.Join(edir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ids, fmt.Errorf("removing exits marker of %s: %w", id, err)
		}
		// A marker dropped just as Remove deleted the instance is stale.
		if !seen[id] && exists(h.specPath(id)) {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	h.scanned = true
	return ids, nil
}

// readDirNames lists the names in folder dir, unsorted.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// scanTerminated returns every instance all of whose containers are
// Terminated, recording the containers whose shim is gone as Lost.
func (h *Host) scanTerminated() ([]string, error) {
	names, err := readDirNames(filepath.Join(h.dir, specsDir))
	if err != nil {
		return nil, fmt.Errorf("scanning instances: %w", err)
	}
	sort.Strings(names)
	var done []string
	for _, name := range names {
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || validName("instance id", id) != nil {
			continue
		}
		sts, err := h.Status(id)
		if err != nil || len(sts) == 0 {
			continue
		}
		all := true
		for _, st := range sts {
			if st.State != StateTerminated {
				all = false
				break
			}
		}
		if all {
			done = append(done, id)
		}
	}
	return done, nil
}
