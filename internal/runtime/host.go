//go:build linux

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

	idMu    [256]sync.Mutex // see lock
	launchQ chan launch     // see launcher

	pendMu  sync.Mutex
	pending map[string]*pendingInstance // started, spec not written yet

	exitsMu      sync.Mutex
	scanned      bool     // Exits has returned initialExits
	initialExits []string // instances fully terminated when NewHost looked
}

// pendingInstance is an instance that Start queued and no launcher has
// written to disk yet.
type pendingInstance struct {
	spec specRecord
	stop *stopRecord // Stop came first
}

// launch is work for the launchers: a pending instance to write and start
// (names nil), or containers of an instance on disk to start.
type launch struct {
	id    string
	names []string
}

// Start only queues; launchers write specs and fork/exec shims, several at a
// time. The queue absorbs bursts; when it is full, Start waits.
const (
	launchers   = 4
	launchQueue = 4096
)

// NewHost returns a Runtime keeping its state in dir (created if missing) and
// starting shims with the spoteci binary at shimPath (os.Executable() in
// production). Several Hosts may use a dir one after the other (a restarted
// server picks up the containers of the previous one), not at the same time.
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
	h := &Host{
		dir: absDir, shimPath: absShim, boot: boot, devNull: devNull,
		launchQ: make(chan launch, launchQueue),
		pending: make(map[string]*pendingInstance),
	}
	for range launchers {
		go h.launcher()
	}
	if err := h.recover(); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Host) instanceDir(id string) string { return filepath.Join(h.dir, instancesDir, id) }
func (h *Host) specPath(id string) string    { return filepath.Join(h.dir, specsDir, id+".json") }

// lock returns the mutex that serializes, for one instance (by a stripe of
// its id), Start, the launcher writing its spec, Stop and Remove.
func (h *Host) lock(id string) *sync.Mutex {
	var sum uint32 = 2166136261 // FNV-1a
	for i := 0; i < len(id); i++ {
		sum = (sum ^ uint32(id[i])) * 16777619
	}
	return &h.idMu[sum%uint32(len(h.idMu))]
}

// pendingSpec returns a copy of the spec of a pending instance.
func (h *Host) pendingSpec(id string) (specRecord, bool) {
	h.pendMu.Lock()
	defer h.pendMu.Unlock()
	p, ok := h.pending[id]
	if !ok {
		return specRecord{}, false
	}
	return specRecord{Containers: append([]containerSpec(nil), p.spec.Containers...)}, true
}

// recover picks up the state a previous server left: it notes the instances
// already fully terminated, for the first Exits, records as Lost the
// containers whose shim is gone, and starts the shims of containers that
// never had one (the server stopped between writing a spec and forking).
func (h *Host) recover() error {
	names, err := readDirNames(filepath.Join(h.dir, specsDir))
	if err != nil {
		return fmt.Errorf("scanning instances: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || validName("instance id", id) != nil {
			continue
		}
		spec, err := readSpec(h.dir, id)
		if err != nil {
			continue
		}
		all := len(spec.Containers) > 0
		var never []string
		for _, c := range spec.Containers {
			if !exists(filepath.Join(h.instanceDir(id), c.Name)) {
				never = append(never, c.Name)
				all = false
				continue
			}
			st, err := h.containerStatus(id, c.Name)
			if err != nil || st.State != StateTerminated {
				all = false
			}
		}
		if len(never) > 0 {
			h.launchQ <- launch{id: id, names: never}
		}
		if all {
			h.initialExits = append(h.initialExits, id)
		}
	}
	return nil
}

// Start launches the containers of instance id, one shim per container, and
// returns at once: it queues the instance, and a launcher goroutine writes
// its spec and fork/execs its shims right away (Start waits only while
// thousands are queued). Until its shim runs, a container is Waiting. Start
// is idempotent: a container the instance has already is left alone, the
// others are added and started. A container that cannot be run (missing
// executable, bad working dir) starts all the same: its shim records it as
// Terminated with Reason StartError.
//
// Start keeps the instance in memory until its spec is written, a few
// milliseconds: if the server dies in between, the instance is unknown to
// the next Host (Status returns ErrNotFound) and must be started again.
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
	// The queue is fed outside the lock of id: the launchers take it too.
	l, cancel, err := h.register(id, containers, grace)
	if err != nil || cancel == nil {
		return err
	}
	select {
	case h.launchQ <- l:
		return nil
	default:
	}
	select {
	case h.launchQ <- l:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("starting instance %s: %w", id, ctx.Err())
	}
}

// register records the containers of instance id that it lacks, and returns
// the launch that starts them and how to undo it (nil if there is nothing to
// start). A new instance is only kept in memory, pending; an instance on disk
// gets its spec rewritten.
func (h *Host) register(id string, containers []Container, grace time.Duration) (launch, func(), error) {
	mu := h.lock(id)
	mu.Lock()
	defer mu.Unlock()
	missing := func(spec specRecord) []containerSpec {
		var add []containerSpec
		for _, c := range containers {
			if _, ok := spec.container(c.Name); !ok {
				add = append(add, containerSpec{
					Name: c.Name, Command: slices.Clone(c.Command), Args: slices.Clone(c.Args), Env: slices.Clone(c.Env),
					WorkingDir: c.WorkingDir, Grace: grace,
				})
			}
		}
		return add
	}

	h.pendMu.Lock()
	if p, ok := h.pending[id]; ok {
		// Queued already: the launcher will write all of it.
		p.spec.Containers = append(p.spec.Containers, missing(p.spec)...)
		h.pendMu.Unlock()
		return launch{}, nil, nil
	}
	h.pendMu.Unlock()

	spec, err := readSpec(h.dir, id)
	switch {
	case err == nil:
		// Known already: add what is missing, rare enough to be done here.
		add := missing(spec)
		if len(add) == 0 {
			return launch{}, nil, nil
		}
		spec.Containers = append(spec.Containers, add...)
		if err := writeJSON(h.specPath(id), spec); err != nil {
			return launch{}, nil, fmt.Errorf("adding containers to instance %s: %w", id, err)
		}
		names := make([]string, len(add))
		for i, c := range add {
			names[i] = c.Name
		}
		return launch{id: id, names: names}, func() {
			for _, name := range names {
				h.recordShimFailure(id, name, fmt.Errorf("starting instance %s: cancelled", id))
			}
		}, nil
	case errors.Is(err, fs.ErrNotExist):
		p := &pendingInstance{spec: specRecord{Containers: missing(specRecord{})}}
		h.pendMu.Lock()
		h.pending[id] = p
		h.pendMu.Unlock()
		return launch{id: id}, func() {
			mu.Lock()
			defer mu.Unlock()
			h.pendMu.Lock()
			if h.pending[id] == p {
				delete(h.pending, id)
			}
			h.pendMu.Unlock()
		}, nil
	default:
		return launch{}, nil, fmt.Errorf("starting instance %s: %w", id, err)
	}
}

// launcher writes the specs of pending instances and starts the queued shims.
func (h *Host) launcher() {
	for l := range h.launchQ {
		names := l.names
		if names == nil {
			var ok bool
			if names, ok = h.writePending(l.id); !ok {
				continue
			}
		}
		for _, name := range names {
			if err := h.startShim(l.id, name); err != nil {
				h.recordShimFailure(l.id, name, fmt.Errorf("starting shim for %s/%s: %w", l.id, name, err))
			}
		}
	}
}

// writePending writes the spec of pending instance id (and its stop request,
// if Stop came first) and returns the containers to start. ok is false if
// the instance was removed meanwhile.
func (h *Host) writePending(id string) (names []string, ok bool) {
	mu := h.lock(id)
	mu.Lock()
	defer mu.Unlock()
	spec, ok := h.pendingSpec(id)
	if !ok {
		return nil, false // removed
	}
	// Under the lock of id, nothing changes the pending instance.
	err := writeJSON(h.specPath(id), spec) // complete or absent: until then the instance is pending
	h.pendMu.Lock()
	stop := h.pending[id].stop
	delete(h.pending, id)
	h.pendMu.Unlock()
	for _, c := range spec.Containers {
		names = append(names, c.Name)
	}
	if err == nil && stop != nil {
		err = h.writeStop(id, *stop)
	}
	if err != nil {
		// Keep what can be kept: the containers are known, and failed.
		for _, name := range names {
			h.recordShimFailure(id, name, fmt.Errorf("starting instance %s: %w", id, err))
		}
		return nil, false
	}
	return names, true
}

// recordShimFailure records a container whose shim could not be started as
// Terminated with Reason StartError.
func (h *Host) recordShimFailure(id, name string, cause error) {
	if !exists(h.specPath(id)) {
		return
	}
	cdir := filepath.Join(h.instanceDir(id), name)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return
	}
	rec := exitRecord{FinishedAt: time.Now(), ExitCode: 128, Reason: ReasonStartError, Message: cause.Error()}
	if writeJSON(filepath.Join(cdir, exitFile), rec) == nil {
		_ = markIfAllTerminated(h.dir, id)
	}
}

// shimEnv is the environment of a shim: the shim needs none, and one P of the
// Go runtime keeps its footprint small.
var shimEnv = []string{"PATH=" + defaultPath, "GOMAXPROCS=1"}

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
	}, func(e shimExit) { h.shimExited(id, name, e) })
	return err
}
