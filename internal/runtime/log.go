//go:build linux

package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The log file holds one record per line:
//
//	<RFC3339Nano UTC time> <tag> <content>\n
//
// where tag F ends a line of output and P is a part of a line whose end
// follows in later records (output that had no newline yet when read).

// copyLog copies the container's output from r into the log file w, one
// write per read so that readers see output as soon as it is written.
func copyLog(w io.Writer, r io.Reader) {
	buf := make([]byte, 32*1024)
	var out []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out = appendRecords(out[:0], time.Now(), buf[:n])
			if _, werr := w.Write(out); werr != nil {
				fmt.Fprintf(os.Stderr, "writing log: %v\n", werr)
			}
		}
		if err != nil {
			return
		}
	}
}

// appendRecords appends to out the records of data read at time t.
func appendRecords(out []byte, t time.Time, data []byte) []byte {
	var stamp [64]byte
	ts := t.UTC().AppendFormat(stamp[:0], time.RFC3339Nano)
	for len(data) > 0 {
		out = append(out, ts...)
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, " P "...)
			out = append(out, data...)
			out = append(out, '\n')
			break
		}
		out = append(out, " F "...)
		out = append(out, data[:i+1]...)
		data = data[i+1:]
	}
	return out
}

// logRecord is one parsed record of the log file.
type logRecord struct {
	stamp   []byte // RFC3339Nano
	partial bool   // tag P
	content []byte // without the newline of the record
}

// parseRecord parses one line of the log file, without its newline.
func parseRecord(line []byte) (logRecord, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || len(line) < sp+3 || line[sp+2] != ' ' || (line[sp+1] != 'F' && line[sp+1] != 'P') {
		return logRecord{}, false
	}
	return logRecord{stamp: line[:sp], partial: line[sp+1] == 'P', content: line[sp+3:]}, true
}

// logDecoder turns records back into the container's output, applying
// LogOptions.SinceTime and Timestamps.
type logDecoder struct {
	opts   LogOptions
	inLine bool // the last record was a part: the next continues its line
	skip   bool // the current line is before SinceTime
}

func (d *logDecoder) decode(out []byte, line []byte) []byte {
	rec, ok := parseRecord(line)
	if !ok {
		return out
	}
	if !d.inLine {
		d.skip = false
		if !d.opts.SinceTime.IsZero() {
			if t, err := time.Parse(time.RFC3339Nano, string(rec.stamp)); err == nil && t.Before(d.opts.SinceTime) {
				d.skip = true
			}
		}
		if !d.skip && d.opts.Timestamps {
			out = append(out, rec.stamp...)
			out = append(out, ' ')
		}
	}
	d.inLine = rec.partial
	if d.skip {
		return out
	}
	out = append(out, rec.content...)
	if !rec.partial {
		out = append(out, '\n')
	}
	return out
}

// tailOffset returns the offset in the log file f where its last n lines
// start (a line being parts P up to a record F, or up to the end).
func tailOffset(f *os.File, n int) (int64, error) {
	if n == 0 {
		return f.Seek(0, io.SeekEnd)
	}
	starts := make([]int64, n) // ring of the starts of the last n lines
	count := 0
	var off int64
	inLine := false
	br := bufio.NewReaderSize(f, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		// The header (time and tag) is in the first slice: it is far
		// shorter than the buffer.
		rec, ok := parseRecord(bytes.TrimSuffix(line, []byte("\n")))
		size := int64(len(line))
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			size += int64(len(line))
		}
		if err == nil && ok { // a whole record
			if !inLine {
				starts[count%n] = off
				count++
			}
			inLine = rec.partial
		}
		off += size
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, err
		}
	}
	if count <= n {
		return 0, nil
	}
	return starts[count%n], nil
}

// followPoll is how often a followed log is polled for new output.
const followPoll = 100 * time.Millisecond

// Log returns the output of a container: stdout and stderr interleaved as
// written. The reader must be closed; with Follow it ends once the container
// has terminated and all its output was read.
func (h *Host) Log(id, container string, opts LogOptions) (io.ReadCloser, error) {
	spec, err := h.spec(id)
	if err != nil {
		return nil, err
	}
	if _, ok := spec.container(container); !ok {
		return nil, fmt.Errorf("container %s/%s: %w", id, container, ErrNotFound)
	}
	cdir := filepath.Join(h.instanceDir(id), container)
	f, err := os.Open(filepath.Join(cdir, logFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("log of %s/%s: %w", id, container, err)
	}
	if f == nil && !opts.Follow {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var start int64
	if f != nil && opts.Tail >= 0 {
		if start, err = tailOffset(f, opts.Tail); err != nil {
			f.Close()
			return nil, fmt.Errorf("log of %s/%s: %w", id, container, err)
		}
	}
	pr, pw := io.Pipe()
	lr := &logReader{pr: pr, done: make(chan struct{})}
	go h.streamLog(lr, pw, f, start, id, container, opts)
	return lr, nil
}

// logReader is the reading end of the stream of a log.
type logReader struct {
	pr   *io.PipeReader
	done chan struct{}
	once sync.Once
}

func (l *logReader) Read(p []byte) (int, error) { return l.pr.Read(p) }

// Close stops the stream.
func (l *logReader) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.pr.Close()
}

// streamLog decodes the log file f from offset start into pw, and with Follow
// polls it for more until the container has terminated. f is nil while the
// shim has not created the file yet.
func (h *Host) streamLog(lr *logReader, pw *io.PipeWriter, f *os.File, start int64, id, name string, opts LogOptions) {
	cdir := filepath.Join(h.instanceDir(id), name)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	dec := logDecoder{opts: opts}
	buf := make([]byte, 64*1024)
	var pending []byte // a record whose newline is not written yet
	var out []byte
	off := start
	for poll := 0; ; poll++ {
		// Whether the container had ended before this pass is read first:
		// the shim writes all output before exit.json, so a pass that starts
		// after exit.json reads everything.
		ended := !opts.Follow || h.ended(id, name, cdir, poll)
		if f == nil {
			var err error
			if f, err = os.Open(filepath.Join(cdir, logFile)); err != nil {
				f = nil
			}
		}
		for f != nil {
			n, err := f.ReadAt(buf, off)
			off += int64(n)
			data := buf[:n]
			out = out[:0]
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					pending = append(pending, data...)
					break
				}
				if len(pending) > 0 {
					pending = append(pending, data[:i]...)
					out = dec.decode(out, pending)
					pending = pending[:0]
				} else {
					out = dec.decode(out, data[:i])
				}
				data = data[i+1:]
			}
			if len(out) > 0 {
				if _, werr := pw.Write(out); werr != nil {
					return // closed by the reader
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					pw.CloseWithError(fmt.Errorf("reading log of %s/%s: %w", id, name, err))
					return
				}
				break
			}
		}
		if ended {
			pw.Close()
			return
		}
		select {
		case <-lr.done:
			return
		case <-time.After(followPoll):
		}
	}
}

// ended reports whether a followed container has terminated (or was
// removed); every 10th poll it also notices a shim that died.
func (h *Host) ended(id, name, cdir string, poll int) bool {
	if exists(filepath.Join(cdir, exitFile)) || !h.known(id) {
		return true
	}
	if poll%10 == 9 {
		st, err := h.containerStatus(id, name)
		return err != nil || st.State == StateTerminated
	}
	return false
}
