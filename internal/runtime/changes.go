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

// Changes collects the ids whose Status changed, for a Notifier (and, in
// the runtime, the ids that ended, for Exits). Its lock is a leaf: it is
// taken under an instance's mu.
type Changes struct {
	mu  sync.Mutex
	ids map[string]bool
}

// Note records that id changed.
func (c *Changes) Note(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]bool{}
	}
	c.ids[id] = true
}

// Take returns the ids noted since the last Take, in order.
func (c *Changes) Take() []string {
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

// forget drops id, noted or not.
func (c *Changes) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ids, id)
}

// noteChange tells the runtime that in's Status changed. Call with in.mu
// held.
func (in *instance) noteChange() {
	if in.notify != nil {
		in.notify(in.spec.ID)
	}
}
