package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spoteci/spoteci/internal/runtime/logfile"
)

// ErrNotFound is returned for an unknown instance or container.
var ErrNotFound = errors.New("not found")

// ErrInvalidName is returned by Start for an instance id or container name
// that cannot be used as a folder name.
var ErrInvalidName = errors.New("invalid name")

// Instance is one container instance: a pod sandbox and its containers.
type Instance struct {
	// ID names the instance (the ECI group id).
	ID string
	// Hostname of every container (the pod's name).
	Hostname string
	// CPU (vCPUs) and Memory (bytes) of the instance type: the cgroup of the
	// whole sandbox. Zero means no limit.
	CPU    float64
	Memory int64
	// Containers run in order, each once its image is ready.
	Containers []Container
	// Credentials for private registries (ECI's ImageRegistryCredential).
	Credentials []Credential
	// Volumes the containers can mount.
	Volumes []Volume
	// RestartPolicy says which ended containers start again, in place,
	// after a back-off; "" is Never.
	RestartPolicy RestartPolicy
	// Security applies to every container: groups, volume ownership,
	// sysctls (security.go).
	Security PodSecurity `json:",omitzero"`
	// PodRef names the instance's pod in the kubelet's messages
	// ("name_namespace(uid)"); "" names it by Hostname.
	PodRef string `json:",omitempty"`
	// PidsLimit bounds the processes of the whole instance (pids.max of
	// its cgroup); 0 takes the runtime's sizing (limits.go), which Start
	// records here so that the instance keeps it across restarts.
	PidsLimit int64 `json:",omitempty"`
	// EphemeralStorage is the instance's temporary storage in bytes (ECI's
	// 30 GiB and its EphemeralStorage): its containers' writable layers,
	// logs and disk volumes together may use that much before the
	// instance is evicted. Zero means no limit.
	EphemeralStorage int64 `json:",omitempty"`
	// Annotations are the instance's labels (its group's tags), passed to
	// the runtime as CRI passes a pod's annotations: a runtime may act on
	// its own keys (the model runtime's behaviour), and ignores the rest.
	Annotations map[string]string `json:",omitempty"`
}

// RestartPolicy is Kubernetes' (and ECI's) restart policy.
type RestartPolicy string

// The restart policies.
const (
	RestartNever     RestartPolicy = "Never"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartAlways    RestartPolicy = "Always"
)

// Restarts reports whether a container that ended with code starts again.
func (p RestartPolicy) Restarts(code int) bool {
	return p == RestartAlways || (p == RestartOnFailure && code != 0)
}

// Volume is a folder of the instance that containers mount: empty at first
// (EmptyDir), or holding the given files (read-only in containers, as a
// kubelet mounts configMap, secret, downwardAPI and projected volumes).
type Volume struct {
	Name string
	// Memory makes an empty volume a tmpfs.
	Memory bool
	// SizeLimit bounds an empty volume, in bytes (emptyDir.sizeLimit): a
	// disk one's use over it evicts the instance, a tmpfs is made that
	// size. Zero means no limit.
	SizeLimit int64 `json:",omitempty"`
	// Files are written into the volume before any container starts;
	// a volume with files is mounted read-only.
	Files []File
}

// File is a file of a volume.
type File struct {
	Path string // relative, within the volume
	Data []byte
	Mode uint32 // permission bits; 0 means 0644
}

// Mount puts a volume (or a SubPath of it) at Path in a container.
type Mount struct {
	Volume   string
	Path     string
	SubPath  string
	ReadOnly bool
}

// Credential is a registry login.
type Credential struct {
	Server   string // registry host, as in the image reference ("registry.example.com:5000")
	Username string
	Password string
}

// PullPolicy says when to pull a container's image, as Kubernetes does.
type PullPolicy string

// The pull policies.
const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// Container is what to run.
type Container struct {
	// Name identifies the container within its instance.
	Name string
	// Image is a reference as Docker normalises it ("perl" is
	// docker.io/library/perl:latest).
	Image string
	// PullPolicy "" defaults as Kubernetes does: Always for :latest or no
	// tag, IfNotPresent otherwise.
	PullPolicy PullPolicy
	// Command replaces the image's entrypoint, Args its cmd (Kubernetes'
	// rules: Command without Args drops the image's cmd too).
	Command []string
	Args    []string
	// Env holds KEY=VALUE pairs set over the image's environment.
	Env []string
	// IPEnv names variables set to the instance's IP (ECI's FieldRef
	// status.podIP), known once its sandbox is up.
	IPEnv []string
	// Mounts are the volumes the container sees.
	Mounts []Mount
	// WorkingDir "" keeps the image's.
	WorkingDir string
	// CPU (vCPUs) and Memory (bytes) limit the container inside its
	// instance; zero means the instance's.
	CPU    float64
	Memory int64
	// Security is the container's users, capabilities and file system
	// (security.go); zero is the defaults.
	Security Security `json:",omitzero"`
	// EphemeralStorage limits the container's writable layer and logs, in
	// bytes (its ephemeral-storage limit); over it, the instance is
	// evicted. Zero means no limit of its own.
	EphemeralStorage int64 `json:",omitempty"`
}

// State is the state of a container.
type State string

// The states of a container.
const (
	StateWaiting    State = "Waiting"
	StateRunning    State = "Running"
	StateTerminated State = "Terminated"
)

// Reasons of ContainerStatus, as a kubelet gives them.
const (
	// Waiting.
	ReasonContainerCreating = "ContainerCreating"
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonCreateError       = "CreateContainerError"
	ReasonCreateConfigError = "CreateContainerConfigError"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	// Terminated.
	ReasonCompleted  = "Completed"
	ReasonError      = "Error"
	ReasonOOMKilled  = "OOMKilled"
	ReasonStartError = "StartError"
	// ReasonLost: the container's task vanished (containerd lost its state,
	// or the host rebooted), so its real exit is unknown.
	ReasonLost = "Lost"
)

// ReasonEvicted is the Reason of an instance the runtime evicted (its
// ephemeral storage over a limit), as a kubelet's eviction manager says it.
const ReasonEvicted = "Evicted"

// ContainerStatus is the observed state of one container.
type ContainerStatus struct {
	Name       string
	State      State
	Reason     string    // see the Reason constants
	Message    string    // details for a waiting or failed container
	StartedAt  time.Time // wall clock; zero until Running
	FinishedAt time.Time // wall clock; zero until Terminated
	ExitCode   int       // 128+signal for a process killed by a signal
	// Image is the reference asked for, ImageID its digest once pulled.
	Image, ImageID string
	// ContainerID is containerd's id of the container.
	ContainerID string
	// RestartCount counts the restarts; LastTerminated is how the previous
	// run ended.
	RestartCount   int          `json:",omitempty"`
	LastTerminated *Termination `json:",omitempty"`
	// RestartAsked marks a running container that Restart stopped: its
	// exit starts it again, whatever its restart policy.
	RestartAsked bool `json:",omitempty"`
}

// Termination is how a run of a container ended.
type Termination struct {
	ExitCode              int
	Reason, Message       string
	StartedAt, FinishedAt time.Time
}

// Event is something the runtime did to an instance, said the way a kubelet
// says it (Pulling, Pulled, Created, Started, Failed, BackOff, Killing).
type Event struct {
	Time      time.Time
	Type      string // Normal or Warning
	Reason    string
	Message   string
	Container string // the container it is about, if any
}

// Status is the observed state of an instance.
type Status struct {
	// IP is the sandbox's address on the host's bridge, once set up.
	IP         string
	Containers []ContainerStatus // in the order given to Start
	Events     []Event
	// Reason and Message say why the runtime ended the instance itself:
	// ReasonEvicted and the kubelet's words; empty otherwise.
	Reason, Message string
}

// LogOptions select what Log returns.
type LogOptions = logfile.Options

// Runtime runs instances.
type Runtime interface {
	// Start sets up instance in.ID and runs its containers. It returns at
	// once (the work is queued); idempotent: an instance already started is
	// left alone.
	Start(ctx context.Context, in Instance) error
	// Stop sends SIGTERM to every container of id and SIGKILL after grace
	// (grace <= 0: SIGKILL at once). A container not started yet never
	// starts. Idempotent; no error for an unknown or finished id.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Restart restarts every container of id in place: a running one gets
	// SIGTERM and SIGKILL after grace, and starts again as soon as it ends;
	// an ended one starts again at once. RestartCount counts it, and the
	// run that ended stays as LastTerminated. ErrNotFound for an unknown id.
	Restart(ctx context.Context, id string, grace time.Duration) error
	// Status returns the state of instance id; ErrNotFound for an unknown id.
	Status(id string) (Status, error)
	// Log returns stdout and stderr of a container, interleaved as written.
	Log(id, container string, opts LogOptions) (io.ReadCloser, error)
	// Remove kills what still runs of instance id and deletes everything of
	// it: containers, network, cgroup, folder. No error for an unknown id.
	Remove(ctx context.Context, id string) error
	// Exec runs cmd in a running container and returns its exit code;
	// ErrNotRunning if the container does not run.
	Exec(ctx context.Context, id, container string, cmd []string, sio ExecIO) (int, error)
	// Stats samples the resource use of instance id and its running
	// containers from their cgroups.
	Stats(id string) (Stats, error)
	// Exits returns the ids whose containers all reached Terminated since the
	// last call (and, on the first call, every instance already fully
	// terminated). An id may come twice: handle it idempotently.
	Exits() ([]string, error)
	// Close releases the runtime's connections; containers keep running.
	Close() error
}

// Check refuses an instance whose id, container names or volumes cannot be
// used (ErrInvalidName, or a mount that reaches outside its volume): every
// runtime's Start runs it, so that a bad request fails at once.
func (in Instance) Check() error {
	if err := validName("instance id", in.ID); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range in.Containers {
		if err := validName("container name", c.Name); err != nil {
			return err
		}
		if seen[c.Name] {
			return fmt.Errorf("container name %q: %w: used twice", c.Name, ErrInvalidName)
		}
		seen[c.Name] = true
	}
	return checkVolumes(in)
}

// Restart back-off, as a kubelet's: 10 s doubled after each restart up to
// 5 minutes, and back to 10 s after a run of 10 minutes.
const (
	RestartBackoff    = 10 * time.Second
	maxRestartBackoff = 5 * time.Minute
	restartReset      = 10 * time.Minute
)

// RestartWait is how long a container waits before it starts again after
// run ended, given its status before (prev): base (RestartBackoff, or a
// test's) doubled for each restart, up to 5 minutes.
func RestartWait(base time.Duration, prev ContainerStatus, run Termination) time.Duration {
	if prev.LastTerminated != nil && run.FinishedAt.Sub(run.StartedAt) < restartReset {
		return min(maxRestartBackoff, base<<min(prev.RestartCount, 5))
	}
	return base
}

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
