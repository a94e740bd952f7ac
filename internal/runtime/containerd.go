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
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	clog "github.com/containerd/log"
	"github.com/sirupsen/logrus"

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
	// ContainerdState is containerd's state folder when spoteci runs the
	// daemon (daemon.Daemon.State); empty for one run by someone else. A
	// containerd killed while making a task can leave the task's bundle
	// there, which containerd 1.6 neither lists after its restart nor
	// removes, and then refuses to make the task again: the runtime
	// removes it.
	ContainerdState string
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
//
// It is the Runtime's facade: it keeps the table of instances and wires the
// parts that each do one job: the launcher (launch.go) with the images it
// pulls (pull.go), the sandboxes (sandbox.go, network.go), the exit watcher
// and resync (exits.go), the stopper (stop.go), the output copies
// (output.go) and the storage watcher (limits.go).
type Containerd struct {
	base
	cancel context.CancelFunc

	table     *table
	net       *network
	launcher  *launcher
	images    *images
	sandboxes *sandboxes
	exits     *exitWatcher
	stopper   *stopper
	outputs   *outputs
	storage   *storageWatcher
	samples   cpuSamples

	pidMax int64 // the host's, read once
}

// base is what every part of the runtime shares: its configuration, its
// containerd client and its background work.
type base struct {
	cfg    Config
	log    *slog.Logger
	client *containerd.Client
	ctx    context.Context // the runtime's background work; ends with Close
	wg     *sync.WaitGroup // the goroutines of that work
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
	r := wire(base{cfg: cfg, log: cfg.Log, client: client, ctx: bg, wg: &sync.WaitGroup{}}, netw)
	r.cancel = cancel
	if err := limitAllPids(r.pidMax); err != nil {
		r.log.Warn("the instances together are not held under the host's pid_max", "err", err)
	}
	if err := r.recover(bg); err != nil {
		cancel()
		client.Close()
		return nil, err
	}
	for range cfg.Launchers {
		r.wg.Go(r.launcher.run)
	}
	r.wg.Go(r.exits.run)
	r.wg.Go(r.storage.run)
	return r, nil
}

// wire makes the runtime's parts and tells each the others it works with.
func wire(b base, netw *network) *Containerd {
	launches := newLaunchCount()
	t := newTable(filepath.Join(b.cfg.Dir, instancesDir))
	r := &Containerd{
		base: b, table: t, net: netw, pidMax: hostPidMax(),
		launcher:  &launcher{base: b, table: t, netns: netw.netns, queue: make(chan string, 1<<16), launches: launches},
		images:    &images{base: b},
		sandboxes: &sandboxes{base: b, table: t, net: netw, launches: launches, teardowns: make(chan struct{}, b.cfg.Launchers)},
		exits:     &exitWatcher{base: b, table: t},
		stopper:   &stopper{base: b},
		outputs:   &outputs{base: b},
		storage:   &storageWatcher{base: b, table: t, uppers: map[string]upperDir{}},
	}
	l := r.launcher
	l.images, l.sandboxes, l.outputs, l.stopper = r.images, r.sandboxes, r.outputs, r.stopper
	e := r.exits
	e.outputs, e.launcher, e.sandboxes = r.outputs, r.launcher, r.sandboxes
	r.stopper.exits, r.stopper.sandboxes = r.exits, r.sandboxes
	r.storage.stopper = r.stopper
	return r
}

// Close stops the runtime's own work; containers keep running, their
// output waiting in their FIFOs for the next runtime.
func (r *Containerd) Close() error {
	r.cancel()
	r.wg.Wait()
	stopOutputs(r.table.containers())
	r.net.netns.closeAll()
	return r.client.Close()
}

// recover loads the instances of the folder and reconciles them with
// containerd.
func (r *Containerd) recover(ctx context.Context) error {
	ids, err := readDirNames(r.table.dir)
	if err != nil {
		return err
	}
	for _, id := range ids {
		in, err := loadInstance(r.table.instanceDir(id))
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
		r.table.add(in)
		for _, c := range in.containers {
			if c.state() == StateRunning {
				// Before the resync: the output of one that ended
				// meanwhile is copied before its end is recorded.
				r.outputs.attach(c)
			}
		}
	}
	r.exits.resync(ctx)
	all := r.table.all()
	r.sandboxes.adoptNetworks(ctx, all)
	// The addresses back: those of the instances that run or wait first,
	// then those of ended ones whose sandbox may not be freed yet, if no
	// other took them since.
	for _, ended := range []bool{false, true} {
		for _, in := range all {
			if in.allTerminated() == ended {
				r.net.ipam.Restore(in.spec.ID, in.lastIP())
			}
		}
	}
	for _, in := range all {
		switch {
		case in.allTerminated():
			r.sandboxes.ended(in)
		case in.stop != nil:
			r.stopper.stopRunning(in)
		case in.wasEvicted():
			// Evicted, but a crash came before its stop was written:
			// the eviction's stop, now.
			in.requestStop(time.Now().Add(evictionGrace))
			r.stopper.stopRunning(in)
		default:
			r.launcher.enqueue(ctx, in.spec.ID)
		}
	}
	return nil
}

// Start registers the instance and queues its launch.
func (r *Containerd) Start(ctx context.Context, spec Instance) error {
	if err := spec.Check(); err != nil {
		return err
	}
	if spec.PidsLimit <= 0 {
		spec.PidsLimit = r.podPids(spec.CPU)
	}
	if !r.table.add(newInstance(r.table.instanceDir(spec.ID), spec)) {
		return nil
	}
	r.table.changes.Note(spec.ID)
	return r.launcher.enqueue(ctx, spec.ID)
}

// Status returns what is known of instance id.
func (r *Containerd) Status(id string) (Status, error) {
	in, ok := r.table.get(id)
	if !ok {
		return Status{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	return in.status(), nil
}

// Log reads a container's log; with Follow until the container ends.
func (r *Containerd) Log(id, name string, opts LogOptions) (io.ReadCloser, error) {
	in, ok := r.table.get(id)
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	c := in.container(name)
	if c == nil {
		return nil, fmt.Errorf("container %s/%s: %w", id, name, ErrNotFound)
	}
	restarts := c.status().RestartCount
	ended := func() bool {
		if _, ok := r.table.get(id); !ok {
			return true
		}
		st := c.status()
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
	return r.table.exits.Take(), nil
}

// Changed returns the instances whose Status changed since the last call.
func (r *Containerd) Changed() []string { return r.table.changes.Take() }

// Restart restarts every container of instance id in place
// (RestartContainerGroup).
func (r *Containerd) Restart(ctx context.Context, id string, grace time.Duration) error {
	in, ok := r.table.get(id)
	if !ok {
		return fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	if in.stopping() {
		return fmt.Errorf("instance %s is being stopped", id)
	}
	r.stopper.restart(namespaces.WithNamespace(ctx, r.cfg.Namespace), in, grace)
	return nil
}

// Stop sends SIGTERM, and SIGKILL after grace, to the containers of id; a
// container not started yet never starts.
func (r *Containerd) Stop(ctx context.Context, id string, grace time.Duration) error {
	if in, ok := r.table.get(id); ok {
		r.stopper.stop(in, grace)
	}
	return nil
}

// Remove kills and deletes everything of instance id.
func (r *Containerd) Remove(ctx context.Context, id string) error {
	in, ok := r.table.get(id)
	if !ok {
		return nil
	}
	ctx = namespaces.WithNamespace(ctx, r.cfg.Namespace)
	in.requestStop(time.Now())
	in.cancelWork()
	in.launchMu.Lock() // after a launch in progress, and never beside release
	defer in.launchMu.Unlock()
	err := r.sandboxes.free(ctx, in)
	stopOutputs(in.containers)
	for _, c := range in.containers {
		c.setTerminated(137, ReasonLost, "The instance was removed", time.Now()) // once: ended ones keep their end
	}
	if err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	r.table.remove(in)
	r.samples.forget(instanceCgroupPath(id))
	if err := os.RemoveAll(in.dir); err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	return nil
}

// Destroy removes every instance and gives the network back (its address
// range and forwarding rules): what `spoteci down` does.
func (r *Containerd) Destroy(ctx context.Context) error {
	var errs []error
	for _, in := range r.table.all() {
		if err := r.Remove(ctx, in.spec.ID); err != nil {
			errs = append(errs, err)
		}
	}
	// Whatever containerd still holds in the namespace (a container whose
	// instance is gone, from a delete that failed under load) keeps a shim
	// alive: delete it too.
	if err := r.sandboxes.sweep(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := r.net.release(); err != nil {
		errs = append(errs, err)
	}
	deleteCgroup("")
	return errors.Join(errs...)
}

// Running is the number of instances with a container not ended yet.
func (r *Containerd) Running() int {
	n := 0
	for _, in := range r.table.all() {
		if !in.allTerminated() {
			n++
		}
	}
	return n
}
