package runtime

import (
	"maps"
	"path/filepath"
	"slices"
	"sync"
)

// table is the runtime's instances, by id and by containerd container id,
// with what changed since its callers last asked: the instances that ended
// (Exits) and those whose Status changed (Changed).
type table struct {
	dir string // the instances' folders

	mu        sync.Mutex
	instances map[string]*instance
	byCID     map[string]*container
	exits     Changes // fully terminated, not returned by Exits yet
	changes   Changes // Status changed, not returned by Changed yet
}

func newTable(dir string) *table {
	return &table{dir: dir, instances: map[string]*instance{}, byCID: map[string]*container{}}
}

// instanceDir is the folder of instance id.
func (t *table) instanceDir(id string) string { return filepath.Join(t.dir, id) }

// add registers in and its containers, and tells it where to note its
// changes; false, and nothing done, if its id is taken.
func (t *table) add(in *instance) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.instances[in.spec.ID]; ok {
		return false
	}
	in.notify = t.changes.Note
	t.instances[in.spec.ID] = in
	for _, c := range in.containers {
		t.byCID[c.cid] = c
	}
	return true
}

// remove forgets in, its containers and its exit.
func (t *table) remove(in *instance) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.instances, in.spec.ID)
	for _, c := range in.containers {
		delete(t.byCID, c.cid)
	}
	t.exits.forget(in.spec.ID)
}

func (t *table) get(id string) (*instance, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	in, ok := t.instances[id]
	return in, ok
}

// container returns the container of containerd id cid, nil if none.
func (t *table) container(cid string) *container {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byCID[cid]
}

// all returns every instance, in no order.
func (t *table) all() []*instance {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Values(t.instances))
}

// containers returns every container of every instance, in no order.
func (t *table) containers() []*container {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Collect(maps.Values(t.byCID))
}

// running returns the containers believed running.
func (t *table) running() []*container {
	t.mu.Lock()
	defer t.mu.Unlock()
	var running []*container
	for _, c := range t.byCID {
		if c.state() == StateRunning {
			running = append(running, c)
		}
	}
	return running
}

// exited records that every container of instance id ended.
func (t *table) exited(id string) { t.exits.Note(id) }
