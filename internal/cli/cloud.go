package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/spoteci/spoteci/internal/atomicfile"
	"github.com/spoteci/spoteci/internal/images"
	"github.com/spoteci/spoteci/internal/registry"
	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/daemon"
	"github.com/spoteci/spoteci/internal/runtime/logfile"
	"github.com/spoteci/spoteci/internal/runtime/model"
)

// cloudOptions set up what runs the instances: containerd, the local
// registry and the mirrors.
type cloudOptions struct {
	containerdAddress string
	mirrors           []string
	registriesFile    string
	imageCache        string
	registryListen    string
	forwards          []string
	logMaxSize        string
	logMaxFiles       int
	launchers         int
	podMaxPids        int64
	runtime           string
}

func (o *cloudOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.runtime, "runtime", "", "what runs the instances: containerd (real containers) or model (no processes: containers behave as their model.spoteci.io/ annotations say; for tens of thousands of pods); default: the one the state folder used last, else containerd")
	f.StringVar(&o.containerdAddress, "containerd-address", "", "socket of a containerd to use (default: start one under <state-dir>/containerd)")
	f.StringArrayVar(&o.mirrors, "registry-mirror", nil, "registry mirror HOST=URL, tried before HOST; repeatable (the local registry stands in for every remote registry without one)")
	f.StringVar(&o.registriesFile, "registries", "", "registry mirrors file, in the format of k3s's registries.yaml (mirrors: HOST: endpoint: [URL])")
	f.StringVar(&o.imageCache, "image-cache", filepath.Join(defaultBinDir(), "images"), "folder of the built-in images (make images), published to the local registry at start")
	f.StringVar(&o.registryListen, "registry-listen", "127.0.0.1:0", "loopback address of the local registry (port 0: the last one used, else any free one)")
	f.StringVar(&o.logMaxSize, "container-log-max-size", "10Mi", "size a container's log file reaches before it is rotated, as a kubelet's containerLogMaxSize (a quantity: 10Mi, 200M)")
	f.IntVar(&o.logMaxFiles, "container-log-max-files", logfile.DefaultMaxFiles, "log files kept per container, the current one included, as a kubelet's containerLogMaxFiles (at least 2)")
	f.IntVar(&o.launchers, "launchers", 0, "instances set up at once (default: one a CPU, at least 2)")
	f.Int64Var(&o.podMaxPids, "pod-max-pids", 0, "processes an instance may have, as a kubelet's podPidsLimit (default: 1024 a vCPU, at least 1024; never over a quarter of the host's pid_max)")
	f.StringArrayVar(&o.forwards, "forward", nil, "make IP:PORT, seen from instances, reach 127.0.0.1:PORT of this machine (the local apiserver as the kubernetes service, 10.0.0.1:443=127.0.0.1:6443); repeatable")
}

// logMax checks the log flags and returns the log cap in bytes (0: the
// runtime's default, for callers without the flags such as spoteci demo).
func (o *cloudOptions) logMax() (int64, error) {
	if o.logMaxFiles == 1 || o.logMaxFiles < 0 {
		return 0, fmt.Errorf("--container-log-max-files %d: want at least 2", o.logMaxFiles)
	}
	if o.logMaxSize == "" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(o.logMaxSize)
	if err != nil || q.Value() < 1024 {
		return 0, fmt.Errorf("--container-log-max-size %q: want a quantity of at least 1Ki, like 10Mi", o.logMaxSize)
	}
	return q.Value(), nil
}

// parseForwards reads --forward FROM=TO.
func parseForwards(specs []string) ([]runtime.Forward, error) {
	var out []runtime.Forward
	for _, s := range specs {
		from, to, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--forward %s: want IP:PORT=127.0.0.1:PORT", s)
		}
		out = append(out, runtime.Forward{From: from, To: to})
	}
	return out, nil
}

// The runtimes an ECI service can run its instances on.
const (
	runtimeContainerd = "containerd"
	runtimeModel      = "model"
)

// instanceRuntime is what the cloud needs of a runtime beyond the service's
// interface.
type instanceRuntime interface {
	runtime.Runtime
	// Running counts the instances with a container not ended.
	Running() int
	// Destroy deletes every instance (spoteci down).
	Destroy(ctx context.Context) error
}

// runtimeKind is the runtime to use in stateDir: the one asked for, else
// the one used last, else containerd. It is kept in the folder, so that
// down and the next start find the instances where they are.
func runtimeKind(stateDir, asked string) (string, error) {
	path := filepath.Join(stateDir, "runtime-kind")
	if asked == "" {
		last, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		asked = cmp.Or(strings.TrimSpace(string(last)), runtimeContainerd)
	}
	if asked != runtimeContainerd && asked != runtimeModel {
		return "", fmt.Errorf("--runtime %q: want %s or %s", asked, runtimeContainerd, runtimeModel)
	}
	if err := atomicfile.Write(path, []byte(asked+"\n"), 0o600); err != nil {
		return "", err
	}
	return asked, nil
}

// cloud is what runs the instances of the ECI service.
type cloud struct {
	log    *slog.Logger
	daemon *daemon.Daemon // nil when containerd is not ours
	// unsupervise stops the restarting of our containerd and waits.
	unsupervise func()
	registry    *registry.Registry // nil on the model runtime
	runtime     instanceRuntime
}

// startCloud starts the local registry (publishing the built-in images),
// containerd unless one is given, and the runtime. Every remote registry is
// mirrored by the local one (this machine reaches no public registry), after
// the mirrors given. token is the registry's push credential.
func startCloud(ctx context.Context, log *slog.Logger, stateDir, token string, o *cloudOptions) (*cloud, error) {
	logMax, err := o.logMax()
	if err != nil {
		return nil, err
	}
	c := &cloud{log: log}
	fail := func(err error) (*cloud, error) {
		c.stop()
		return nil, err
	}
	kind, err := runtimeKind(stateDir, o.runtime)
	if err != nil {
		return nil, err
	}
	if kind == runtimeModel {
		// No containers: no registry to pull from, no containerd.
		if c.runtime, err = model.New(model.Config{Dir: filepath.Join(stateDir, "model"), Log: log}); err != nil {
			return nil, err
		}
		return c, nil
	}
	listen := o.registryListen
	if prev, err := registry.ReadInfo(stateDir); err == nil && listen == "127.0.0.1:0" {
		listen = prev.Address // the same address across restarts, when free
	}
	if c.registry, err = registry.Start(ctx, filepath.Join(stateDir, "registry"), listen, token, log); err != nil && listen != o.registryListen {
		c.registry, err = registry.Start(ctx, filepath.Join(stateDir, "registry"), o.registryListen, token, log)
	}
	if err != nil {
		return fail(err)
	}
	if err := registry.WriteInfo(stateDir, registry.Info{Address: c.registry.Addr()}); err != nil {
		return fail(err)
	}
	pushed, err := images.Publish(ctx, c.registry.Addr(), c.registry.Authenticator(), o.imageCache)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log.Warn("built-in images missing: pods that use them will fail to pull until they are built", "err", err, "build", "make images")
	case err != nil:
		return fail(fmt.Errorf("publishing the built-in images: %w", err))
	}
	log.Info("local registry ready", "address", c.registry.Addr(), "published", len(pushed))

	regs := runtime.Registries{}
	for _, m := range o.mirrors {
		if err := regs.AddMirror(m); err != nil {
			return fail(err)
		}
	}
	if o.registriesFile != "" {
		if err := regs.LoadFile(o.registriesFile); err != nil {
			return fail(err)
		}
	}
	if err := regs.AddMirror("*=http://" + c.registry.Addr()); err != nil {
		return fail(err)
	}

	address, containerdState := o.containerdAddress, ""
	if address == "" {
		if c.daemon, err = daemon.Start(ctx, filepath.Join(stateDir, "containerd"), log); err != nil {
			return fail(err)
		}
		address, containerdState = c.daemon.Address, c.daemon.State()
		supervised, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); c.daemon.Supervise(supervised) }()
		c.unsupervise = func() { cancel(); <-done }
	}
	forwards, err := parseForwards(o.forwards)
	if err != nil {
		return fail(err)
	}

	rt, err := runtime.New(ctx, runtime.Config{Dir: filepath.Join(stateDir, "runtime"), Address: address, ContainerdState: containerdState,
		LogMaxSize: logMax, LogMaxFiles: o.logMaxFiles, Launchers: o.launchers, PodPidsLimit: o.podMaxPids, Registries: regs, Forwards: forwards, Log: log})
	if err != nil {
		return fail(err)
	}
	c.runtime = rt
	return c, nil
}

// describe is the line of spoteci up that says what runs the instances.
func (c *cloud) describe(stateDir string) string {
	if c.registry == nil {
		return "  runtime:     model (no containers: see model.spoteci.io/ annotations)\n"
	}
	return fmt.Sprintf("  local registry: %s (spoteci image load FILE.tar --state-dir %s)\n", c.registry.Addr(), stateDir)
}

// stop closes the runtime, the registry and our containerd; it returns how
// many instances still run (their containers outlive it).
func (c *cloud) stop() int {
	running := 0
	if c.runtime != nil {
		running = c.runtime.Running()
		c.runtime.Close()
	}
	if c.registry != nil {
		c.registry.Close()
	}
	if c.daemon != nil {
		c.unsupervise()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.daemon.Stop(ctx); err != nil {
			c.log.Error("stopping containerd", "err", err)
		}
	}
	return running
}
