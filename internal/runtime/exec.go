package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

// TerminalSize is a resize of an exec's terminal.
type TerminalSize struct{ Width, Height uint16 }

// ErrNotRunning is returned by Exec for a container that does not run.
var ErrNotRunning = errors.New("container is not running")

// ExecIO are the streams of an exec; nil ones are not attached.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.WriteCloser
	TTY            bool
	Resize         <-chan TerminalSize
}

// Exec runs cmd in a running container, as the container's own process does
// (user, environment, working directory, namespaces, limits), and returns
// its exit code once it ended and its output was copied.
func (r *Containerd) Exec(ctx context.Context, id, name string, cmd []string, sio ExecIO) (int, error) {
	in, ok := r.table.get(id)
	if !ok {
		return 0, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	c := in.container(name)
	if c == nil {
		return 0, fmt.Errorf("container %s/%s: %w", id, name, ErrNotFound)
	}
	if len(cmd) == 0 {
		return 0, errors.New("exec: no command")
	}
	if c.state() != StateRunning {
		return 0, fmt.Errorf("container %s of %s: %w", name, id, ErrNotRunning)
	}
	cont, err := r.client.LoadContainer(ctx, c.cid)
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %w", id, name, err)
	}
	task, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("container %s of %s: %w", name, id, ErrNotRunning)
	}
	if err != nil {
		return 0, err
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return 0, err
	}
	pspec := spec.Process
	pspec.Args, pspec.Terminal = cmd, sio.TTY
	if sio.TTY && !slices.ContainsFunc(pspec.Env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		pspec.Env = append(pspec.Env, "TERM=xterm")
	}

	// The process's stdin ends when the client's does: containerd needs
	// to be told (CloseIO), once the process exists.
	ready := make(chan struct{})
	var running containerd.Process // set before ready is closed; nil if it never started
	var once sync.Once
	started := func(p containerd.Process) { once.Do(func() { running = p; close(ready) }) }
	defer started(nil)
	var stdin io.Reader
	if sio.Stdin != nil {
		stdin = &closingReader{r: sio.Stdin, close: func() {
			if <-ready; running != nil {
				running.CloseIO(ctx, containerd.WithStdinCloser)
			}
		}}
	}
	stdout, stderr := nopWriteCloser(sio.Stdout), nopWriteCloser(sio.Stderr)
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil && !sio.TTY {
		stderr = io.Discard // the shim wants a stderr unless there is a terminal
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if sio.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	proc, err := task.Exec(ctx, "exec-"+randomID(), pspec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %w", id, name, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exited, err := proc.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %s", id, name, startErrorMessage(err))
	}
	started(proc)
	if sio.Resize != nil {
		go func() {
			for size := range sio.Resize {
				proc.Resize(ctx, uint32(size.Width), uint32(size.Height))
			}
		}()
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		proc.IO().Wait() // all output copied
		return int(code), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// closingReader calls close once, when r reaches its end.
type closingReader struct {
	r     io.Reader
	close func()
	once  sync.Once
}

func (c *closingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.once.Do(c.close)
	}
	return n, err
}

// nopWriteCloser keeps containerd from closing the caller's stream (nil
// stays nil: not attached).
func nopWriteCloser(w io.WriteCloser) io.Writer {
	if w == nil {
		return nil
	}
	return struct{ io.Writer }{w}
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
