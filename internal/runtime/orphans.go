package runtime

import (
	"context"
	"syscall"
	"time"

	"github.com/spoteci/spoteci/internal/runtime/daemon"
)

// Under faults (containerd killed in the middle of a delete) a container
// can stay in containerd with no instance holding it, or a shim can stay
// bound to containerd with no container left: either keeps processes of a
// removed instance alive. The runtime looks for both every minute, as
// spoteci down does once.

// orphanAge is how old a container no instance holds must be before it is
// deleted: younger ones may belong to a launch not yet recorded.
const orphanAge = time.Minute

// collectOrphans deletes the containers no instance holds, made at least
// minAge ago, and kills the shims that serve no container.
func (r *Containerd) collectOrphans(ctx context.Context, minAge time.Duration) {
	// Shims first: a shim exists only after its container, so one seen
	// here whose container the later list lacks has none.
	shims := daemon.Shims(r.cfg.Address)
	conts, err := r.client.Containers(ctx)
	if err != nil {
		r.log.Warn("looking for orphans: listing containerd containers", "err", err)
		return
	}
	r.mu.Lock()
	held := make(map[string]bool, len(r.byCID))
	for cid := range r.byCID {
		held[cid] = true
	}
	live := make(map[string]bool, len(r.instances))
	for id := range r.instances {
		live[id] = true
	}
	r.mu.Unlock()
	exists := map[string]bool{}
	for _, cont := range conts {
		exists[cont.ID()] = true
		if held[cont.ID()] {
			continue
		}
		info, err := cont.Info(ctx)
		if err != nil || time.Since(info.CreatedAt) < minAge {
			continue
		}
		r.log.Warn("deleting a containerd container no instance holds", "container", cont.ID(), "created", info.CreatedAt)
		if err := r.deleteContainer(ctx, cont.ID()); err != nil {
			r.log.Warn("deleting an orphaned container", "container", cont.ID(), "err", err)
			continue
		}
		if id := info.Labels[labelInstance]; id != "" && !live[id] {
			if err := r.net.tearDown(ctx, id); err != nil {
				r.log.Warn("freeing an orphaned container's network", "instance", id, "err", err)
			}
			deleteCgroup(id)
		}
	}
	for _, shim := range shims {
		if shim.Namespace != r.cfg.Namespace || shim.ID == "" || exists[shim.ID] || held[shim.ID] {
			continue
		}
		if syscall.Kill(shim.PID, syscall.SIGKILL) == nil {
			r.log.Warn("killed a shim left without a container", "pid", shim.PID, "container", shim.ID)
		}
	}
}

// orphanSweeper collects orphans every minute until the runtime closes.
func (r *Containerd) orphanSweeper() {
	t := time.NewTicker(orphanAge)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.collectOrphans(r.ctx, orphanAge)
		}
	}
}
