package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNoCommand is returned (wrapped) by Start for a container without a
// command: there are no images to take a default entrypoint from.
var ErrNoCommand = errors.New("host containers have no image entrypoint to fall back on")

// ErrNotFound is returned for an unknown instance or container.
var ErrNotFound = errors.New("not found")

// ErrInvalidName is returned by Start for an instance id or container name
// that cannot be used as a folder name.
var ErrInvalidName = errors.New("invalid name")

// Container is what to run.
type Container struct {
	// Name identifies the container within its instance.
	Name string
	// Command is the program and its first arguments; Command[0] is resolved
	// with the PATH of the container's environment. It must not be empty.
	Command []string
	// Args are appended to Command.
	Args []string
	// Env holds KEY=VALUE pairs added to a minimal environment (PATH, HOME=/,
	// HOSTNAME=<instance id>); the server's own environment is not inherited.
	Env []string
	// WorkingDir is the working directory; "" means the container's own
	// folder, <dir>/instances/<id>/<container>, where its log and status
	// files are too.
	WorkingDir string
}

// State is the state of a container.
type State string

// The states of a container.
const (
	StateWaiting    State = "Waiting"
	StateRunning    State = "Running"
	StateTerminated State = "Terminated"
)

// Reasons given in ContainerStatus.Reason for a terminated container.
const (
	// ReasonCompleted: the process exited with code 0.
	ReasonCompleted = "Completed"
	// ReasonError: the process exited with a non-zero code or died from a signal it was not sent by Stop.
	ReasonError = "Error"
	// ReasonKilled: the process was killed with SIGKILL by Stop (after the grace), or stopped before it started.
	ReasonKilled = "Killed"
	// ReasonStartError: the process could not be started (Message says why).
	ReasonStartError = "StartError"
	// ReasonLost: the shim supervising the process died or the host rebooted,
	// so the real exit is unknown.
	ReasonLost = "Lost"
)

// ContainerStatus is the observed state of one container.
type ContainerStatus struct {
	Name       string
	State      State
	PID        int       // process id (and process group id) of the container while it runs
	StartedAt  time.Time // wall clock; zero while Waiting or after a StartError
	FinishedAt time.Time // wall clock; zero until Terminated
	ExitCode   int       // 128+signal for a process killed by a signal
	Reason     string    // see the Reason constants
	Message    string    // details for StartError, Killed and Lost
}

// LogOptions select what Log returns.
type LogOptions struct {
	// Tail is the number of lines to return from the end; <0 returns all.
	Tail int
	// SinceTime, if not zero, drops lines written before it.
	SinceTime time.Time
	// Follow streams new lines until the container terminates or the reader is closed.
	Follow bool
	// Timestamps prefixes each line with the RFC3339Nano time it was written and a space.
	Timestamps bool
}

// Runtime runs the containers of instances as host processes.
type Runtime interface {
	// Start launches the containers of instance id; idempotent: a container
	// already started is left alone. grace is the default grace period used
	// when the container's supervisor is sent SIGTERM by something other than Stop.
	Start(ctx context.Context, id string, containers []Container, grace time.Duration) error
	// Stop sends SIGTERM to every container process group of id and SIGKILL
	// after grace (grace <= 0 => immediate SIGKILL). It returns once the
	// signals are delivered; the shim enforces the grace even if the caller
	// exits. Idempotent, no error for an unknown or finished id.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Status returns the status of every container of id, in the order given
	// to Start; ErrNotFound for an unknown id.
	Status(id string) ([]ContainerStatus, error)
	// Log returns stdout and stderr of a container, interleaved as written.
	Log(id, container string, opts LogOptions) (io.ReadCloser, error)
	// Remove deletes the folder of an instance, first killing any of its
	// containers still running. No error for an unknown id.
	Remove(id string) error
	// Exits returns the ids whose containers all reached Terminated since the
	// last call (and, on the first call after New, every instance already
	// fully terminated). Rarely (the last two containers of an instance
	// ending at the same moment) an id comes twice: handle it idempotently.
	Exits() ([]string, error)
}

// ShimOptions are the arguments of the hidden `spoteci shim` command.
type ShimOptions struct {
	Dir       string // state folder given to NewHost
	ID        string // instance id
	Container string // container name
}

var _ Runtime = (*Host)(nil)

// maxNameLen bounds ids and container names so that they fit a file name
// together with the suffixes the runtime adds.
const maxNameLen = 200

// validName reports an error unless name is usable as a folder name:
// 1 to 200 of [A-Za-z0-9._-], not starting with '.'.
func validName(kind, name string) error {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return fmt.Errorf("%s %q: %w: must be 1 to %d characters of [A-Za-z0-9._-], not starting with '.'", kind, name, ErrInvalidName, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s %q: %w: must be 1 to %d characters of [A-Za-z0-9._-], not starting with '.'", kind, name, ErrInvalidName, maxNameLen)
		}
	}
	return nil
}
