package model

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/logfile"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// maxEvents bounds the events an instance keeps (a container in a crash
// loop makes three a run).
const maxEvents = 200

// behaviour is what every container of an instance does, from its
// annotations.
type behaviour struct {
	runFor   time.Duration // 0: until stopped
	exitCode int
	log      string
}

// behaviourOf reads the model's annotations; an error names the annotation
// and its value.
func behaviourOf(a map[string]string) (behaviour, error) {
	var b behaviour
	if v, ok := a[eciapi.ModelRunFor]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return b, fmt.Errorf("annotation %s: %q is not a positive duration, like 90s or 2h", eciapi.ModelRunFor, v)
		}
		b.runFor = d
	}
	if v, ok := a[eciapi.ModelExitCode]; ok {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			return b, fmt.Errorf("annotation %s: %q is not an exit code from 0 to 255", eciapi.ModelExitCode, v)
		}
		b.exitCode = code
	}
	b.log = a[eciapi.ModelLog]
	return b, nil
}

// instance is one modelled instance: what it was asked, and where that has
// brought its containers.
type instance struct {
	spec       runtime.Instance
	ip         string
	logs       string // folder of the containers' logs
	do         behaviour
	bad        error // a bad annotation: no container starts
	containers []*container
	events     []runtime.Event
	stopped    bool      // Stop was asked: nothing starts again
	ended      bool      // every container ended when last advanced
	due        time.Time // of the instance's entry in Runtime.due
}

// container is one modelled container; next is its next change: the end of
// its run, or of its back-off. Zero: none.
type container struct {
	st   runtime.ContainerStatus
	next time.Time
}

func newInstance(spec runtime.Instance, ip, logs string) *instance {
	in := &instance{spec: spec, ip: ip, logs: logs}
	in.do, in.bad = behaviourOf(spec.Annotations)
	for _, c := range spec.Containers {
		in.containers = append(in.containers, &container{st: runtime.ContainerStatus{Name: c.Name, State: runtime.StateWaiting,
			Reason: runtime.ReasonContainerCreating, Image: c.Image, ContainerID: spec.ID + "-" + c.Name}})
	}
	return in
}

// start starts every container at t, or fails them on a bad annotation as
// a kubelet fails a container whose configuration it cannot make.
func (in *instance) start(t time.Time) {
	for _, c := range in.containers {
		if in.bad != nil {
			c.st.Reason, c.st.Message = runtime.ReasonCreateConfigError, in.bad.Error()
			in.event(t, "Warning", "Failed", "Error: "+in.bad.Error(), c.st.Name)
			continue
		}
		in.event(t, "Normal", "Pulled", fmt.Sprintf("Container image %q already present on machine", c.st.Image), c.st.Name)
		in.run(c, t)
	}
}

// run starts a run of c at t.
func (in *instance) run(c *container, t time.Time) {
	c.st.State, c.st.Reason, c.st.Message, c.st.ExitCode = runtime.StateRunning, "", "", 0
	c.st.StartedAt, c.st.FinishedAt, c.st.ImageID = t, time.Time{}, imageID(c.st.Image)
	in.event(t, "Normal", "Created", "Created container: "+c.st.Name, c.st.Name)
	in.event(t, "Normal", "Started", "Started container "+c.st.Name, c.st.Name)
	in.writeLog(c, t)
	c.next = time.Time{}
	if in.do.runFor > 0 {
		c.next = t.Add(in.do.runFor)
	}
}

// advance makes every change due by now, in order of time, and reports
// whether there was one.
func (in *instance) advance(now time.Time, backoff time.Duration) (changed bool) {
	for ; ; changed = true {
		var c *container
		for _, k := range in.containers {
			if !k.next.IsZero() && !k.next.After(now) && (c == nil || k.next.Before(c.next)) {
				c = k
			}
		}
		if c == nil {
			return changed
		}
		t := c.next
		if c.st.State == runtime.StateRunning {
			in.end(c, t, in.do.exitCode, backoff)
		} else {
			in.run(c, t) // its back-off is over
		}
	}
}

// end ends the run of c at t with code; it starts again after a back-off if
// the restart policy says so and the instance is not stopping.
func (in *instance) end(c *container, t time.Time, code int, backoff time.Duration) {
	run := termination(c, t, code)
	c.next = time.Time{}
	if in.stopped || !in.spec.RestartPolicy.Restarts(code) {
		c.st.State, c.st.ExitCode, c.st.Reason, c.st.FinishedAt = runtime.StateTerminated, code, run.Reason, t
		return
	}
	wait := runtime.RestartWait(backoff, c.st, run)
	c.st = runtime.ContainerStatus{Name: c.st.Name, State: runtime.StateWaiting, Reason: runtime.ReasonCrashLoopBackOff,
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", wait.Round(time.Second), c.st.Name, in.spec.Hostname),
		Image:   c.st.Image, ImageID: c.st.ImageID, ContainerID: c.st.ContainerID, RestartCount: c.st.RestartCount + 1, LastTerminated: &run}
	c.next = t.Add(wait)
	in.event(t, "Warning", "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.st.Name, in.spec.Hostname), c.st.Name)
}

func termination(c *container, t time.Time, code int) runtime.Termination {
	reason := runtime.ReasonCompleted
	if code != 0 {
		reason = runtime.ReasonError
	}
	return runtime.Termination{ExitCode: code, Reason: reason, StartedAt: c.st.StartedAt, FinishedAt: t}
}

// stopAll ends every container at t: a running one exits as on SIGTERM, a
// waiting one never starts.
func (in *instance) stopAll(t time.Time) {
	in.stopped = true
	for _, c := range in.containers {
		switch c.st.State {
		case runtime.StateRunning:
			in.event(t, "Normal", "Killing", "Stopping container "+c.st.Name, c.st.Name)
			in.end(c, t, 143, 0)
		case runtime.StateWaiting:
			c.next = time.Time{}
			c.st.State, c.st.ExitCode, c.st.Reason, c.st.Message, c.st.FinishedAt = runtime.StateTerminated, 137,
				runtime.ReasonLost, "The container was stopped before it started", t
		}
	}
}

// restartAll starts every container again at t, in place: the run it ends
// (or ended) stays as its LastTerminated.
func (in *instance) restartAll(t time.Time) {
	in.stopped = false
	for _, c := range in.containers {
		if in.bad != nil {
			continue
		}
		switch c.st.State {
		case runtime.StateRunning:
			in.event(t, "Normal", "Killing", "Stopping container "+c.st.Name+" to restart it", c.st.Name)
			run := termination(c, t, 143)
			c.st.LastTerminated, c.st.RestartCount = &run, c.st.RestartCount+1
		case runtime.StateTerminated:
			run := runtime.Termination{ExitCode: c.st.ExitCode, Reason: c.st.Reason, Message: c.st.Message,
				StartedAt: c.st.StartedAt, FinishedAt: c.st.FinishedAt}
			c.st.LastTerminated, c.st.RestartCount = &run, c.st.RestartCount+1
		}
		in.run(c, t)
	}
}

// next is the time of the instance's next change; zero if none.
func (in *instance) next() time.Time {
	var t time.Time
	for _, c := range in.containers {
		if !c.next.IsZero() && (t.IsZero() || c.next.Before(t)) {
			t = c.next
		}
	}
	return t
}

func (in *instance) allTerminated() bool {
	for _, c := range in.containers {
		if c.st.State != runtime.StateTerminated {
			return false
		}
	}
	return true
}

func (in *instance) container(name string) *container {
	for _, c := range in.containers {
		if c.st.Name == name {
			return c
		}
	}
	return nil
}

func (in *instance) status() runtime.Status {
	st := runtime.Status{IP: in.ip, Events: slices.Clone(in.events)}
	for _, c := range in.containers {
		cs := c.st
		if cs.LastTerminated != nil {
			last := *cs.LastTerminated
			cs.LastTerminated = &last
		}
		st.Containers = append(st.Containers, cs)
	}
	return st
}

func (in *instance) event(t time.Time, typ, reason, msg, container string) {
	if len(in.events) == maxEvents {
		in.events = slices.Delete(in.events, 0, maxEvents/2)
	}
	in.events = append(in.events, runtime.Event{Time: t, Type: typ, Reason: reason, Message: msg, Container: container})
}

// logPath is the log of run n of a container: a file a run, so that writing
// it is idempotent (a replay finds it written) and the previous run's log
// is the file before.
func (in *instance) logPath(name string, run int) string {
	return filepath.Join(in.logs, fmt.Sprintf("%s.%d.log", name, run))
}

// writeLog prints the run's line, once, and drops the log of the run before
// the previous one, as a kubelet keeps one previous log.
func (in *instance) writeLog(c *container, t time.Time) {
	if in.do.log == "" {
		return
	}
	n := c.st.RestartCount
	if n >= 2 {
		os.Remove(in.logPath(c.st.Name, n-2))
	}
	if err := os.MkdirAll(in.logs, 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(in.logPath(c.st.Name, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return // written already (a replay), or the disk refuses: the log is all that suffers
	}
	defer f.Close()
	f.Write(logfile.AppendRecords(nil, t, []byte(in.do.log+"\n")))
}
