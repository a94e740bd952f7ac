package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"

	"github.com/spoteci/spoteci/internal/runtime/logfile"
)

// DefaultNamespace is the containerd namespace of spoteci's containers.
const DefaultNamespace = "spoteci"

// snapshotter unpacks images: overlayfs starts a cached image in tens of
// milliseconds where the native one copies it.
const snapshotter = "overlayfs"

// Config sets up a Containerd runtime.
type Config struct {
	// Dir holds the instances' folders (specs, statuses, logs), their
	// network namespaces and the CNI state.
	Dir string
	// Address is containerd's socket; Namespace the containerd namespace
	// (default "spoteci").
	Address   string
	Namespace string
	// LogMaxSize and LogMaxFiles bound each container's log on disk, as a
	// kubelet's containerLogMaxSize and containerLogMaxFiles; 0 takes their
	// defaults, 10 MiB and 5 files.
	LogMaxSize  int64
	LogMaxFiles int
	// Registries are the mirrors to pull through.
	Registries Registries
	// Forwards make cluster addresses reach loopback services of the host.
	Forwards []Forward
	// PullBackoff is the first wait after a failed pull, doubled after each
	// failure up to 5 minutes; default 10 seconds, as a kubelet.
	PullBackoff time.Duration
	// RestartBackoff is the first wait before a container restarts, doubled
	// after each restart up to 5 minutes; default 10 seconds, as a kubelet.
	RestartBackoff time.Duration
	// Launchers set up that many instances at once; default one a CPU
	// (at least 2). A launch is mostly CPU (containerd, the shim, runc):
	// 16 at once on 2 cores started containers no faster than 2 (8.7
	// against 8.1 to 10.6 a second) and starved the API meanwhile (a
	// listing's p99 13 to 58 ms in the server against 8 to 10).
	Launchers int
	// TeardownDeferral bounds how long an ended instance's sandbox waits
	// for the launches before it is freed; default 10 minutes (teardown.go).
	TeardownDeferral time.Duration
	// PodPidsLimit is every instance's pids limit, as a kubelet's
	// podPidsLimit; 0 sizes it by the instance's vCPUs (limits.go).
	PodPidsLimit int64
	// StorageCheckEvery is how often the running instances' ephemeral
	// storage is measured against their limits; default 10 seconds, a
	// kubelet's eviction monitoring period.
	StorageCheckEvery time.Duration
	Log               *slog.Logger
}

// Containerd runs instances under containerd and runc: each instance a pod
// sandbox (network namespace, cgroup sized to its type), each container a
// containerd container whose output the runtime copies from FIFOs into its
// log (output.go). See doc.go.
type Containerd struct {
	cfg     Config
	log     *slog.Logger
	client  *containerd.Client
	net     *network
	pulls   singleflight.Group
	samples cpuSamples
	phases  phaseTimes // where the launches' time went

	ctx    context.Context // the runtime's background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan string // ids to launch

	launches  *launchCount  // queued or under way
	teardowns chan struct{} // a slot per sandbox being freed; see teardown.go

	mu        sync.Mutex
	instances map[string]*instance
	byCID     map[string]*container
	exits     map[string]bool // fully terminated, not returned by Exits yet
	changes   Changes         // Status changed, not returned by Changed yet

	pidMax int64 // the host's, read once
	// uppers and storageRounds belong to watchStorage: the writable layers
	// of running containers, and the measuring rounds done (for tests).
	uppers        map[string]upperDir
	storageRounds atomic.Int64
}

var _ Runtime = (*Containerd)(nil)

// New connects to containerd and takes over the instances of cfg.Dir: those
// that run are watched, those not started yet are started.
func New(ctx context.Context, cfg Config) (*Containerd, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.PullBackoff <= 0 {
		cfg.PullBackoff = 10 * time.Second
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = RestartBackoff
	}
	if cfg.TeardownDeferral <= 0 {
		cfg.TeardownDeferral = teardownDeferral
	}
	if cfg.Launchers <= 0 {
		cfg.Launchers = max(2, goruntime.NumCPU())
	}
	if cfg.StorageCheckEvery <= 0 {
		cfg.StorageCheckEvery = storageCheckEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	// containerd's client logs every registry it tries through logrus; the
	// outcome reaches the instance's events, which is where users look.
	clog.L.Logger.SetLevel(logrus.WarnLevel)
	if err := os.MkdirAll(filepath.Join(dir, instancesDir), 0o700); err != nil {
		return nil, fmt.Errorf("runtime folder: %w", err)
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", cfg.Address, err)
	}
	netw, err := newNetwork(dir, cfg.Forwards)
	if err != nil {
		client.Close()
		return nil, err
	}
	bg, cancel := context.WithCancel(namespaces.WithNamespace(context.WithoutCancel(ctx), cfg.Namespace))
	r := &Containerd{
		cfg: cfg, log: cfg.Log, client: client, net: netw, ctx: bg, cancel: cancel,
		queue:     make(chan string, 1<<16),
		launches:  newLaunchCount(),
		teardowns: make(chan struct{}, cfg.Launchers),
		instances: map[string]*instance{},
		byCID:     map[string]*container{},
		exits:     map[string]bool{},
		pidMax:    hostPidMax(),
		uppers:    map[string]upperDir{},
	}
	if err := limitAllPids(r.pidMax); err != nil {
		r.log.Warn("the instances together are not held under the host's pid_max", "err", err)
	}
	if err := r.recover(bg); err != nil {
		cancel()
		client.Close()
		return nil, err
	}
	for range cfg.Launchers {
		r.wg.Go(r.launcher)
	}
	r.wg.Go(r.watchExits)
	r.wg.Go(r.watchStorage)
	return r, nil
}

// Close stops the runtime's own work; containers keep running, their
// output waiting in their FIFOs for the next runtime.
func (r *Containerd) Close() error {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	cs := make([]*container, 0, len(r.byCID))
	for _, c := range r.byCID {
		cs = append(cs, c)
	}
	r.mu.Unlock()
	stopOutputs(cs)
	r.net.closeAll()
	return r.client.Close()
}

// adoptNetworks holds again the network namespace of each instance that
// has one (see network.go): pinned by an earlier runtime, or in a running
// container's first process.
func (r *Containerd) adoptNetworks(ctx context.Context) {
	pids := map[string]int{}
	if resp, err := r.client.TaskService().List(ctx, &tasksListRequest); err != nil {
		r.log.Warn("listing containerd tasks", "err", err)
	} else {
		for _, t := range resp.Tasks {
			if t.Status == tasktypes.Status_RUNNING {
				pids[t.ID] = int(t.Pid)
			}
		}
	}
	for id, in := range r.instances {
		if took, err := r.net.takeOverPin(id); took || err != nil {
			if err != nil {
				r.log.Warn("taking over the network namespace of an instance", "instance", id, "err", err)
			}
			continue
		}
		for _, c := range in.containers {
			pid, ok := pids[c.cid]
			if !ok || in.state(c) != StateRunning {
				continue
			}
			err := r.net.adoptNetNS(id, pid, containerCgroup(id, c.name))
			if err == nil {
				break
			}
			r.log.Warn("holding the network namespace of a running container", "container", c.cid, "err", err)
		}
	}
}

// recover loads the instances of the folder and reconciles them with
// containerd.
func (r *Containerd) recover(ctx context.Context) error {
	ids, err := readDirNames(filepath.Join(r.cfg.Dir, instancesDir))
	if err != nil {
		return err
	}
	for _, id := range ids {
		in, err := loadInstance(r.instanceDir(id))
		if err != nil {
			r.log.Error("skipping an unreadable instance folder", "id", id, "err", err)
			continue
		}
		if in.spec.PidsLimit <= 0 {
			// Made by a runtime that set no pids limit: it gets one now.
			in.spec.PidsLimit = r.podPids(in.spec.CPU)
			if !in.allTerminated() {
				if err := setPidsMax(id, in.spec.PidsLimit); err != nil {
					r.log.Warn("limiting the pids of an adopted instance", "id", id, "err", err)
				}
			}
		}
		in.notify = r.changes.Note
		r.instances[id] = in
		for _, c := range in.containers {
			r.byCID[c.cid] = c
			if in.state(c) == StateRunning {
				// Before the resync: the output of one that ended
				// meanwhile is copied before its end is recorded.
				r.attachOutput(c)
			}
		}
	}
	r.resync(ctx)
	r.adoptNetworks(ctx)
	// The addresses back: those of the instances that run or wait first,
	// then those of ended ones whose sandbox may not be freed yet, if no
	// other took them since.
	for _, ended := range []bool{false, true} {
		for id, in := range r.instances {
			if in.allTerminated() == ended {
				r.net.ipam.restore(id, in.lastIP())
			}
		}
	}
	for id, in := range r.instances {
		switch {
		case in.allTerminated():
			r.exits[id] = true
			r.tearDownLater(in)
		case in.stop != nil:
			r.stopRunning(in)
		case in.wasEvicted():
			// Evicted, but a crash came before its stop was written:
			// the eviction's stop, now.
			in.requestStop(time.Now().Add(evictionGrace))
			r.stopRunning(in)
		default:
			r.enqueue(ctx, id)
		}
	}
	return nil
}

func (r *Containerd) instanceDir(id string) string {
	return filepath.Join(r.cfg.Dir, instancesDir, id)
}

// Start registers the instance and queues its launch.
func (r *Containerd) Start(ctx context.Context, spec Instance) error {
	if err := spec.Check(); err != nil {
		return err
	}
	if spec.PidsLimit <= 0 {
		spec.PidsLimit = r.podPids(spec.CPU)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.instances[spec.ID]; ok {
		return nil
	}
	in := newInstance(r.instanceDir(spec.ID), spec)
	in.notify = r.changes.Note
	r.instances[spec.ID] = in
	r.changes.Note(spec.ID)
	for _, c := range in.containers {
		r.byCID[c.cid] = c
	}
	return r.enqueue(ctx, spec.ID)
}

func (r *Containerd) get(id string) (*instance, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	return in, ok
}

// Status returns what is known of instance id.
func (r *Containerd) Status(id string) (Status, error) {
	in, ok := r.get(id)
	if !ok {
		return Status{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return in.status(), nil
}

// Log reads a container's log; with Follow until the container ends.
func (r *Containerd) Log(id, name string, opts LogOptions) (io.ReadCloser, error) {
	in, ok := r.get(id)
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	c := in.container(name)
	if c == nil {
		return nil, fmt.Errorf("container %s/%s: %w", id, name, ErrNotFound)
	}
	restarts := in.containerStatus(c).RestartCount
	ended := func() bool {
		if _, ok := r.get(id); !ok {
			return true
		}
		st := in.containerStatus(c)
		return st.State == StateTerminated || st.RestartCount != restarts // this run is over
	}
	if opts.Previous {
		if restarts == 0 {
			return nil, fmt.Errorf("previous terminated container %q in instance %s not found: %w", name, id, ErrNotFound)
		}
		opts.Follow = false
		return logfile.Open(c.previousLogPath(), opts, ended)
	}
	return logfile.Open(c.logPath(), opts, ended)
}

// Exits returns the instances whose containers all ended since the last call.
func (r *Containerd) Exits() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.exits))
	for id := range r.exits {
		ids = append(ids, id)
	}
	clear(r.exits)
	slices.Sort(ids)
	return ids, nil
}

// exited records that a container ended and, if it was the last of its
// instance, that the instance did, and frees its sandbox later.
func (r *Containerd) exited(in *instance) {
	if !in.allTerminated() {
		return
	}
	r.mu.Lock()
	r.exits[in.spec.ID] = true
	r.mu.Unlock()
	r.tearDownLater(in)
}

// release frees what an instance whose containers all ended holds: its
// containerd containers and their snapshots, its network namespace and IP
// lease, its cgroup. Its folder (status, events, logs) stays until Remove.
// Idempotent.
func (r *Containerd) release(in *instance) {
	in.launchMu.Lock() // a launch in progress may still be creating a container
	defer in.launchMu.Unlock()
	if cur, ok := r.get(in.spec.ID); !ok || cur != in {
		return // removed meanwhile: nothing is left to free, and its folder is gone
	}
	if err := r.freeSandbox(r.ctx, in); err != nil && r.ctx.Err() == nil {
		r.log.Warn("freeing the sandbox of an ended instance", "instance", in.spec.ID, "err", err)
	}
}

// freeSandbox deletes an instance's containerd containers and snapshots, its
// network namespace and IP lease, its cgroup and its tmpfs volumes.
func (r *Containerd) freeSandbox(ctx context.Context, in *instance) error {
	var errs []error
	for _, c := range in.containers {
		errs = append(errs, r.deleteContainer(ctx, c.cid))
	}
	errs = append(errs, r.net.tearDown(ctx, in.spec.ID), deleteCgroup(in.spec.ID), tearDownVolumes(in))
	return errors.Join(errs...)
}

// watchExits follows containerd's task exits, and every resyncEvery compares
// every running container with its task, which catches what the event stream
// missed (spoteci or containerd down, a broken stream).
func (r *Containerd) watchExits() {
	// A resync asks every shim for its task's state (containerd's task
	// list does): with 400 idle instances, a resync every 2 s cost
	// containerd and the shims 4% of a core, every 10 s under 1%. The
	// stream misses exits only when it breaks, and a new stream resyncs at
	// once, so the timer is only a backstop.
	const resyncEvery = 10 * time.Second
	for r.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(r.ctx)
		events, errs := r.client.Subscribe(ctx, `topic=="/tasks/exit"`)
		r.resync(r.ctx)
		tick := time.NewTicker(resyncEvery)
	stream:
		for {
			select {
			case <-r.ctx.Done():
				break stream
			case err := <-errs:
				if err != nil && r.ctx.Err() == nil {
					r.log.Warn("containerd event stream broke; resubscribing", "err", err)
					time.Sleep(time.Second)
				}
				break stream
			case env := <-events:
				if env != nil && env.Namespace == r.cfg.Namespace {
					r.onExitEvent(env)
				}
			case <-tick.C:
				r.resync(r.ctx)
			}
		}
		tick.Stop()
		cancel()
	}
}

// resync compares the containers believed running with containerd's tasks.
func (r *Containerd) resync(ctx context.Context) {
	r.mu.Lock()
	var running []*container
	for _, c := range r.byCID {
		if c.in.state(c) == StateRunning {
			running = append(running, c)
		}
	}
	r.mu.Unlock()
	if len(running) == 0 {
		return
	}
	resp, err := r.client.TaskService().List(ctx, &tasksListRequest)
	if err != nil {
		r.log.Warn("listing containerd tasks", "err", err)
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
			r.taskExited(ctx, c, int(t.ExitStatus), t.ExitedAt.AsTime())
		case !ok:
			// Ask once more by id: the container may have been created
			// after the list was read.
			if _, err := r.task(ctx, c.cid); errdefs.IsNotFound(err) {
				r.lost(c, "its task is gone from containerd")
			}
		}
	}
}

// task loads the task of a containerd container.
func (r *Containerd) task(ctx context.Context, cid string) (containerd.Task, error) {
	cont, err := r.client.LoadContainer(ctx, cid)
	if err != nil {
		return nil, err
	}
	return cont.Task(ctx, nil)
}

// taskExited records the end of a container's process; its task (and so
// its shim) is deleted with the sandbox, or at once if other containers of
// the instance run on. Recorded before the delete: a crash in between
// records the same exit again from the stopped task.
func (r *Containerd) taskExited(ctx context.Context, c *container, code int, at time.Time) {
	in := c.in
	if in.state(c) != StateRunning {
		return
	}
	r.drainOutput(c) // the log whole before the end is recorded
	reason, msg := ReasonCompleted, ""
	switch {
	case code != 0 && oomKilled(in.spec.ID, c.name):
		reason, msg = ReasonOOMKilled, "The container was killed for using more memory than its limit"
	case in.wasEvicted():
		reason = ReasonEvicted // stopped by the eviction: kubectl get pod says Evicted
	case code != 0:
		reason = ReasonError
	}
	t := Termination{ExitCode: code, Reason: reason, Message: msg, StartedAt: in.containerStatus(c).StartedAt, FinishedAt: at}
	switch {
	case in.stopping():
	case in.restartAsked(c):
		r.restartAfter(ctx, c, t, 0)
		return
	case in.spec.RestartPolicy.Restarts(code):
		r.restart(ctx, c, t)
		return
	}
	in.setTerminated(c, code, reason, msg, at)
	if !in.allTerminated() {
		// The others run on: end this one's shim now, off the event
		// stream (a delete takes the shim and runc tens of milliseconds).
		r.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if t, err := r.task(ctx, c.cid); err == nil {
				if _, err := t.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
					r.log.Warn("deleting an ended task", "container", c.cid, "err", err)
				}
			}
		})
	}
	r.exited(in) // the last one's teardown deletes every task
}

// restart ends a run of a container whose policy starts it again: it waits
// (CrashLoopBackOff) and then starts in place from a fresh copy of its image.
func (r *Containerd) restart(ctx context.Context, c *container, t Termination) {
	in := c.in
	wait := RestartWait(r.cfg.RestartBackoff, in.containerStatus(c), t)
	in.event(Event{Type: "Warning", Reason: "BackOff", Container: c.name,
		Message: fmt.Sprintf("Back-off restarting failed container %s in pod %s", c.name, in.spec.Hostname)})
	r.restartAfter(ctx, c, t, wait)
}

// restartAfter ends a run of c (its containerd container deleted, its log
// kept as the previous one) and starts it again after wait: 0 when Restart
// asked for it.
func (r *Containerd) restartAfter(ctx context.Context, c *container, t Termination, wait time.Duration) {
	if err := r.deleteContainer(ctx, c.cid); err != nil {
		r.log.Warn("deleting an ended container to restart it", "container", c.cid, "err", err)
	}
	c.in.setRestarting(c, t, wait)
	r.retryLater(c.in.spec.ID, wait)
}

// Restart restarts every container of instance id in place
// (RestartContainerGroup).
func (r *Containerd) Restart(ctx context.Context, id string, grace time.Duration) error {
	in, ok := r.get(id)
	if !ok {
		return fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	if in.stopping() {
		return fmt.Errorf("instance %s is being stopped", id)
	}
	ctx = namespaces.WithNamespace(ctx, r.cfg.Namespace)
	for _, c := range in.containers {
		st := in.containerStatus(c)
		switch st.State {
		case StateRunning:
			if !in.askRestart(c) {
				continue
			}
			in.event(Event{Type: "Normal", Reason: "Killing", Container: c.name, Message: "Stopping container " + c.name + " to restart it"})
			r.signal(c, syscall.SIGTERM)
			r.wg.Go(func() { r.killAt(time.Now().Add(max(grace, 0)), []*container{c}, in.restartAsked) })
		case StateTerminated:
			r.restartAfter(ctx, c, Termination{ExitCode: st.ExitCode, Reason: st.Reason, Message: st.Message, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}, 0)
		}
	}
	return nil
}

// lost records a container whose task vanished.
func (r *Containerd) lost(c *container, why string) {
	in := c.in
	if in.state(c) != StateRunning {
		return
	}
	in.setTerminated(c, 137, ReasonLost, "The container could not be located: "+why, time.Now())
	r.exited(in)
}

// Stop sends SIGTERM, and SIGKILL after grace, to the containers of id; a
// container not started yet never starts.
func (r *Containerd) Stop(ctx context.Context, id string, grace time.Duration) error {
	in, ok := r.get(id)
	if !ok {
		return nil
	}
	if grace < 0 {
		grace = 0
	}
	if !in.requestStop(time.Now().Add(grace)) {
		return nil // stopping already
	}
	r.stopRunning(in)
	return nil
}

// stopRunning signals the running containers of a stopping instance and
// records the others as never started. At the deadline what runs is killed.
func (r *Containerd) stopRunning(in *instance) {
	deadline := in.stopDeadline()
	// Containers not started yet never will be; a launch in progress may be
	// starting one right now, and records the others itself when it ends.
	if in.launchMu.TryLock() {
		in.neverStarted()
		in.launchMu.Unlock()
	}
	for _, c := range in.containers {
		if in.state(c) != StateRunning {
			continue
		}
		in.event(Event{Type: "Normal", Reason: "Killing", Message: "Stopping container " + c.name, Container: c.name})
		sig := syscall.SIGTERM
		if !time.Now().Before(deadline) {
			sig = syscall.SIGKILL
		}
		r.signal(c, sig)
	}
	r.exited(in)
	r.wg.Go(func() {
		r.killAt(deadline, in.containers, func(c *container) bool { return in.state(c) == StateRunning })
	})
}

// killAt sends SIGKILL at deadline to each of cs that needs it still, and
// again, backing off, through containerd, until none does: a signal lost on
// the way (a shim that did not answer) must not leave a pod Terminating or
// a restart undone.
func (r *Containerd) killAt(deadline time.Time, cs []*container, needs func(*container) bool) {
	next, retry := deadline, false
	for backoff := time.Second; ; backoff = min(2*backoff, 10*time.Second) {
		t := time.NewTimer(time.Until(next))
		select {
		case <-r.ctx.Done():
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
				r.signalTask(c, syscall.SIGKILL) // the way that does not rely on the pid
			} else {
				r.signal(c, syscall.SIGKILL)
			}
		}
		if !left {
			return
		}
		next, retry = time.Now().Add(backoff), true
	}
}

// signal sends sig to the first process of c, directly when its pid is
// known (see signal.go), else through containerd.
func (r *Containerd) signal(c *container, sig syscall.Signal) {
	if pid := c.in.pid(c); pid > 0 {
		err := signalProcess(pid, containerCgroup(c.in.spec.ID, c.name), sig)
		if err == nil || errors.Is(err, errNotOurs) {
			return // ended: containerd reports its exit
		}
		r.log.Warn("signalling a container directly; asking containerd", "container", c.cid, "signal", sig, "err", err)
	}
	r.signalTask(c, sig)
}

// signalTask sends sig to the first process of c through containerd.
func (r *Containerd) signalTask(c *container, sig syscall.Signal) {
	t, err := r.task(r.ctx, c.cid)
	if err != nil {
		if errdefs.IsNotFound(err) {
			r.lost(c, "its task is gone from containerd")
			return
		}
		r.log.Warn("signalling a container", "container", c.cid, "err", err)
		return
	}
	if err := t.Kill(r.ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		r.log.Warn("signalling a container", "container", c.cid, "signal", sig, "err", err)
	}
}

// Remove kills and deletes everything of instance id.
func (r *Containerd) Remove(ctx context.Context, id string) error {
	in, ok := r.get(id)
	if !ok {
		return nil
	}
	ctx = namespaces.WithNamespace(ctx, r.cfg.Namespace)
	in.requestStop(time.Now())
	in.cancelWork()
	in.launchMu.Lock() // after a launch in progress, and never beside release
	defer in.launchMu.Unlock()
	err := r.freeSandbox(ctx, in)
	stopOutputs(in.containers)
	for _, c := range in.containers {
		in.setTerminated(c, 137, ReasonLost, "The instance was removed", time.Now()) // once: ended ones keep their end
	}
	if err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	r.mu.Lock()
	delete(r.instances, id)
	for _, c := range in.containers {
		delete(r.byCID, c.cid)
	}
	delete(r.exits, id)
	r.mu.Unlock()
	r.samples.mu.Lock()
	for path := range r.samples.last {
		if strings.HasPrefix(path, instanceCgroupPath(id)) {
			delete(r.samples.last, path)
		}
	}
	r.samples.mu.Unlock()
	if err := os.RemoveAll(in.dir); err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	return nil
}

// deleteContainer kills a container's task and deletes it with its snapshot.
// It finishes even when ctx is cancelled (spoteci stopping): a task left
// undeleted keeps its shim alive.
func (r *Containerd) deleteContainer(ctx context.Context, cid string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cont, err := r.client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Under load a shim's connection can close in the middle of a delete
	// ("ttrpc: closed"): ask again, from loading the task, a few times.
	for attempt := 0; ; attempt++ {
		err = deleteTask(ctx, r.client, cont)
		if err == nil || attempt == 4 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("deleting task of %s: %w", cid, err)
	}
	if err := cont.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting container %s: %w", cid, err)
	}
	return nil
}

// deleteTask kills a container's task and deletes it; no error if it has none.
func deleteTask(ctx context.Context, client *containerd.Client, cont containerd.Container) error {
	t, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// None, or one half made whose shim would outlive the container.
		return deleteHalfMade(ctx, client, cont.ID())
	}
	if err != nil {
		return err
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// deleteHalfMade deletes the task of container id that containerd cannot
// load because its shim holds no container: containerd died after starting
// the shim and before the shim made the container. Only the task service's
// delete ends such a shim (the shim's "not found" is taken as deleted); a
// container with no task at all answers NotFound, which is no error.
func deleteHalfMade(ctx context.Context, client *containerd.Client, id string) error {
	_, err := client.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
	if err = errgrpc.ToNative(err); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Destroy removes every instance and gives the network back (its address
// range and forwarding rules): what `spoteci down` does.
func (r *Containerd) Destroy(ctx context.Context) error {
	r.mu.Lock()
	ids := make([]string, 0, len(r.instances))
	for id := range r.instances {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := r.Remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	// Whatever containerd still holds in the namespace (a container whose
	// instance is gone, from a delete that failed under load) keeps a shim
	// alive: delete it too.
	if err := r.sweep(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := r.net.release(); err != nil {
		errs = append(errs, err)
	}
	deleteCgroup("")
	return errors.Join(errs...)
}

// sweep deletes every containerd container left in the runtime's namespace.
func (r *Containerd) sweep(ctx context.Context) error {
	ctx = namespaces.WithNamespace(ctx, r.cfg.Namespace)
	left, err := r.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("listing containerd containers: %w", err)
	}
	var errs []error
	orphans := map[string]bool{}
	for _, cont := range left {
		r.log.Warn("deleting a containerd container no instance holds", "container", cont.ID())
		if labels, err := cont.Labels(ctx); err == nil && labels[labelInstance] != "" {
			orphans[labels[labelInstance]] = true
		}
		if err := r.deleteContainer(ctx, cont.ID()); err != nil {
			errs = append(errs, err)
		}
	}
	// Their sandboxes too: network namespace and address, cgroup.
	for id := range orphans {
		errs = append(errs, r.net.tearDown(ctx, id), deleteCgroup(id))
	}
	return errors.Join(errs...)
}

// Running is the number of instances with a container not ended yet.
func (r *Containerd) Running() int {
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
