// Package provider is the virtual node's seam to the backend that runs its
// pods' instances: the Provider interface and the values that cross it
// (Instance, Pool, the errors the node acts on). It imports nothing of the
// node, so every part of the node, and every backend, can import it.
package provider

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Provider is the node's seam to the backend that runs its pods' instances,
// in virtual-kubelet's shape: the node owns the interface and knows nothing
// of the wire behind it. internal/eciprovider implements it on Alibaba
// Cloud's official SDK, for the local ECI service and the real cloud alike.
// Implementations are safe for concurrent use, and their times are wall
// times.
type Provider interface {
	// Create asks for an instance; a second call with the same ClientToken
	// (the pod's UID) returns the first one's ID.
	Create(ctx context.Context, spec eciapi.CreateContainerGroupRequest) (string, error)
	// DryRun asks whether Create would succeed now, creating nothing (ECI's
	// DryRun): nil when it would; when not, the *RequestError Create would
	// return (ErrNoStock, ErrBidBelowMarket, a refused field). spec's
	// ClientToken plays no part.
	DryRun(ctx context.Context, spec eciapi.CreateContainerGroupRequest) error
	// List returns every instance that carries all of tags (deleted ones
	// left out), reading every page.
	List(ctx context.Context, tags map[string]string) ([]Instance, error)
	// Changed returns the instances that carry all of tags and whose status
	// (containers, events, IP, notice) changed within the last since, at
	// most MaxChangedWindow: a poll's work is what changed, not what
	// exists. Deleted ones come with StatusDeleted where the backend says,
	// and some may have changed earlier than since; a deletion the backend
	// does not report is found by List.
	Changed(ctx context.Context, tags map[string]string, since time.Duration) ([]Instance, error)
	// Get returns one instance by ID, deleted ones too where the backend
	// still knows them; nil when it does not.
	Get(ctx context.Context, id string) (*Instance, error)
	// Delete stops an instance, its containers with grace (nil: the
	// instance's own); ErrNotFound when it is already gone.
	Delete(ctx context.Context, id string, grace *int64) error
	// Logs reads a container's log; with Follow it stays open while the
	// container runs.
	Logs(ctx context.Context, req eciapi.DescribeContainerLogRequest) (io.ReadCloser, error)
	// Exec starts a command in a container and returns the one-time URL of
	// its stream (Kubernetes' remote command protocol).
	Exec(ctx context.Context, req eciapi.ExecContainerCommandRequest) (string, error)
	// Metrics samples the resource use of instances.
	Metrics(ctx context.Context, ids []string) (eciapi.DescribeMultiContainerGroupMetricResponse, error)
	// Pools lists what zone sells now, every zone of the region when zone
	// is empty: each instance type in each zone, with its size and spot
	// stock where the backend says. ErrUnknownZone when the backend knows
	// no such zone.
	Pools(ctx context.Context, zone string) ([]Pool, error)
	// Region is the region the backend sells in; empty when unknown.
	Region() string
}

// MaxChangedWindow is the furthest back Changed reaches (ECI's
// DescribeContainerGroupStatus: an hour).
const MaxChangedWindow = time.Hour

// Pool is an instance type in a zone, as the backend sells it now.
type Pool struct {
	Zone, InstanceType string
	VCPU               int
	MemoryGiB          float64
	// Stock is how many spot instances of the type the zone holds, running
	// ones included; StockUnknown when the backend gives no numbers (the
	// real cloud says only whether there is stock).
	Stock int
}

// StockUnknown is the Stock of a pool whose backend gives no numbers.
const StockUnknown = -1

// The errors a Provider returns that the node acts on; any other failure of
// a request the backend refused is a *RequestError.
var (
	ErrNotFound = errors.New("instance not found")
	// ErrNoStock: no spot stock for the specs in any candidate zone.
	ErrNoStock = errors.New("no spot stock")
	// ErrBidBelowMarket: the price limit is below every candidate's price.
	ErrBidBelowMarket = errors.New("bid below market")
	// ErrUnknownZone: the zone asked for is not one the backend sells in.
	ErrUnknownZone = errors.New("unknown zone")
)

// RequestError is a request the backend refused: its code, message and
// HTTP status. It wraps ErrNotFound, ErrNoStock, ErrBidBelowMarket or
// ErrUnknownZone when it is one of those.
type RequestError struct {
	Status  int
	Code    string
	Message string
	// Field is the spot field refused, when the backend named it: the node
	// says it in the annotation's words (FieldError.Annotation).
	Field *annotation.FieldError
	kind  error
}

// NewRequestError classifies a refusal by its code.
func NewRequestError(status int, code, message string) *RequestError {
	e := &RequestError{Status: status, Code: code, Message: message}
	switch code {
	case eciapi.CodeNotFound:
		e.kind = ErrNotFound
	case eciapi.CodeNoStock:
		e.kind = ErrNoStock
	case eciapi.CodeBidBelowMarket:
		e.kind = ErrBidBelowMarket
	case eciapi.CodeInvalidZone:
		e.kind = ErrUnknownZone
	}
	return e
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }
func (e *RequestError) Unwrap() error { return e.kind }

// InstanceStatus is the state of an instance, as ECI names it.
type InstanceStatus string

// The statuses the node acts on.
const (
	StatusPending   InstanceStatus = eciapi.StatusPending
	StatusRunning   InstanceStatus = eciapi.StatusRunning
	StatusSucceeded InstanceStatus = eciapi.StatusSucceeded
	StatusFailed    InstanceStatus = eciapi.StatusFailed
	// StatusExpired: a spot instance the market released.
	StatusExpired InstanceStatus = eciapi.StatusExpired
	// StatusDeleted: deleted, still known to a Get by ID.
	StatusDeleted InstanceStatus = eciapi.StatusDeleted
)

// Ended says the instance runs no more: it finished, or the market
// released it. Deleting it changes nothing that runs, so a pod being
// deleted need not wait for it to reach Deleted (a backend may keep the
// ended status, or forget the instance).
func (s InstanceStatus) Ended() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusExpired || s == StatusDeleted
}

// Instance is a container instance as the node sees it.
type Instance struct {
	ID   string
	Name string
	// Token is the ClientToken it was created with: its pod's UID.
	Token        string
	Tags         map[string]string
	Status       InstanceStatus
	IP           string
	ZoneID       string
	InstanceType string
	// Spot: a spot instance; Degraded: spot was short, so it runs
	// pay-as-you-go.
	Spot, Degraded bool
	// PurchasePrice is the hourly price at purchase; zero when the backend
	// does not say (the real cloud's listing has no price).
	PurchasePrice float64
	Created       time.Time
	// NoticeTime is when SpotToBeReleased came, ReleaseTime when the
	// instance is (or was) released; zero when not noticed.
	NoticeTime  time.Time
	ReleaseTime time.Time
	Containers  []ContainerStatus
	Events      []Event
}

// ContainerStatus is a container of an instance.
type ContainerStatus struct {
	Name         string
	Image        string
	ImageID      string
	RestartCount int
	State        ContainerState
	// Previous is how the container's previous run ended, if it restarted.
	Previous *ContainerState
}

// The states of a container.
const (
	ContainerWaiting    = "Waiting"
	ContainerRunning    = "Running"
	ContainerTerminated = "Terminated"
)

// ContainerState is one run of a container.
type ContainerState struct {
	State    string // Waiting, Running or Terminated
	Reason   string
	Message  string
	ExitCode int
	Started  time.Time
	Finished time.Time
}

// Event is an event of an instance; Container names the container it is
// about, if any.
type Event struct {
	Type      string
	Reason    string
	Message   string
	Container string
	Time      time.Time
}
