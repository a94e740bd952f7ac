package model

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/ipam"
)

// Config sets up a model runtime.
type Config struct {
	// Dir holds the journal and the containers' logs.
	Dir string
	// Clock is the wall clock; nil is the real one. Tests give a fake.
	Clock clock.Clock
	// RestartBackoff is the first wait before a container starts again
	// (default: a kubelet's 10 s).
	RestartBackoff time.Duration
	Log            *slog.Logger
}

// Runtime runs instances as models. Safe for concurrent use.
type Runtime struct {
	cfg     Config
	clock   clock.Clock
	journal *journal

	mu        sync.Mutex
	instances map[string]*instance
	due       dueHeap
	// exited holds the ids whose containers all ended since the last Exits;
	// reported says whether Exits was called since New.
	exited   map[string]bool
	reported bool
	// changed holds the ids whose Status changed since the last Changed.
	changed runtime.Changes
	ips     *ipam.Book

	wake, stop, done chan struct{}
}

var (
	_ runtime.Runtime  = (*Runtime)(nil)
	_ runtime.Notifier = (*Runtime)(nil)
)

// New opens the runtime in cfg.Dir and replays its journal: the instances
// of an earlier run come back as they are now.
func New(cfg Config) (*Runtime, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = runtime.RestartBackoff
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("model runtime: %w", err)
	}
	ips, err := ipam.New(modelSubnet)
	if err != nil {
		return nil, fmt.Errorf("model runtime: %w", err)
	}
	r := &Runtime{cfg: cfg, clock: cfg.Clock, instances: map[string]*instance{}, exited: map[string]bool{},
		ips: ips, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	r.journal, err = openJournal(filepath.Join(cfg.Dir, "journal.jsonl"), r.apply)
	if err != nil {
		return nil, fmt.Errorf("model runtime: %w", err)
	}
	now := r.clock.Now()
	for _, in := range r.instances {
		r.advance(in, now)
	}
	cfg.Log.Info("model runtime ready", "instances", len(r.instances))
	go r.run()
	return r, nil
}

// Start registers instance spec; its containers start at once.
func (r *Runtime) Start(ctx context.Context, spec runtime.Instance) error {
	if err := spec.Check(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.instances[spec.ID]; ok {
		return nil
	}
	ip, err := r.ips.Lease(spec.ID, "")
	if err != nil {
		return fmt.Errorf("model runtime: %w", err)
	}
	if err := r.record(op{Op: opStart, At: r.clock.Now(), ID: spec.ID, Instance: &spec, IP: ip.String()}); err != nil {
		r.ips.Release(spec.ID)
		return err
	}
	return nil
}

// Stop ends the containers of id: running ones exit at once, as a process
// does on SIGTERM; waiting ones never start.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	if !ok || in.stopped {
		return nil
	}
	return r.record(op{Op: opStop, At: r.clock.Now(), ID: id})
}

// Restart starts every container of id again in place.
func (r *Runtime) Restart(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.instances[id]; !ok {
		return fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	return r.record(op{Op: opRestart, At: r.clock.Now(), ID: id})
}

// Remove forgets id and deletes its logs.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.instances[id]; !ok {
		return nil
	}
	return r.record(op{Op: opRemove, At: r.clock.Now(), ID: id})
}

// Status returns the state of id as of now.
func (r *Runtime) Status(id string) (runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	if !ok {
		return runtime.Status{}, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	r.advance(in, r.clock.Now())
	return in.status(), nil
}

// Exits returns the ids whose containers all ended since the last call.
func (r *Runtime) Exits() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.reported {
		r.reported = true
		for id, in := range r.instances {
			if in.allTerminated() {
				r.exited[id] = true
			}
		}
	}
	ids := make([]string, 0, len(r.exited))
	for id := range r.exited {
		ids = append(ids, id)
	}
	clear(r.exited)
	return ids, nil
}

// Changed returns the ids whose Status changed since the last call.
func (r *Runtime) Changed() []string { return r.changed.Take() }

// Stats gives every running container no use: a model does no work.
func (r *Runtime) Stats(id string) (runtime.Stats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	if !ok {
		return runtime.Stats{}, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	now := r.clock.Now()
	r.advance(in, now)
	st := runtime.Stats{Usage: runtime.Usage{Time: now}}
	for _, c := range in.containers {
		if c.st.State == runtime.StateRunning {
			st.Containers = append(st.Containers, runtime.ContainerUsage{Name: c.st.Name, StartedAt: c.st.StartedAt, Usage: runtime.Usage{Time: now}})
		}
	}
	return st, nil
}

// Running counts the instances with a container not ended.
func (r *Runtime) Running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, in := range r.instances {
		if !in.allTerminated() {
			n++
		}
	}
	return n
}

// Destroy removes every instance (spoteci down).
func (r *Runtime) Destroy(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.instances {
		if err := r.record(op{Op: opRemove, At: r.clock.Now(), ID: id}); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the timer and closes the journal; the instances stay in it.
func (r *Runtime) Close() error {
	select {
	case <-r.stop:
		return nil
	default:
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.journal.close()
}

// record appends o to the journal and then applies it. Call with mu held.
func (r *Runtime) record(o op) error {
	if err := r.journal.append(o); err != nil {
		return fmt.Errorf("model runtime: %w", err)
	}
	r.apply(o)
	r.poke()
	return nil
}

// apply acts on o at its time: the one place where what was asked changes
// an instance, live and in replay alike. Call with mu held.
func (r *Runtime) apply(o op) {
	r.changed.Note(o.ID)
	in := r.instances[o.ID]
	if in != nil {
		r.advance(in, o.At)
	}
	switch {
	case o.Op == opStart && in == nil && o.Instance != nil:
		r.ips.Restore(o.ID, o.IP) // a replay's; Start leased it already
		in = newInstance(*o.Instance, o.IP, filepath.Join(r.cfg.Dir, "logs", o.ID))
		r.instances[o.ID] = in
		in.start(o.At)
	case o.Op == opStop && in != nil:
		in.stopAll(o.At)
	case o.Op == opRestart && in != nil:
		in.restartAll(o.At)
		delete(r.exited, o.ID)
	case o.Op == opRemove && in != nil:
		delete(r.instances, o.ID)
		delete(r.exited, o.ID)
		r.ips.Release(o.ID)
		os.RemoveAll(in.logs)
		return
	}
	if in != nil {
		r.advance(in, o.At)
	}
}

// advance brings in up to now and schedules its next change. Call with mu
// held.
func (r *Runtime) advance(in *instance, now time.Time) {
	if in.advance(now, r.cfg.RestartBackoff) {
		r.changed.Note(in.spec.ID)
	}
	if ended := in.allTerminated(); ended != in.ended {
		in.ended = ended
		if ended {
			r.exited[in.spec.ID] = true
		}
	}
	if next := in.next(); !next.IsZero() && !next.Equal(in.due) {
		in.due = next
		heap.Push(&r.due, dueAt{at: next, id: in.spec.ID})
	}
}

// run wakes at the next change of any instance, so that Exits reports an
// end in time even when nobody asks for the instance's status.
func (r *Runtime) run() {
	defer close(r.done)
	timer := r.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		now := r.clock.Now()
		for len(r.due) > 0 && !r.due[0].at.After(now) {
			d := heap.Pop(&r.due).(dueAt)
			if in := r.instances[d.id]; in != nil && in.due.Equal(d.at) {
				in.due = time.Time{}
				r.advance(in, now)
			}
		}
		wait := time.Hour
		if len(r.due) > 0 {
			wait = r.due[0].at.Sub(now)
		}
		r.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C():
		case <-r.wake:
		case <-r.stop:
			return
		}
	}
}

// poke makes run look at the schedule again.
func (r *Runtime) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// dueAt is when instance id changes next.
type dueAt struct {
	at time.Time
	id string
}

// dueHeap orders the instances by their next change; an entry whose time is
// no longer its instance's is stale and skipped.
type dueHeap []dueAt

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueAt)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// modelSubnet is where the instances' addresses come from: a million, more
// than one machine's apiserver holds pods.
const modelSubnet = "172.16.0.0/12"

// imageID stands for the digest of an image the model never pulls.
func imageID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}
