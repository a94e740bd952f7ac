package logfile

import (
	"fmt"
	"os"
	"sync"
)

// The kubelet's defaults (containerLogMaxSize, containerLogMaxFiles): a
// container's log takes at most 50 MiB of disk.
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
)

// Rotating appends to a log file and rotates it as a kubelet does once it
// would grow past MaxSize: path becomes path.1, path.1 becomes path.2, and
// so on, the oldest beyond MaxFiles-1 removed. Readers read path (kubectl
// logs shows the current file) and follow it across rotations. Writes are
// whole record batches; one is never split between files, so a file may pass
// MaxSize by at most one batch.
type Rotating struct {
	path     string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotating opens path for appending. maxSize and maxFiles of 0 take the
// defaults; maxFiles is at least 2, the current file and one rotated.
func OpenRotating(path string, maxSize int64, maxFiles int) (*Rotating, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	r := &Rotating{path: path, maxSize: maxSize, maxFiles: max(maxFiles, 2)}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Rotating) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("opening log: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first if p would take the file past MaxSize.
func (r *Rotating) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// rotate shifts the rotated files by one and starts an empty current file.
// Call with mu held.
func (r *Rotating) rotate() error {
	r.f.Close()
	for i := r.maxFiles - 1; i > 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", r.path, i-1), fmt.Sprintf("%s.%d", r.path, i)) // missing: nothing to shift
	}
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotating log: %w", err)
	}
	return r.open()
}

// Close closes the current file.
func (r *Rotating) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
