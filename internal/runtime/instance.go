package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Names in the runtime's folder; see doc.go.
const (
	instancesDir = "instances"
	specFile     = "spec.json"
	statusFile   = "status.json"
	stopFile     = "stop.json"
	eventsFile   = "events.jsonl"
)

// instance is an instance as the runtime keeps it: its spec, what became of
// it, and its folder, where every change is written before it is acted on.
type instance struct {
	dir        string
	spec       Instance
	containers []*container

	launchMu sync.Mutex // held by a launch and by release: never both at once

	mu      sync.Mutex
	ip      string
	stop    *stopRecord
	events  []Event
	pending bool // spec.json not written yet: the launcher writes it
	// evicted is the eviction's message once the runtime evicted the
	// instance (limits.go); kept in status.json.
	evicted string
	work    context.CancelFunc
	// notify hears of every change of the instance's Status (changes.go).
	notify func(id string)
}

// container is one container of an instance.
type container struct {
	in   *instance
	name string
	cid  string // containerd's id: <instance id>.<index>
	st   ContainerStatus
	// pid is the running task's first process, in memory only: after a
	// restart the runtime signals through containerd.
	pid int
	// notBefore delays a restart (its back-off); in memory only: a
	// restarted runtime restarts at once.
	notBefore time.Time
	// out copies the output of the running task into the log (output.go);
	// in memory only: a restarted runtime opens the FIFOs again.
	out *output
	// pullBackoff is the wait after the last failed pull of its image, 0
	// after a pull that worked; in memory only.
	pullBackoff time.Duration
}

// stopRecord is stop.json: Stop's request.
type stopRecord struct {
	Deadline time.Time // SIGKILL after this
}

// statusRecord is status.json.
type statusRecord struct {
	IP         string            `json:",omitempty"`
	Containers []ContainerStatus `json:",omitempty"`
	Evicted    string            `json:",omitempty"`
}

func newInstance(dir string, spec Instance) *instance {
	in := &instance{dir: dir, spec: spec, pending: true}
	for i, c := range spec.Containers {
		in.containers = append(in.containers, &container{in: in, name: c.Name, cid: spec.ID + "." + strconv.Itoa(i),
			st: ContainerStatus{Name: c.Name, State: StateWaiting, Reason: ReasonContainerCreating, Image: c.Image}})
	}
	return in
}

// loadInstance reads an instance folder written by an earlier runtime.
func loadInstance(dir string) (*instance, error) {
	var spec Instance
	if err := readJSON(filepath.Join(dir, specFile), &spec); err != nil {
		return nil, err
	}
	in := newInstance(dir, spec)
	in.pending = false
	var st statusRecord
	if err := readJSON(filepath.Join(dir, statusFile), &st); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	in.ip, in.evicted = st.IP, st.Evicted
	for _, s := range st.Containers {
		if c := in.container(s.Name); c != nil {
			c.st = s
		}
	}
	var stop stopRecord
	if err := readJSON(filepath.Join(dir, stopFile), &stop); err == nil {
		in.stop = &stop
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, eventsFile)); err == nil {
		lines := bytes.Split(b, []byte("\n"))
		for _, line := range lines[:len(lines)-1] { // the last is empty, or a line cut short by a crash
			var e Event
			if json.Unmarshal(line, &e) == nil {
				in.events = append(in.events, e)
			}
		}
	}
	return in, nil
}

func (in *instance) container(name string) *container {
	for _, c := range in.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *container) status() ContainerStatus {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	return c.st
}

// runningPID is the first process of c's task, 0 if unknown.
func (c *container) runningPID() int {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	if c.st.State != StateRunning {
		return 0
	}
	return c.pid
}

func (c *container) state() State {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	return c.st.State
}

func (in *instance) status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := Status{IP: in.ip, Events: slices.Clone(in.events)}
	if in.evicted != "" {
		st.Reason, st.Message = ReasonEvicted, in.evicted
	}
	for _, c := range in.containers {
		st.Containers = append(st.Containers, c.st)
	}
	return st
}

func (in *instance) allTerminated() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, c := range in.containers {
		if c.st.State != StateTerminated {
			return false
		}
	}
	return true
}

// writeSpec writes spec.json once; until then the instance exists only in
// memory (its caller keeps the request and starts it again after a crash).
func (in *instance) writeSpec() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.pending {
		return nil
	}
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(in.dir, specFile), in.spec); err != nil {
		return err
	}
	in.pending = false
	return nil
}

// save writes status.json. Call with mu held.
func (in *instance) save() {
	in.noteChange()
	if in.pending {
		return
	}
	rec := statusRecord{IP: in.ip, Evicted: in.evicted}
	for _, c := range in.containers {
		rec.Containers = append(rec.Containers, c.st)
	}
	if err := writeJSON(filepath.Join(in.dir, statusFile), rec); err != nil {
		// The folder is gone (Remove) or the disk refuses: the status stays in memory.
		_ = err
	}
}

func (in *instance) setIP(ip string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.ip = ip
	in.save()
}

// lastIP is the IP the instance got, "" before its sandbox.
func (in *instance) lastIP() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.ip
}

// setWaiting records why a container waits.
func (c *container) setWaiting(reason, msg string) {
	in := c.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.st.State != StateWaiting || (c.st.Reason == reason && c.st.Message == msg) {
		return
	}
	c.st.Reason, c.st.Message = reason, msg
	in.save()
}

// setRunning records a started container; it reports false if the instance
// is stopping meanwhile (the caller kills what it started).
func (c *container) setRunning(imageID string, pid int, at time.Time) bool {
	in := c.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.st.State != StateWaiting {
		return false
	}
	c.pid = pid
	c.st.State, c.st.Reason, c.st.Message, c.st.FinishedAt, c.st.ExitCode = StateRunning, "", "", time.Time{}, 0
	c.st.StartedAt, c.st.ImageID, c.st.ContainerID = at, imageID, c.cid
	in.save()
	return in.stop == nil
}

// neverStarted ends the containers still waiting of a stopping instance.
// Call with launchMu held, so that no launch is starting one.
func (in *instance) neverStarted() {
	in.endWaiting(137, ReasonLost, "The container was stopped before it started")
}

// endWaiting ends every container still waiting with code, reason and msg.
func (in *instance) endWaiting(code int, reason, msg string) {
	for _, c := range in.containers {
		if c.state() == StateWaiting {
			c.setTerminated(code, reason, msg, time.Now())
		}
	}
}

// setTerminated records the end of a container (once).
func (c *container) setTerminated(code int, reason, msg string, at time.Time) {
	in := c.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.st.State == StateTerminated {
		return
	}
	c.st.State, c.st.ExitCode, c.st.Reason, c.st.Message, c.st.FinishedAt = StateTerminated, code, reason, msg, at
	in.save()
}

// event records something the runtime did, in memory and in events.jsonl.
func (in *instance) event(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.events = append(in.events, e)
	in.noteChange()
	if in.pending {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(in.dir, eventsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// flushEvents writes the events recorded before spec.json was.
func (in *instance) flushEvents() {
	in.mu.Lock()
	events := in.events
	in.mu.Unlock()
	if len(events) == 0 {
		return
	}
	var buf []byte
	for _, e := range events {
		b, _ := json.Marshal(e)
		buf = append(append(buf, b...), '\n')
	}
	os.WriteFile(filepath.Join(in.dir, eventsFile), buf, 0o600)
}

// requestStop records Stop's deadline; false if the instance was stopping.
func (in *instance) requestStop(deadline time.Time) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop != nil {
		if deadline.Before(in.stop.Deadline) {
			in.stop.Deadline = deadline // a shorter grace wins, as in a kubelet
		}
		return false
	}
	in.stop = &stopRecord{Deadline: deadline}
	if !in.pending {
		writeJSON(filepath.Join(in.dir, stopFile), in.stop)
	}
	if in.work != nil {
		in.work()
	}
	return true
}

func (in *instance) stopping() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stop != nil
}

func (in *instance) stopDeadline() time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop == nil {
		return time.Time{}
	}
	return in.stop.Deadline
}

// workContext is the context of the instance's pulls and starts, cancelled
// by Stop.
func (in *instance) workContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop != nil {
		cancel()
	}
	in.work = cancel
	return ctx, cancel
}

func (in *instance) cancelWork() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.work != nil {
		in.work()
	}
}

func (c *container) logPath() string { return filepath.Join(c.in.dir, c.name+".log") }

// previousLogPath is the log of the run before the current one.
func (c *container) previousLogPath() string { return filepath.Join(c.in.dir, c.name+".previous.log") }

// setRestarting records the end of a run of a container that starts again
// after wait: its termination kept as LastTerminated, the restart counted,
// its log kept as the previous one.
func (c *container) setRestarting(t Termination, wait time.Duration) {
	in := c.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.st.State == StateWaiting {
		return
	}
	os.Rename(c.logPath(), c.previousLogPath())
	// The files the last run rotated out go with it: the previous log is
	// its last file, as a kubelet keeps it.
	if rotated, err := filepath.Glob(c.logPath() + ".[0-9]*"); err == nil {
		for _, f := range rotated {
			os.Remove(f)
		}
	}
	c.st = ContainerStatus{Name: c.name, State: StateWaiting, Reason: ReasonCrashLoopBackOff,
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", wait.Round(time.Second), c.name, in.spec.Hostname),
		Image:   c.st.Image, ImageID: c.st.ImageID, RestartCount: c.st.RestartCount + 1, LastTerminated: &t}
	if wait == 0 {
		c.st.Reason, c.st.Message = ReasonContainerCreating, ""
	}
	c.notBefore = time.Now().Add(wait)
	in.save()
}

// askRestart marks a running container for a restart at its exit; false
// if it does not run.
func (c *container) askRestart() bool {
	in := c.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.st.State != StateRunning {
		return false
	}
	c.st.RestartAsked = true
	in.save()
	return true
}

func (c *container) restartAsked() bool {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	return c.st.RestartAsked && c.st.State == StateRunning
}

// waitFor is how long a container waits before its next start.
func (c *container) waitFor() time.Duration {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	return time.Until(c.notBefore)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// nextPullBackoff returns the wait before the next pull of c's image:
// first, then doubled after each failure, up to maxPullBackoff.
func (c *container) nextPullBackoff(first time.Duration) time.Duration {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	if c.pullBackoff == 0 {
		c.pullBackoff = first
	} else {
		c.pullBackoff = min(2*c.pullBackoff, maxPullBackoff)
	}
	return c.pullBackoff
}

// resetPullBackoff forgets the failed pulls of c's image.
func (c *container) resetPullBackoff() {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	c.pullBackoff = 0
}
