//go:build linux

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// shimExited runs when a shim started by this Host has been reaped: a shim
// that died or failed without writing exit.json leaves its container
// unsupervised, so the container is killed and recorded as Lost. (A shim
// that returns normally has written exit.json, or found another shim owning
// its container.)
func (h *Host) shimExited(id, name string, e shimExit) {
	if !e.failed() {
		return
	}
	cdir := filepath.Join(h.instanceDir(id), name)
	if exists(filepath.Join(cdir, exitFile)) || !exists(h.specPath(id)) {
		return
	}
	var run runningRecord
	if readJSON(filepath.Join(cdir, runningFile), &run) == nil && shimAlive(run, h.boot) {
		return // another shim owns the container
	}
	_ = h.finalizeLost(id, name, fmt.Sprintf("the shim supervising the container failed (%v)", e))
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
	if spec, ok := h.pendingSpec(id); ok {
		return spec, nil
	}
	spec, err := readSpec(h.dir, id)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSpecPartial) {
		return spec, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return spec, err
}

// known reports whether instance id exists, pending or on disk.
func (h *Host) known(id string) bool {
	if _, ok := h.pendingSpec(id); ok {
		return true
	}
	return exists(h.specPath(id))
}

// writeStop writes the .stop file of instance id, keeping the earlier
// deadline of a .stop already there.
func (h *Host) writeStop(id string, rec stopRecord) error {
	idir := h.instanceDir(id)
	if err := os.MkdirAll(idir, 0o755); err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	if old, ok, _ := readStop(idir); ok && !rec.Deadline.Before(old.Deadline) {
		return nil
	}
	if err := writeJSON(filepath.Join(idir, stopFile), rec); err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	return nil
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
	if validName("instance id", id) != nil {
		return nil
	}
	now := time.Now()
	grace = max(grace, 0)
	rec := stopRecord{RequestedAt: now, Grace: grace, Deadline: now.Add(grace)}
	mu := h.lock(id)
	mu.Lock()
	defer mu.Unlock()
	h.pendMu.Lock()
	if p, ok := h.pending[id]; ok {
		// Not on disk yet: the launcher writes the .stop file before it
		// starts the shims.
		if p.stop == nil || rec.Deadline.Before(p.stop.Deadline) {
			p.stop = &rec
		}
		h.pendMu.Unlock()
		return nil
	}
	h.pendMu.Unlock()
	spec, err := readSpec(h.dir, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stopping instance %s: %w", id, err)
	}
	if err := h.writeStop(id, rec); err != nil {
		if !exists(h.specPath(id)) {
			return nil // removed meanwhile
		}
		return err
	}
	idir := h.instanceDir(id)
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
	mu := h.lock(id)
	mu.Lock()
	h.pendMu.Lock()
	_, pending := h.pending[id]
	delete(h.pending, id) // the launcher will skip it
	h.pendMu.Unlock()
	mu.Unlock()
	if pending {
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
// Host also returns every instance found fully terminated by NewHost, so a
// restarted server hears of the instances that ended while it was down,
// markers it read but did not act on included.
func (h *Host) Exits() ([]string, error) {
	h.exitsMu.Lock()
	defer h.exitsMu.Unlock()
	var ids []string
	seen := map[string]bool{}
	if !h.scanned {
		for _, id := range h.initialExits {
			if exists(h.specPath(id)) {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		h.initialExits = nil
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
