package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// runcRuntime is the shim of every container: runc, since crun fails on
// cgroup v1 hosts.
const runcRuntime = "io.containerd.runc.v2"

// Labels on spoteci's containerd containers.
const (
	labelInstance  = "io.spoteci.instance"
	labelContainer = "io.spoteci.container"
)

// launcher brings the instances queued by Start up: the images of their
// containers, their sandbox, then each container and its task. Each of
// cfg.Launchers goroutines runs one launch at a time.
type launcher struct {
	base
	table     *table
	netns     *netnsHolder // the sandboxes' network namespaces
	images    *images
	sandboxes *sandboxes
	outputs   *outputs
	stopper   *stopper // signals a container that started while its instance stops

	queue    chan string  // ids to launch
	launches *launchCount // queued or under way
	phases   phaseTimes   // where the launches' time went
}

// run sets up the instances queued by Start, one at a time.
func (l *launcher) run() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case id := <-l.queue:
			if in, ok := l.table.get(id); ok {
				l.launch(in)
			}
			l.launches.add(-1)
		}
	}
}

// launch brings an instance as far as it can go now: folder, the images of
// its waiting containers, sandbox, then each container in order. It is idempotent and resumes where an earlier
// launch (before a crash, or before a pull back-off) stopped. A failed pull
// is retried after a back-off by queueing the instance again, so a bad image
// never holds a launcher.
func (l *launcher) launch(in *instance) {
	in.launchMu.Lock()
	defer in.launchMu.Unlock()
	defer func() {
		// Stopped meanwhile: what did not start never will.
		if in.stopping() {
			in.neverStarted()
			l.sandboxes.ended(in)
		}
	}()
	ctx, cancel := in.workContext(l.ctx)
	defer cancel()
	if in.stopping() || in.allTerminated() {
		return
	}
	if err := in.writeSpec(); err != nil {
		l.failAll(in, "writing the instance's folder: "+err.Error())
		return
	}
	in.flushEvents()
	clock := newLaunchClock()
	defer clock.record(&l.phases, l.log, in.spec.ID)
	// The images first, in order, up to one that cannot be pulled now: a
	// pod whose image never comes holds no IP or cgroup meanwhile.
	ready := map[*container]containerd.Image{}
	var retry time.Duration
	for i, c := range in.containers {
		if c.state() != StateWaiting {
			continue
		}
		if wait := c.waitFor(); wait > 0 {
			retry = wait // a restart's back-off
			break
		}
		img, wait, err := l.images.image(ctx, in, c, in.spec.Containers[i])
		if ctx.Err() != nil {
			return
		}
		if err != nil || wait > 0 {
			retry = wait // 0 for an image that waits for the instance to be recreated
			break
		}
		ready[c] = img
	}
	clock.lap(phaseImage)
	if len(ready) > 0 {
		if err := l.sandboxes.setUp(ctx, in, clock); err != nil {
			if ctx.Err() == nil {
				l.log.Error("setting up the sandbox", "instance", in.spec.ID, "err", err)
				l.failAll(in, err.Error())
			}
			return
		}
	}
	for i, c := range in.containers {
		img, ok := ready[c]
		if !ok {
			continue
		}
		if err := l.startContainer(ctx, in, c, in.spec.Containers[i], img, clock); err != nil {
			if ctx.Err() != nil {
				return
			}
			if containerdAway(err) {
				// Not the container's fault: it waits for containerd
				// (restarted by its supervisor) and is launched again.
				l.log.Warn("containerd away while starting a container; trying again", "instance", in.spec.ID, "container", c.name, "err", err)
				retry = max(retry, containerdRetry)
				continue
			}
			l.log.Warn("container failed to start", "instance", in.spec.ID, "container", c.name, "err", err)
		}
	}
	if retry > 0 {
		l.retryLater(in.spec.ID, retry)
	}
}

// containerdRetry is the wait before a launch that containerd's absence
// cut short is tried again.
const containerdRetry = time.Second

// containerdAway reports whether err says containerd, or the shim of a
// task, could not be reached (killed, restarting): a fault of the machine,
// not of the container, so the launch is tried again rather than failed.
func containerdAway(err error) bool {
	return errdefs.IsUnavailable(err) || status.Code(err) == codes.Unavailable ||
		errors.Is(err, ttrpc.ErrClosed) || strings.Contains(err.Error(), "ttrpc: closed") ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "transport is closing")
}

// enqueue queues the launch of instance id, counted until a launcher has
// run it (teardowns wait for none to be left).
func (l *launcher) enqueue(ctx context.Context, id string) error {
	l.launches.add(1)
	select {
	case l.queue <- id:
		return nil
	case <-ctx.Done():
		l.launches.add(-1)
		return ctx.Err()
	}
}

// retryLater queues the launch of instance id again after wait.
func (l *launcher) retryLater(id string, wait time.Duration) {
	time.AfterFunc(wait, func() { l.enqueue(l.ctx, id) })
}

// failAll ends every container not started with StartError.
func (l *launcher) failAll(in *instance, msg string) {
	in.endWaiting(128, ReasonStartError, msg)
	l.sandboxes.ended(in)
}

// startFailed ends a container that could not be created or started.
func (l *launcher) startFailed(in *instance, c *container, msg string) {
	in.event(Event{Type: "Warning", Reason: "Failed", Message: "Error: " + msg, Container: c.name})
	c.setTerminated(128, ReasonStartError, msg, time.Now())
	l.sandboxes.ended(in)
}

// startContainer creates a container from its image and starts it; it
// returns the error that ended the container.
func (l *launcher) startContainer(ctx context.Context, in *instance, c *container, spec Container, img containerd.Image, clock *launchClock) error {
	clock.skip()
	cont, err := l.client.LoadContainer(ctx, c.cid)
	if err == nil {
		err = l.dropIfStale(ctx, in, cont)
	}
	if errdefs.IsNotFound(err) {
		cont, err = l.createContainer(ctx, in, c, spec, img)
	}
	var ce *configError
	if errors.As(err, &ce) {
		// As a kubelet: the container waits, and says why.
		in.event(Event{Type: "Warning", Reason: "Failed", Message: "Error: " + ce.msg, Container: c.name})
		c.setWaiting(ReasonCreateConfigError, ce.msg)
		return err
	}
	if err != nil {
		if ctx.Err() == nil && !containerdAway(err) {
			l.startFailed(in, c, err.Error())
		}
		return err
	}
	clock.lap(phaseContainer)
	task, err := cont.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err): // the folder exists: launch wrote spec.json
		task, err = l.newTask(ctx, cont, c)
	case err == nil: // made by an earlier launch: its output waits in the FIFOs
		l.outputs.attach(c)
	}
	clock.lap(phaseTask)
	if err == nil {
		var st containerd.Status
		if st, err = task.Status(ctx); err == nil && st.Status == containerd.Created {
			err = task.Start(ctx)
		}
	}
	clock.lap(phaseStart)
	if err != nil {
		if ctx.Err() != nil || containerdAway(err) {
			return err // the launch goes on once containerd is back
		}
		l.startFailed(in, c, startErrorMessage(err))
		if task != nil {
			task.Delete(l.ctx, containerd.WithProcessKill)
		}
		return err
	}
	in.event(Event{Type: "Normal", Reason: "Started", Message: "Started container " + c.name, Container: c.name})
	if !c.setRunning(img.Target().Digest.String(), int(task.Pid()), time.Now()) {
		l.stopper.signal(c, stopSignal(in))
	}
	return nil
}

// dropIfStale deletes cont, a container that an earlier launch made and
// never started, if its spec names the instance's network namespace by
// another path than the one the runtime holds it by now (the file of an
// earlier runtime, see network.go); it returns errdefs.ErrNotFound then, so
// that the container is made again.
func (l *launcher) dropIfStale(ctx context.Context, in *instance, cont containerd.Container) error {
	if _, err := cont.Task(ctx, nil); !errdefs.IsNotFound(err) {
		return nil // started, or being: it is in its namespace already
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return err
	}
	want, _ := l.netns.nsPath(in.spec.ID)
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace && ns.Path == want {
				return nil
			}
		}
	}
	l.log.Info("making again a container made by an earlier runtime", "container", cont.ID())
	if err := deleteContainer(ctx, l.client, cont.ID()); err != nil {
		return err
	}
	return errdefs.ErrNotFound
}

// newTask makes the task of c, or takes up the one an earlier launch made,
// and copies its output into its log (output.go).
func (l *launcher) newTask(ctx context.Context, cont containerd.Container, c *container) (containerd.Task, error) {
	// The FIFOs' reading ends are open before the task is made: the shim
	// opens the writing ends as it makes it, and waits for a reader.
	out, err := l.outputs.fresh(c)
	if err != nil {
		return nil, err
	}
	task, err := l.makeTask(ctx, cont, c)
	if err != nil {
		// A task made all the same (containerd's answer lost) is taken up
		// by the next launch, which opens the FIFOs again.
		out.discard()
		return nil, err
	}
	l.outputs.run(c, out)
	return task, nil
}

// makeTask makes the task of c, or takes up the one an earlier launch made.
func (l *launcher) makeTask(ctx context.Context, cont containerd.Container, c *container) (containerd.Task, error) {
	create := func() (containerd.Task, error) {
		if rootInContainer(ctx, cont) {
			return l.newTaskNoRootfs(ctx, cont, c)
		}
		return cont.NewTask(ctx, c.fifoIO())
	}
	task, err := create()
	if l.removeStaleBundle(ctx, cont.ID(), err) {
		task, err = create()
	}
	if !errdefs.IsAlreadyExists(err) {
		return task, err
	}
	// Made by a launch that containerd's restart cut short (its answer was
	// lost): take that task up, started or not.
	task, err = cont.Task(ctx, nil)
	if !errdefs.IsNotFound(err) {
		return task, err
	}
	// Half made: containerd died after starting the task's shim and before
	// the shim made the container, so the shim holds none ("container not
	// created"). Delete it and make the task again.
	l.log.Warn("deleting a task left half made by containerd's death", "container", cont.ID(), "err", err)
	if err := deleteHalfMade(ctx, l.client, cont.ID()); err != nil {
		return nil, fmt.Errorf("deleting a task left half made: %w", err)
	}
	return create()
}

// removeStaleBundle removes the bundle of task id that a containerd
// killed while making the task left in its state folder, and reports
// whether err was containerd's refusal to make the task over it ("failed
// to start shim: mkdir <bundle>: file exists"; gRPC keeps no error type
// for it). containerd 1.6 does not load such a bundle after its restart
// (the shim never answered) and its clean-up of the dead shim leaves the
// folder. A live shim's task would have been listed: the create would
// have said AlreadyExists instead. runc's own state of the container may
// be left too (its init made, waiting to be started): runc deletes it, as
// it deletes a container whose start was aborted, or the next runc create
// says the container already exists.
func (l *launcher) removeStaleBundle(ctx context.Context, id string, err error) bool {
	if err == nil || l.cfg.ContainerdState == "" {
		return false
	}
	bundle := filepath.Join(l.cfg.ContainerdState, "io.containerd.runtime.v2.task", l.cfg.Namespace, id)
	if !strings.Contains(err.Error(), "mkdir "+bundle+": file exists") {
		return false
	}
	if err := mount.UnmountAll(filepath.Join(bundle, "rootfs"), 0); err != nil {
		l.log.Warn("unmounting the root of a task bundle left behind", "container", id, "err", err)
		return false
	}
	if err := os.RemoveAll(bundle); err != nil {
		l.log.Warn("removing a task bundle left behind", "container", id, "err", err)
		return false
	}
	// The shim's runc root: containerd's default for the namespace.
	root := filepath.Join(runcRoot, l.cfg.Namespace)
	if out, err := exec.CommandContext(ctx, "runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
		l.log.Warn("deleting runc's state of a task left behind", "container", id, "err", err, "output", strings.TrimSpace(string(out)))
		return false
	}
	l.log.Warn("removed a task bundle that containerd left behind when it died while making the task", "container", id)
	return true
}

// runcRoot is where the runc v2 shim keeps runc's state, per namespace,
// unless a runtime option names another root (spoteci's do not).
const runcRoot = "/run/containerd/runc"

// startErrorMessage shortens runc's start errors to their cause.
func startErrorMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "exec: "); i >= 0 {
		return "failed to create containerd task: " + msg[i:]
	}
	return msg
}

// createContainer creates the containerd container of c from img.
func (l *launcher) createContainer(ctx context.Context, in *instance, c *container, spec Container, img containerd.Image) (containerd.Container, error) {
	cfg, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", spec.Image, err)
	}
	if err := verifyRunAsNonRoot(spec.Security, cfg.Config.User, in.podRef(), c.name); err != nil {
		return nil, err
	}
	argv := processArgs(cfg.Config.Entrypoint, cfg.Config.Cmd, spec.Command, spec.Args)
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command specified: image %s has no entrypoint or cmd and the container gives no command", spec.Image)
	}
	cpu, mem := in.spec.CPU, in.spec.Memory
	if spec.CPU > 0 && (cpu == 0 || spec.CPU < cpu) {
		cpu = spec.CPU
	}
	if spec.Memory > 0 && (mem == 0 || spec.Memory < mem) {
		mem = spec.Memory
	}
	mounts, err := volumeMounts(in, spec)
	if err != nil {
		return nil, err
	}
	ip := in.status().IP
	netns, ok := l.netns.nsPath(in.spec.ID)
	if !ok {
		// Let go by a teardown meanwhile: runc would make an empty one.
		return nil, fmt.Errorf("the network namespace of %s is gone", in.spec.ID)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(argv...),
		oci.WithEnv(append([]string{"HOSTNAME=" + in.spec.Hostname}, withIPEnv(spec.Env, spec.IPEnv, ip)...)),
		oci.WithHostname(in.spec.Hostname),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}),
		oci.WithCgroup(containerCgroup(in.spec.ID, c.name)),
		withResources(cpu, mem),
		oci.WithMounts([]specs.Mount{
			bindMount(filepath.Join(in.dir, "hosts"), "/etc/hosts"),
			bindMount(filepath.Join(in.dir, "hostname"), "/etc/hostname"),
			bindMount(filepath.Join(in.dir, "resolv.conf"), "/etc/resolv.conf"),
			// The container's own cgroups, read-only, as a kubelet gives
			// them: what it is limited to, and metrics tools.
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		}),
		oci.WithMounts(mounts),
		withSecurity(spec.Security, in.spec.Security, cfg.Config.User), // last: seccomp follows the capabilities
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	// The root, mounted by runc (rootfs.go): last, so that it goes first,
	// under every other mount.
	root := &containerRoot{}
	opts = append(opts, root.spec())
	newContainer := func() (containerd.Container, error) {
		return l.client.NewContainer(ctx, c.cid,
			containerd.WithImage(img),
			containerd.WithSnapshotter(snapshotter),
			containerd.WithNewSnapshot(c.cid, img),
			containerd.WithRuntime(runcRuntime, nil),
			containerd.WithContainerLabels(map[string]string{labelInstance: in.spec.ID, labelContainer: c.name}),
			root.decide(), // after the snapshot and the labels
			containerd.WithNewSpec(opts...),
		)
	}
	cont, err := newContainer()
	if errdefs.IsAlreadyExists(err) {
		// Made by a launch that containerd's restart cut short: the
		// container, or only its snapshot (containerd died between the
		// two). A lone snapshot is removed and the container made again.
		cont, err = l.client.LoadContainer(ctx, c.cid)
		if errdefs.IsNotFound(err) {
			l.log.Warn("removing the snapshot of a container whose making containerd's death cut short", "container", c.cid)
			if err := l.client.SnapshotService(snapshotter).Remove(ctx, c.cid); err != nil && !errdefs.IsNotFound(err) {
				return nil, fmt.Errorf("removing the snapshot left by an interrupted creation: %w", err)
			}
			cont, err = newContainer()
		}
	}
	if err != nil {
		return nil, err
	}
	in.event(Event{Type: "Normal", Reason: "Created", Message: "Created container: " + c.name, Container: c.name})
	return cont, nil
}

// processArgs applies Kubernetes' rules: command replaces the entrypoint
// (and drops the image's cmd), args replace the cmd.
func processArgs(entrypoint, cmd, command, args []string) []string {
	switch {
	case len(command) > 0:
		return append(append([]string{}, command...), args...)
	case len(args) > 0:
		return append(append([]string{}, entrypoint...), args...)
	default:
		return append(append([]string{}, entrypoint...), cmd...)
	}
}

func bindMount(src, dst string) specs.Mount {
	return specs.Mount{Source: src, Destination: dst, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}
}

// withResources limits a container to cpu vCPUs and mem bytes (0: none).
func withResources(cpu float64, mem int64) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.CPU, s.Linux.Resources.Memory = cgroupLimits(cpu, mem)
		return nil
	}
}

// stopSignal is the signal for a container that started while its
// instance was being stopped: SIGTERM within the grace, SIGKILL after.
func stopSignal(in *instance) syscall.Signal {
	if time.Now().Before(in.stopDeadline()) {
		return syscall.SIGTERM
	}
	return syscall.SIGKILL
}
