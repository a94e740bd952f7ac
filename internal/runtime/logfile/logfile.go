// Package logfile is the format of a container's log file and its reader.
//
// The file holds one record per line:
//
//	<RFC3339Nano UTC time> <tag> <content>\n
//
// where tag F ends a line of output and P is a part of a line whose end
// follows in later records (output that had no newline yet when read): the
// kubelet's CRI log format without the stream name. The writer is the
// runtime, which copies each container's output from its FIFOs (Copy,
// Rotating); readers are kubectl logs and DescribeContainerLog.
package logfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Copy copies output from r into w as records, one write per read so that
// readers see output as soon as it is written. It returns at r's end.
func Copy(w io.Writer, r io.Reader) error {
	buf := make([]byte, 32*1024)
	var out []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			out = AppendRecords(out[:0], time.Now(), buf[:n])
			if _, werr := w.Write(out); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// AppendRecords appends to out the records of data read at time t.
func AppendRecords(out []byte, t time.Time, data []byte) []byte {
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

// record is one parsed record of the log file.
type record struct {
	stamp   []byte // RFC3339Nano
	partial bool   // tag P
	content []byte // without the newline of the record
}

// parseRecord parses one line of the log file, without its newline.
func parseRecord(line []byte) (record, bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || len(line) < sp+3 || line[sp+2] != ' ' || (line[sp+1] != 'F' && line[sp+1] != 'P') {
		return record{}, false
	}
	return record{stamp: line[:sp], partial: line[sp+1] == 'P', content: line[sp+3:]}, true
}

// Options select what a Reader returns.
type Options struct {
	// Tail is the number of lines to return from the end; <0 returns all.
	Tail int
	// SinceTime, if not zero, drops lines written before it.
	SinceTime time.Time
	// Follow streams new lines until Ended reports true or the reader is closed.
	Follow bool
	// Timestamps prefixes each line with the RFC3339Nano time it was written and a space.
	Timestamps bool
	// Previous asks for the log of the container's previous run (not read
	// by Open: the caller picks the file).
	Previous bool
}

// decoder turns records back into the container's output, applying
// Options.SinceTime and Timestamps.
type decoder struct {
	opts   Options
	inLine bool // the last record was a part: the next continues its line
	skip   bool // the current line is before SinceTime
}

func (d *decoder) decode(out []byte, line []byte) []byte {
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

// Open returns the output recorded in the log file at path. With
// opts.Follow it keeps reading until ended reports true (checked before each
// pass, so a pass that starts after the end reads everything) or the reader
// is closed. A missing file is an empty log (the writer creates it on the
// first output). The reader must be closed.
func Open(path string, opts Options, ended func() bool) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("opening log: %w", err)
	}
	if f == nil && !opts.Follow {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	var start int64
	if f != nil && opts.Tail >= 0 {
		if start, err = tailOffset(f, opts.Tail); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading log: %w", err)
		}
	}
	pr, pw := io.Pipe()
	r := &reader{pr: pr, done: make(chan struct{})}
	go r.stream(pw, path, f, start, opts, ended)
	return r, nil
}

// reader is the reading end of the stream of a log.
type reader struct {
	pr   *io.PipeReader
	done chan struct{}
	once sync.Once
}

func (l *reader) Read(p []byte) (int, error) { return l.pr.Read(p) }

// Close stops the stream.
func (l *reader) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.pr.Close()
}

// stream decodes the log file f from offset start into pw, and with Follow
// polls it for more until ended. f is nil while the file does not exist yet.
func (l *reader) stream(pw *io.PipeWriter, path string, f *os.File, start int64, opts Options, ended func() bool) {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	dec := decoder{opts: opts}
	buf := make([]byte, 64*1024)
	var pending []byte // a record whose newline is not written yet
	var out []byte
	off := start
	for {
		done := !opts.Follow || ended()
		if f == nil {
			var err error
			if f, err = os.Open(path); err != nil {
				f = nil
			}
		}
		// Seen before f is read to its end: a writer rotates only between
		// writes, so whatever reached f is read below.
		rotated := opts.Follow && f != nil && moved(f, path)
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
					pw.CloseWithError(fmt.Errorf("reading log: %w", err))
					return
				}
				break
			}
		}
		if done {
			pw.Close()
			return
		}
		if rotated { // go on in the file written after f, from its start
			next := following(f, path)
			f.Close()
			f, off, pending = nil, 0, pending[:0]
			if next != path {
				if f, _ = os.Open(next); f == nil {
					continue // rotated away meanwhile: on to the current file
				}
			}
			continue
		}
		select {
		case <-l.done:
			return
		case <-time.After(followPoll):
		}
	}
}

// following is the file written after f, which a writer has rotated away:
// path.1 is written before path, path.2 before path.1, and so on. When f is
// gone (the reader fell more than the kept files behind) it is the oldest
// file left.
func following(f *os.File, path string) string {
	a, err := f.Stat()
	if err != nil {
		return path
	}
	newer := path
	for i := 1; ; i++ {
		name := fmt.Sprintf("%s.%d", path, i)
		b, err := os.Stat(name)
		if err != nil {
			return newer // f is gone: the oldest file left
		}
		if os.SameFile(a, b) {
			return newer
		}
		newer = name
	}
}

// moved reports whether path names another file than f now: the writer
// rotated f away. A path missing for a moment (renamed, not yet made
// again) is not yet a rotation.
func moved(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && !os.SameFile(a, b)
}
