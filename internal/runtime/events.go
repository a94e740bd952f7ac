package runtime

import (
	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
)

var tasksListRequest = tasks.ListTasksRequest{}

// onExitEvent handles containerd's /tasks/exit: the main process of one of
// our containers ended (execs have their own ids and are skipped).
func (r *Containerd) onExitEvent(env *events.Envelope) {
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return
	}
	e, ok := v.(*apievents.TaskExit)
	if !ok || e.ID != e.ContainerID {
		return
	}
	r.mu.Lock()
	c := r.byCID[e.ContainerID]
	r.mu.Unlock()
	if c == nil {
		return
	}
	r.taskExited(r.ctx, c, int(e.ExitStatus), e.ExitedAt.AsTime())
}
