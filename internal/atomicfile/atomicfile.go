// Package atomicfile replaces files in one rename, so that a reader (or a
// process started after a crash) sees the old content or the new, never a
// part of it.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
)

// seq makes temporary names unique within this process; the pid, across them.
var seq atomic.Uint64

// Write writes data to path with mode through a temporary file in the same
// folder. It does not fsync: the state survives a crash of any process, not a
// power loss.
func Write(path string, data []byte, mode os.FileMode) error {
	dir, base := filepath.Split(path)
	tmp := filepath.Join(dir, "."+base+"."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(seq.Add(1), 10)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
