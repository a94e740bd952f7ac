// Package daemon starts and stops the containerd that spoteci runs for
// itself.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/spoteci/spoteci/internal/pidfile"
)

// Daemon is a containerd that spoteci runs for itself: its own configuration,
// root, state and socket under one folder, so that it never touches a
// containerd of the host. It runs in a session of its own, so that it (and
// the shims it starts, which keep the containers) outlives a kill -9 of
// spoteci; the next Start on the same folder adopts it.
type Daemon struct {
	// Address is the path of its gRPC socket.
	Address string
	dir     string
	pid     int
	log     *slog.Logger
}

// State is containerd's state folder (its state setting), where its tasks'
// bundles are.
func (d *Daemon) State() string { return filepath.Join(d.dir, "state") }

// containerdBinary is the daemon started by Start (Debian's package,
// installed by hack/deps.sh).
const containerdBinary = "containerd"

// Start starts containerd with its state under dir, or adopts the one
// already running there, and returns once it answers on its socket.
func Start(ctx context.Context, dir string, log *slog.Logger) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("containerd folder: %w", err)
	}
	d := &Daemon{Address: socketPath(dir), dir: dir, log: log}
	if pid, ok := d.running(); ok && answers(d.Address) {
		d.pid = pid
		log.Info("adopting containerd", "pid", pid, "address", d.Address)
		return d, nil
	}
	bin, err := exec.LookPath(containerdBinary)
	if err != nil {
		return nil, fmt.Errorf("containerd is not installed (run hack/deps.sh, or give --containerd-address): %w", err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(daemonConfig(dir, d.Address)), 0o600); err != nil {
		return nil, fmt.Errorf("writing containerd config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(d.Address), 0o700); err != nil {
		return nil, fmt.Errorf("containerd socket folder: %w", err)
	}
	os.Remove(d.Address)
	logf, err := os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting containerd: %w", err)
	}
	d.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(d.pid)), 0o600); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for !answers(d.Address) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("containerd exited at start (%v); see %s", err, logf.Name())
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("containerd did not answer on %s within 30s; see %s", d.Address, logf.Name())
		}
	}
	log.Info("containerd started", "pid", d.pid, "address", d.Address)
	return d, nil
}

// superviseEvery is how often Supervise looks at containerd.
const superviseEvery = 500 * time.Millisecond

// Supervise keeps containerd running until ctx ends, as an init system
// would: when it has died (a crash, a kill -9) it is started again on the
// same folder. The containers live on in their shims meanwhile, and the
// runtime's clients reconnect.
func (d *Daemon) Supervise(ctx context.Context) {
	t := time.NewTicker(superviseEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, ok := d.running(); ok {
			continue
		}
		d.log.Warn("containerd is not running; starting it again", "pid", d.pid)
		again, err := Start(ctx, d.dir, d.log)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("restarting containerd", "err", err)
			}
			continue
		}
		d.pid = again.pid
	}
}

// daemonConfig is containerd's configuration: everything under dir, only what
// spoteci uses (no CRI: the virtual node is the kubelet here).
func daemonConfig(dir, address string) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), address, address+".ttrpc", filepath.Join(dir, "opt"))
}

// socketPath is dir/containerd.sock, or a short path under /run when that
// would not fit a socket address (108 bytes, with ".ttrpc" added).
func socketPath(dir string) string {
	p := filepath.Join(dir, "containerd.sock")
	if len(p)+len(".ttrpc") < 100 {
		return p
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join("/run/spoteci", hex.EncodeToString(sum[:6]), "containerd.sock")
}

func answers(address string) bool {
	c, err := net.DialTimeout("unix", address, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (d *Daemon) pidFile() string { return filepath.Join(d.dir, "containerd.pid") }

// PID is the process id of the daemon.
func (d *Daemon) PID() int { return d.pid }

// Dir is the daemon's folder.
func (d *Daemon) Dir() string { return d.dir }

// running returns the pid of the containerd of this folder if it runs.
func (d *Daemon) running() (int, bool) {
	return pidfile.Live(d.pidFile(), filepath.Join(d.dir, "config.toml"))
}

// Stop stops containerd: SIGTERM, then SIGKILL after 10 seconds. The shims,
// and with them the containers, keep running.
func (d *Daemon) Stop(ctx context.Context) error {
	if d.pid == 0 {
		return nil
	}
	p, err := os.FindProcess(d.pid)
	if err != nil {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
		return fmt.Errorf("stopping containerd: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := d.running(); !ok {
			break
		}
		if time.Now().After(deadline) {
			p.Signal(syscall.SIGKILL)
			break
		}
		select {
		case <-ctx.Done():
			p.Signal(syscall.SIGKILL)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	os.Remove(d.pidFile())
	d.log.Info("containerd stopped", "pid", d.pid)
	return nil
}

// StopIdleShims kills the shims still bound to this containerd once every
// container is deleted (spoteci down): a shim whose task was deleted under
// load can miss its shutdown and would outlive containerd. It returns the
// pids it killed.
func (d *Daemon) StopIdleShims() []int {
	var killed []int
	for _, sh := range Shims() {
		if !slices.Contains(sh.Args, d.Address) {
			continue
		}
		if syscall.Kill(sh.PID, syscall.SIGKILL) == nil {
			d.log.Warn("killed a shim left without a container", "pid", sh.PID, "cmdline", strings.Join(sh.Args, " "))
			killed = append(killed, sh.PID)
		}
	}
	return killed
}

// Shim is a running containerd shim process.
type Shim struct {
	PID  int
	Args []string // its command line: -namespace, -id, -address
}

// Shims lists the containerd shims running on the machine.
func Shims() []Shim {
	procs, err := procfs.AllProcs()
	if err != nil {
		return nil
	}
	var shims []Shim
	for _, p := range procs {
		args, err := p.CmdLine()
		if err != nil || len(args) == 0 { // ended meanwhile, or a kernel thread
			continue
		}
		if strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
			shims = append(shims, Shim{PID: p.PID, Args: args})
		}
	}
	return shims
}
