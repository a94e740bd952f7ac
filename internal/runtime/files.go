//go:build linux

package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Names of the folders and files of the state folder; see doc.go.
const (
	specsDir     = "specs"
	instancesDir = "instances"
	exitsDir     = "exits"

	stopFile = ".stop" // in the instance folder

	runningFile = "running.json" // in the container folder, from here on
	exitFile    = "exit.json"
	logFile     = "log"
)

// specRecord is specs/<id>.json, written by a launcher before it starts the
// shims (or rewritten by Start, adding containers).
type specRecord struct {
	Containers []containerSpec `json:"containers"`
}

// containerSpec is one container of a specRecord.
type containerSpec struct {
	Name       string        `json:"name"`
	Command    []string      `json:"command"`
	Args       []string      `json:"args,omitempty"`
	Env        []string      `json:"env,omitempty"`
	WorkingDir string        `json:"workingDir,omitempty"`
	Grace      time.Duration `json:"grace"` // default grace on a SIGTERM not sent by Stop
}

// container returns the spec of the container called name.
func (s *specRecord) container(name string) (containerSpec, bool) {
	for _, c := range s.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return containerSpec{}, false
}

// runningRecord is running.json, written by the shim once the process runs.
// It is written in place, not renamed: a reader that finds it empty or cut
// short takes the container for Waiting a moment longer.
type runningRecord struct {
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	ShimPID   int       `json:"shimPid"`
	// ShimStart is the start time of the shim in clock ticks after boot
	// (field 22 of /proc/PID/stat) and BootID the kernel's boot id: together
	// with ShimPID they tell whether the shim still lives.
	ShimStart uint64 `json:"shimStart"`
	BootID    string `json:"bootId"`
}

// exitRecord is exit.json, written once the container is Terminated.
type exitRecord struct {
	PID        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	ExitCode   int       `json:"exitCode"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
}

// stopRecord is the instance's .stop file, written by Stop.
type stopRecord struct {
	RequestedAt time.Time     `json:"requestedAt"`
	Grace       time.Duration `json:"grace"`
	Deadline    time.Time     `json:"deadline"` // SIGKILL time
}

// writeFileAtomic writes data to path so that readers see the old content or
// the new, never a part.
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// writeJSON writes v as JSON to path atomically.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, data)
}

// readJSON reads the JSON file path into v. A missing file gives an error
// satisfying errors.Is(err, fs.ErrNotExist).
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	return nil
}

// readExit reads the exit.json of the container folder cdir; ok is false if
// there is none yet.
func readExit(cdir string) (rec exitRecord, ok bool, err error) {
	err = readJSON(filepath.Join(cdir, exitFile), &rec)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// readStop reads the .stop file of the instance folder idir; ok is false if
// Stop was not called.
func readStop(idir string) (rec stopRecord, ok bool, err error) {
	err = readJSON(filepath.Join(idir, stopFile), &rec)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

// errSpecPartial tells a spec that Start is writing right now.
var errSpecPartial = errors.New("spec being written")

// readSpec reads the spec of instance id; a missing spec gives an error
// satisfying errors.Is(err, fs.ErrNotExist).
func readSpec(dir, id string) (specRecord, error) {
	var spec specRecord
	data, err := os.ReadFile(filepath.Join(dir, specsDir, id+".json"))
	if err != nil {
		return spec, err
	}
	if len(data) == 0 {
		return spec, errSpecPartial
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, fmt.Errorf("decoding spec of %s: %w", id, err)
	}
	return spec, nil
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// markIfAllTerminated writes the exits marker of instance id when every
// container of it has an exit.json. Every container calls it after writing
// its own exit.json, so the last one to finish always sees all of them. When
// the last two finish at the same moment both may see it: the exclusive
// create keeps one marker, but Exits may read it in between and return the id
// twice (see Exits).
func markIfAllTerminated(dir, id string) error {
	spec, err := readSpec(dir, id)
	if err != nil {
		return fmt.Errorf("reading spec of %s: %w", id, err)
	}
	idir := filepath.Join(dir, instancesDir, id)
	for _, c := range spec.Containers {
		if !exists(filepath.Join(idir, c.Name, exitFile)) {
			return nil
		}
	}
	m, err := os.OpenFile(filepath.Join(dir, exitsDir, id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing exits marker of %s: %w", id, err)
	}
	return m.Close()
}
