package model

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/logfile"
)

// Log reads the log of a container's current run, or of the run before.
func (r *Runtime) Log(id, name string, opts runtime.LogOptions) (io.ReadCloser, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.instances[id]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	r.advance(in, r.clock.Now())
	c := in.container(name)
	if c == nil {
		return nil, fmt.Errorf("container %s/%s: %w", id, name, runtime.ErrNotFound)
	}
	run := c.st.RestartCount
	if opts.Previous {
		if run == 0 {
			return nil, fmt.Errorf("previous terminated container %q in instance %s not found: %w", name, id, runtime.ErrNotFound)
		}
		opts.Follow = false
		run--
	}
	ended := func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.instances[id] != in {
			return true
		}
		r.advance(in, r.clock.Now())
		return c.st.State == runtime.StateTerminated || c.st.RestartCount != run
	}
	return logfile.Open(in.logPath(name, run), opts, ended)
}

// Exec answers a few commands from the model: echo, true, false, hostname,
// env (and printenv) and sleep. Others exit 127, as a shell says of a
// command it cannot find.
func (r *Runtime) Exec(ctx context.Context, id, name string, cmd []string, sio runtime.ExecIO) (int, error) {
	r.mu.Lock()
	in, ok := r.instances[id]
	if !ok {
		r.mu.Unlock()
		return 0, fmt.Errorf("instance %s: %w", id, runtime.ErrNotFound)
	}
	r.advance(in, r.clock.Now())
	c := in.container(name)
	if c == nil {
		r.mu.Unlock()
		return 0, fmt.Errorf("container %s/%s: %w", id, name, runtime.ErrNotFound)
	}
	running := c.st.State == runtime.StateRunning
	var env []string
	for _, spec := range in.spec.Containers {
		if spec.Name == name {
			env = append(env, spec.Env...)
			for _, k := range spec.IPEnv {
				env = append(env, k+"="+in.ip)
			}
		}
	}
	hostname := in.spec.Hostname
	r.mu.Unlock()
	if !running {
		return 0, fmt.Errorf("container %s of %s: %w", name, id, runtime.ErrNotRunning)
	}
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec: no command")
	}
	out, errOut := writerOrDiscard(sio.Stdout), writerOrDiscard(sio.Stderr)
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(out, strings.Join(cmd[1:], " "))
	case "true":
	case "false":
		return 1, nil
	case "hostname":
		fmt.Fprintln(out, hostname)
	case "env", "printenv":
		for _, e := range env {
			fmt.Fprintln(out, e)
		}
	case "sleep":
		d, err := sleepArg(cmd[1:])
		if err != nil {
			fmt.Fprintln(errOut, "sleep:", err)
			return 1, nil
		}
		select {
		case <-r.clock.After(d):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	default:
		fmt.Fprintf(errOut, "%s: command not found (the model runtime runs no processes; it answers echo, true, false, hostname, env and sleep)\n", cmd[0])
		return 127, nil
	}
	return 0, nil
}

// sleepArg reads sleep's argument: seconds, or a Go duration.
func sleepArg(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("want one duration")
	}
	if d, err := time.ParseDuration(args[0]); err == nil {
		return d, nil
	}
	var s float64
	if _, err := fmt.Sscanf(args[0], "%g", &s); err != nil || s < 0 {
		return 0, fmt.Errorf("invalid time interval %q", args[0])
	}
	return time.Duration(s * float64(time.Second)), nil
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
