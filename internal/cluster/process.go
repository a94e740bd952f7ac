package cluster

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

	"github.com/spoteci/spoteci/internal/forker"
)

// component is one control-plane process.
type component struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	err     error         // exit status; read only after done is closed
}

// startComponent runs bin with args, its output appended to logDir/<name>.log.
// It does not use exec.CommandContext on purpose: the context of Start bounds
// the start, not the life of the cluster.
func startComponent(name, bin string, args []string, dir, logDir string) (*component, error) {
	logPath := filepath.Join(logDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	fmt.Fprintf(logf, "\n=== %s: %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = componentEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	// Forked from the forker's thread, which never exits: Pdeathsig fires
	// when the forking thread ends, and other code retires threads.
	if err := forker.Start(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &component{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// componentEnv is our environment minus ETCD_* variables, which etcd reads as
// flags and which could silently point it at another data folder or port.
func componentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *component) pid() int { return c.cmd.Process.Pid }

func (c *component) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitError describes an exit nobody asked for, pointing at the log.
func (c *component) exitError() error {
	return fmt.Errorf("%s exited: %v (log: %s)%s", c.name, c.err, c.logPath, tail(c.logPath))
}

// stop sends SIGTERM to the component's process group, waits up to grace (or
// until ctx ends) for it to exit, then SIGKILLs the group. It reports whether it
// had to kill.
func (c *component) stop(ctx context.Context, grace time.Duration) (killed bool, err error) {
	if c.exited() {
		return false, nil
	}
	if err := signalGroup(c.pid(), syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("stop %s: %w", c.name, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.done:
		return false, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	if err := signalGroup(c.pid(), syscall.SIGKILL); err != nil {
		return true, fmt.Errorf("kill %s: %w", c.name, err)
	}
	<-c.done
	return true, nil
}

// signalGroup signals the process group led by pid; ESRCH means it is already gone.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// tail returns the last lines of a log, to put the reason of a failed start in
// the error itself.
func tail(path string) string {
	const max = 2048
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	if len(data) > max {
		data = data[len(data)-max:]
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return "\n" + strings.TrimRight(string(data), "\n")
}
