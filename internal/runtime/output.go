package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/spoteci/spoteci/internal/runtime/logfile"
)

// A container's output reaches its log as it does under containerd's CRI
// plugin: the task's stdout and stderr are two FIFOs in the instance's
// folder, which the runtime itself reads and writes into the log (package
// logfile's format, rotated and capped), so that no process runs beside a
// container but its shim.
//
// The shim opens each FIFO for writing and, besides, for reading, which it
// never reads: while the runtime is away (spoteci restarting) the shim's
// writes do not fail with EPIPE and the container is not killed by SIGPIPE;
// its output waits in the FIFO and in the shim's own pipe (64 KiB each),
// after which the container's writes block until a runtime reads again. A
// new runtime opens the FIFOs of every running container again, by path,
// and goes on where the last one stopped. A container that ends while no
// runtime reads loses what was left in the FIFO when its shim closed it.

// fifoDir is the folder of an instance that holds its containers' FIFOs.
const fifoDir = "fifo"

// outputDrain bounds the wait, when a container ends, for its output to be
// copied to the end before its end is recorded; the shim waits as long for
// its own copy when the task is deleted.
const outputDrain = 2 * time.Second

// fifoPaths are the FIFOs of c's stdout and stderr, named as containerd's
// cio names them.
func (c *container) fifoPaths() []string {
	dir := filepath.Join(c.in.dir, fifoDir)
	return []string{filepath.Join(dir, c.name+"-stdout"), filepath.Join(dir, c.name+"-stderr")}
}

// fifoIO is the IO of c's task: the paths of its FIFOs, which the runtime
// opens and reads itself (output), not containerd's client.
func (c *container) fifoIO() cio.Creator {
	p := c.fifoPaths()
	return func(string) (cio.IO, error) {
		return cio.Load(cio.NewFIFOSet(cio.Config{Stdout: p[0], Stderr: p[1]}, nil))
	}
}

// outputs copies the containers' output into their logs, rotated and
// capped as the configuration says.
type outputs struct{ base }

// output copies the output of one run of a container into its log.
type output struct {
	log     *logfile.Rotating
	files   []*os.File // the reading ends of stdout and stderr
	done    chan struct{}
	stopped atomic.Bool // by stop: a read cut short is no error
}

// open opens the reading ends of c's FIFOs, made first if make says
// so, and its log. The opens do not wait for a writer: a shim writes as
// soon as it has made the task (it waits for a reader to be open) or it has
// written already (an adopted container).
func (outs *outputs) open(c *container, makeFIFOs bool) (*output, error) {
	paths := c.fifoPaths()
	if makeFIFOs {
		if err := os.MkdirAll(filepath.Dir(paths[0]), 0o700); err != nil {
			return nil, fmt.Errorf("making the output FIFOs: %w", err)
		}
		for _, p := range paths {
			// Kept for the container's life: a task that a launch cut
			// short made writes into these same ones.
			if err := syscall.Mkfifo(p, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, fmt.Errorf("making the output FIFO %s: %w", p, err)
			}
		}
	}
	o := &output{done: make(chan struct{})}
	for _, p := range paths {
		// Non-blocking, so that Go's poller waits for the output rather
		// than a thread; a read returns EOF once no writer is left.
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			o.closeFiles()
			return nil, fmt.Errorf("opening the output FIFO: %w", err)
		}
		o.files = append(o.files, f)
	}
	var err error
	if o.log, err = logfile.OpenRotating(c.logPath(), outs.cfg.LogMaxSize, outs.cfg.LogMaxFiles); err != nil {
		o.closeFiles()
		return nil, err
	}
	return o, nil
}

// start copies both streams into the log until their writers are gone or
// stop is called, and then closes everything. Every byte read is written:
// stop ends the copy between reads, and what was not read waits in the FIFO
// for the next reader.
func (o *output) start(log *slog.Logger, c *container) {
	var wg sync.WaitGroup
	for _, f := range o.files {
		wg.Go(func() {
			if err := copyFIFO(o.log, f); err != nil && !o.stopped.Load() {
				log.Warn("copying a container's output into its log", "container", c.cid, "err", err)
			}
		})
	}
	go func() {
		wg.Wait()
		o.closeFiles()
		o.log.Close()
		close(o.done)
	}()
}

// discard closes an output that was never started.
func (o *output) discard() {
	o.closeFiles()
	o.log.Close()
}

func (o *output) closeFiles() {
	for _, f := range o.files {
		f.Close()
	}
}

// stop ends the copy (the container runs on) and waits for it.
func (o *output) stop() {
	o.stopped.Store(true)
	o.closeFiles()
	<-o.done
}

// copyBufs are the buffers of copyFIFO: a read's, and its records'.
var copyBufs = sync.Pool{New: func() any { return &copyBuf{read: make([]byte, 32<<10)} }}

type copyBuf struct{ read, records []byte }

// copyFIFO copies the FIFO f into w as records (logfile's format) until
// every writer has closed it or f is closed. Each read is one write of
// whole records, so the two streams of a container interleave by records.
// The buffers are taken only while there is output to read: a thousand
// quiet containers hold none (f waits in Go's poller, not in a read).
func copyFIFO(w io.Writer, f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var n int
		var rerr, werr error
		err := raw.Read(func(fd uintptr) bool {
			b := copyBufs.Get().(*copyBuf)
			defer copyBufs.Put(b)
			for {
				n, rerr = syscall.Read(int(fd), b.read)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				return false // wait for output
			}
			if n > 0 {
				b.records = logfile.AppendRecords(b.records[:0], time.Now(), b.read[:n])
				_, werr = w.Write(b.records)
			}
			return true
		})
		switch {
		case err != nil: // f closed
			return err
		case werr != nil:
			return werr
		case rerr != nil:
			return rerr
		case n == 0: // no writer left
			return nil
		}
	}
}

// wait waits up to d for the copy to reach the end of the output.
func (o *output) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-o.done:
		return true
	case <-t.C:
		return false
	}
}

// fresh opens the output of a task about to be made, after the copy of
// an earlier run (if any) has ended: two readers of one FIFO would split
// the output between them.
func (outs *outputs) fresh(c *container) (*output, error) {
	if old := c.setOutput(nil); old != nil {
		old.stop()
	}
	return outs.open(c, true)
}

// attach copies the output of c's task, made earlier (by this runtime
// or one before it), unless a copy runs already. A container whose task has
// no FIFOs (made by a spoteci that logged through spoteci-logger) is left
// to that logger.
func (outs *outputs) attach(c *container) {
	if o := c.output(); o != nil {
		select {
		case <-o.done:
		default:
			return // copying
		}
	}
	o, err := outs.open(c, false)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		outs.log.Warn("reading the output of a running container", "container", c.cid, "err", err)
		return
	}
	outs.run(c, o)
}

// run starts o as the output of c.
func (outs *outputs) run(c *container, o *output) {
	o.start(outs.log, c)
	if old := c.setOutput(o); old != nil {
		old.stop()
	}
}

// drain waits, boundedly, until the output of c (which ended) is all
// in its log, so that its log is whole once its end is recorded.
func (outs *outputs) drain(c *container) {
	if o := c.output(); o != nil && !o.wait(outputDrain) {
		outs.log.Warn("the output of an ended container is still open; recording its end", "container", c.cid)
	}
}

// stopOutputs ends the copies of the given containers (they run on).
func stopOutputs(cs []*container) {
	for _, c := range cs {
		if o := c.setOutput(nil); o != nil {
			o.stop()
		}
	}
}

func (c *container) output() *output {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	return c.out
}

// setOutput makes o the output of c and returns the one before.
func (c *container) setOutput(o *output) *output {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	old := c.out
	c.out = o
	return old
}
