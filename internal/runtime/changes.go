package runtime

import (
	"slices"
	"sync"
)

// Notifier is a Runtime that says which instances' Status changed, so that
// its caller learns what changed without reading every instance's Status
// (the ECI service answering DescribeContainerGroupStatus with SinceSecond
// for 10,000 instances).
type Notifier interface {
	// Changed returns, in order, the ids whose Status (IP, containers,
	// events, eviction) changed since the last call. An id may come when
	// nothing a caller sees changed: handle it idempotently.
	Changed() []string
}

var _ Notifier = (*Containerd)(nil)

// changes collects the ids whose Status changed. Its lock is a leaf: it is
// taken under an instance's mu.
type changes struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (c *changes) note(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]bool{}
	}
	c.ids[id] = true
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.ids))
	for id := range c.ids {
		ids = append(ids, id)
	}
	clear(c.ids)
	slices.Sort(ids)
	return ids
}

// Changed returns the instances whose Status changed since the last call.
func (r *Containerd) Changed() []string { return r.changes.take() }

// noteChange tells the runtime that in's Status changed. Call with in.mu
// held.
func (in *instance) noteChange() {
	if in.notify != nil {
		in.notify(in.spec.ID)
	}
}
