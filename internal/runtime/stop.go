package runtime

import (
	"context"
	"errors"
	"math"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/util/wait"
)

// stopper ends containers: SIGTERM to each container's first process and
// SIGKILL at the deadline, directly through a pidfd (signal.go), then again
// through containerd, backing off, until the container has ended.
type stopper struct {
	base
	exits     *exitWatcher // records a container whose task is gone
	sandboxes *sandboxes   // freed once their instance ended
}

// stop stops instance in: SIGTERM, and SIGKILL after grace (<= 0: at
// once); a container not started yet never starts. A second stop is a
// no-op.
func (s *stopper) stop(in *instance, grace time.Duration) {
	if !in.requestStop(time.Now().Add(max(grace, 0))) {
		return // stopping already
	}
	s.stopRunning(in)
}

// stopRunning signals the running containers of a stopping instance and
// records the others as never started. At the deadline what runs is killed.
func (s *stopper) stopRunning(in *instance) {
	deadline := in.stopDeadline()
	// Containers not started yet never will be; a launch in progress may be
	// starting one right now, and records the others itself when it ends.
	if in.launchMu.TryLock() {
		in.neverStarted()
		in.launchMu.Unlock()
	}
	for _, c := range in.containers {
		if c.state() != StateRunning {
			continue
		}
		in.event(Event{Type: "Normal", Reason: "Killing", Message: "Stopping container " + c.name, Container: c.name})
		sig := syscall.SIGTERM
		if !time.Now().Before(deadline) {
			sig = syscall.SIGKILL
		}
		s.signal(c, sig)
	}
	s.sandboxes.ended(in)
	s.wg.Go(func() {
		s.killAt(deadline, in.containers, func(c *container) bool { return c.state() == StateRunning })
	})
}

// restart restarts every container of in in place: a running one gets
// SIGTERM and SIGKILL after grace and starts again as it ends (the exit
// watcher sees to it); an ended one starts again at once.
func (s *stopper) restart(ctx context.Context, in *instance, grace time.Duration) {
	for _, c := range in.containers {
		st := c.status()
		switch st.State {
		case StateRunning:
			if !c.askRestart() {
				continue
			}
			in.event(Event{Type: "Normal", Reason: "Killing", Container: c.name, Message: "Stopping container " + c.name + " to restart it"})
			s.signal(c, syscall.SIGTERM)
			s.wg.Go(func() { s.killAt(time.Now().Add(max(grace, 0)), []*container{c}, (*container).restartAsked) })
		case StateTerminated:
			s.exits.restartAfter(ctx, c, Termination{ExitCode: st.ExitCode, Reason: st.Reason, Message: st.Message, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}, 0)
		}
	}
}

// killAt sends SIGKILL at deadline to each of cs that needs it still, and
// again, backing off, through containerd, until none does: a signal lost on
// the way (a shim that did not answer) must not leave a pod Terminating or
// a restart undone.
func (s *stopper) killAt(deadline time.Time, cs []*container, needs func(*container) bool) {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 10 * time.Second, Steps: math.MaxInt}
	next, retry := deadline, false
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		left := false
		for _, c := range cs {
			if !needs(c) {
				continue
			}
			left = true
			if retry {
				s.signalTask(c, syscall.SIGKILL) // the way that does not rely on the pid
			} else {
				s.signal(c, syscall.SIGKILL)
			}
		}
		if !left {
			return
		}
		next, retry = time.Now().Add(backoff.Step()), true
	}
}

// signal sends sig to the first process of c, directly when its pid is
// known (see signal.go), else through containerd.
func (s *stopper) signal(c *container, sig syscall.Signal) {
	if pid := c.runningPID(); pid > 0 {
		err := signalProcess(pid, containerCgroup(c.in.spec.ID, c.name), sig)
		if err == nil || errors.Is(err, errNotOurs) {
			return // ended: containerd reports its exit
		}
		s.log.Warn("signalling a container directly; asking containerd", "container", c.cid, "signal", sig, "err", err)
	}
	s.signalTask(c, sig)
}

// signalTask sends sig to the first process of c through containerd.
func (s *stopper) signalTask(c *container, sig syscall.Signal) {
	t, err := loadTask(s.ctx, s.client, c.cid)
	if err != nil {
		if errdefs.IsNotFound(err) {
			s.exits.lost(c, "its task is gone from containerd")
			return
		}
		s.log.Warn("signalling a container", "container", c.cid, "err", err)
		return
	}
	if err := t.Kill(s.ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		s.log.Warn("signalling a container", "container", c.cid, "signal", sig, "err", err)
	}
}
