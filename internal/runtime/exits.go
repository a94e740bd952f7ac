package runtime

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// exitWatcher records the ends of the containers' processes: from
// containerd's /tasks/exit events, and from a resync with containerd's
// tasks, which catches what the stream missed. A container whose restart
// policy says so is restarted in place after its back-off.
type exitWatcher struct {
	base
	table     *table
	outputs   *outputs   // a container's log is whole before its end is recorded
	launcher  *launcher  // starts a restarted container again
	sandboxes *sandboxes // freed once their instance ended
}

// run follows containerd's task exits, and every resyncEvery compares
// every running container with its task, which catches what the event stream
// missed (spoteci or containerd down, a broken stream).
func (e *exitWatcher) run() {
	// A resync asks every shim for its task's state (containerd's task
	// list does): with 400 idle instances, a resync every 2 s cost
	// containerd and the shims 4% of a core, every 10 s under 1%. The
	// stream misses exits only when it breaks, and a new stream resyncs at
	// once, so the timer is only a backstop.
	const resyncEvery = 10 * time.Second
	for e.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(e.ctx)
		events, errs := e.client.Subscribe(ctx, `topic=="/tasks/exit"`)
		e.resync(e.ctx)
		tick := time.NewTicker(resyncEvery)
	stream:
		for {
			select {
			case <-e.ctx.Done():
				break stream
			case err := <-errs:
				if err != nil && e.ctx.Err() == nil {
					e.log.Warn("containerd event stream broke; resubscribing", "err", err)
					time.Sleep(time.Second)
				}
				break stream
			case env := <-events:
				if env != nil && env.Namespace == e.cfg.Namespace {
					e.onEvent(env)
				}
			case <-tick.C:
				e.resync(e.ctx)
			}
		}
		tick.Stop()
		cancel()
	}
}

// onEvent handles containerd's /tasks/exit: the main process of one of
// our containers ended (execs have their own ids and are skipped).
func (e *exitWatcher) onEvent(env *events.Envelope) {
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return
	}
	ev, ok := v.(*apievents.TaskExit)
	if !ok || ev.ID != ev.ContainerID {
		return
	}
	if c := e.table.container(ev.ContainerID); c != nil {
		e.taskExited(e.ctx, c, int(ev.ExitStatus), ev.ExitedAt.AsTime())
	}
}

// resync compares the containers believed running with containerd's tasks.
func (e *exitWatcher) resync(ctx context.Context) {
	running := e.table.running()
	if len(running) == 0 {
		return
	}
	resp, err := e.client.TaskService().List(ctx, &tasksListRequest)
	if err != nil {
		e.log.Warn("listing containerd tasks", "err", err)
		return
	}
	tasks := map[string]*tasktypes.Process{}
	for _, t := range resp.Tasks {
		tasks[t.ID] = t
	}
	for _, c := range running {
		t, ok := tasks[c.cid]
		switch {
		case ok && t.Status == tasktypes.Status_STOPPED:
			e.taskExited(ctx, c, int(t.ExitStatus), t.ExitedAt.AsTime())
		case !ok:
			// Ask once more by id: the container may have been created
			// after the list was read.
			if _, err := loadTask(ctx, e.client, c.cid); errdefs.IsNotFound(err) {
				e.lost(c, "its task is gone from containerd")
			}
		}
	}
}

// taskExited records the end of a container's process; its task (and so
// its shim) is deleted with the sandbox, or at once if other containers of
// the instance run on. Recorded before the delete: a crash in between
// records the same exit again from the stopped task.
func (e *exitWatcher) taskExited(ctx context.Context, c *container, code int, at time.Time) {
	in := c.in
	if c.state() != StateRunning {
		return
	}
	e.outputs.drain(c) // the log whole before the end is recorded
	reason, msg := ReasonCompleted, ""
	switch {
	case code != 0 && oomKilled(in.spec.ID, c.name):
		reason, msg = ReasonOOMKilled, "The container was killed for using more memory than its limit"
	case in.wasEvicted():
		reason = ReasonEvicted // stopped by the eviction: kubectl get pod says Evicted
	case code != 0:
		reason = ReasonError
	}
	t := Termination{ExitCode: code, Reason: reason, Message: msg, StartedAt: c.status().StartedAt, FinishedAt: at}
	switch {
	case in.stopping():
	case c.restartAsked():
		e.restartAfter(ctx, c, t, 0)
		return
	case in.spec.RestartPolicy.Restarts(code):
		e.restart(ctx, c, t)
		return
	}
	c.setTerminated(code, reason, msg, at)
	if !in.allTerminated() {
		// The others run on: end this one's shim now, off the event
		// stream (a delete takes the shim and runc tens of milliseconds).
		e.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if t, err := loadTask(ctx, e.client, c.cid); err == nil {
				if _, err := t.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
					e.log.Warn("deleting an ended task", "container", c.cid, "err", err)
				}
			}
		})
	}
	e.sandboxes.ended(in) // the last one's teardown deletes every task
}

// restart ends a run of a container whose policy starts it again: it waits
// (CrashLoopBackOff) and then starts in place from a fresh copy of its image.
func (e *exitWatcher) restart(ctx context.Context, c *container, t Termination) {
	in := c.in
	wait := RestartWait(e.cfg.RestartBackoff, c.status(), t)
	in.event(Event{Type: "Warning", Reason: "BackOff", Container: c.name,
		Message: fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.name, in.spec.Hostname)})
	e.restartAfter(ctx, c, t, wait)
}

// restartAfter ends a run of c (its containerd container deleted, its log
// kept as the previous one) and starts it again after wait: 0 when Restart
// asked for it.
func (e *exitWatcher) restartAfter(ctx context.Context, c *container, t Termination, wait time.Duration) {
	if err := deleteContainer(ctx, e.client, c.cid); err != nil {
		e.log.Warn("deleting an ended container to restart it", "container", c.cid, "err", err)
	}
	c.setRestarting(t, wait)
	e.launcher.retryLater(c.in.spec.ID, wait)
}

// lost records a container whose task vanished.
func (e *exitWatcher) lost(c *container, why string) {
	in := c.in
	if c.state() != StateRunning {
		return
	}
	c.setTerminated(137, ReasonLost, "The container could not be located: "+why, time.Now())
	e.sandboxes.ended(in)
}
