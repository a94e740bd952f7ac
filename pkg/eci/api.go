// Package eci is the HTTP+JSON API of the spoteci ECI service and its Go client.
//
// Every action is a POST of a JSON body to /api/v1/<Action> with the header
// "Authorization: Bearer <token>"; action and field names follow Alibaba
// Cloud's ECI OpenAPI (CreateContainerGroup, SpotStrategy, ClientToken ...) so
// that people who know ECI recognise them. Errors come back with a 4xx or 5xx
// status and an Error body naming the field and the value at fault.
package eci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// APIPrefix is the path under which the actions are served.
const APIPrefix = "/api/v1/"

// Action names.
const (
	ActionCreateContainerGroup              = "CreateContainerGroup"
	ActionDescribeContainerGroups           = "DescribeContainerGroups"
	ActionDescribeContainerGroupStatus      = "DescribeContainerGroupStatus"
	ActionDeleteContainerGroup              = "DeleteContainerGroup"
	ActionRestartContainerGroup             = "RestartContainerGroup"
	ActionDescribeContainerGroupPrice       = "DescribeContainerGroupPrice"
	ActionDescribeSpotPriceHistory          = "DescribeSpotPriceHistory"
	ActionDescribeAvailableResource         = "DescribeAvailableResource"
	ActionDescribeContainerLog              = "DescribeContainerLog"
	ActionDescribeBill                      = "DescribeBill"
	ActionModifySpotMarket                  = "ModifySpotMarket"
	ActionExecContainerCommand              = "ExecContainerCommand"
	ActionDescribeMultiContainerGroupMetric = "DescribeMultiContainerGroupMetric"
	ActionDescribeSpotAdvice                = "DescribeSpotAdvice" // ECS's advice on spot pools
	// ActionStreamContainerLog answers with the log as text/plain, streamed
	// while the container runs if Follow is set (not an ECI action: kubectl
	// logs -f needs it).
	ActionStreamContainerLog = "StreamContainerLog"
)

// The OpenAPI versions of the two products whose actions the service
// answers: ECI's container groups, ECS's spot market.
const (
	ECIVersion = "2018-08-08"
	ECSVersion = "2014-05-26"
)

// DefaultEphemeralStorage is the temporary storage, in GiB, that ECI gives
// every group free of charge.
const DefaultEphemeralStorage = 30

// Container group statuses, as ECI names them.
const (
	StatusPending   = "Pending"
	StatusRunning   = "Running"
	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"
	StatusExpired   = "Expired"
	// StatusDeleted is shown only to a Describe that names the group's ID,
	// and to a DescribeContainerGroupStatus with SinceSecond.
	StatusDeleted = "Deleted"
)

// Error codes the service answers and its clients act on, as ECI names them.
const (
	CodeNotFound            = "InvalidContainerGroup.NotFound"
	CodeNoStock             = "OperationDenied.NoStock"
	CodeBidBelowMarket      = "OperationDenied.BidBelowMarket"
	CodeIncorrectStatus     = "IncorrectStatus.ContainerGroup"
	CodeContainerNotRunning = "IncorrectStatus.ContainerNotRunning"
	// CodeInvalidZone: a ZoneId that is not a zone of the service's region.
	CodeInvalidZone = "InvalidParameter.ZoneId"
	// CodeServiceUnavailable: a temporary failure (a write the state
	// folder refused); the same call may succeed when retried.
	CodeServiceUnavailable = "ServiceUnavailable"
	// CodeActionNotFound: an action the endpoint does not serve.
	CodeActionNotFound = "InvalidAction.NotFound"
	// CodeDryRunOperation: a CreateContainerGroup with DryRun would have
	// succeeded (ECS's answer, an HTTP 400 though nothing is wrong).
	CodeDryRunOperation = "DryRunOperation"
)

// DryRunMessage is the Message of a CodeDryRunOperation answer, as ECS
// words it.
const DryRunMessage = "Request validation has been passed with DryRun flag set."

// Event reasons of the spot market that clients act on (the market's
// EventKinds).
const (
	ReasonCreated          = "Created" // the group's own creation, naming its pool and price
	ReasonSpotToBeReleased = "SpotToBeReleased"
	ReasonSpotDegraded     = "SpotDegraded"
	// ReasonSpotReleased is the release of a spot instance by the market
	// (the group ends Expired).
	ReasonSpotReleased = "SpotReleased"
)

// ReasonBidFailed is the reason a virtual node gives the pod of an instance
// the market released (status Expired), as ECI's virtual kubelet does.
const ReasonBidFailed = "BidFailed"

// Spot strategies, as ECI names them.
const (
	NoSpot             = "NoSpot"
	SpotAsPriceGo      = "SpotAsPriceGo"
	SpotWithPriceLimit = "SpotWithPriceLimit"
)

// Decimal is a number kept as the text it was written in, so that "0.2555"
// can be refused for its 4 decimals; it accepts a JSON number or string.
type Decimal string

// UnmarshalJSON accepts 0.25 and "0.25" alike.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Decimal(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a number, got %s", b)
	}
	*d = Decimal(n)
	return nil
}

// MarshalJSON writes a Decimal as a JSON string.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

// Error is the body of a failed request.
type Error struct {
	RequestId string
	Code      string
	Message   string
	// Spoteci names the field a refusal of one field is about (spoteci's
	// extension of ECI's error body, which ECI's SDKs ignore): a client says
	// the refusal in its own words without reading Message. Nil for any
	// other error, and from the real cloud.
	Spoteci *FieldRefusal `json:",omitempty"`
	// HTTPStatus is the status it came with (not sent on the wire).
	HTTPStatus int `json:"-"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// FieldRefusal is a refused value of one field: the API field
// ("SpotPriceLimit"), the value as received and why it was refused. The
// Error's Message says the same in words.
type FieldRefusal struct {
	Field  string
	Value  string
	Reason string
}

// MaxEnvironmentVars bounds a container's EnvironmentVar list, as the
// OpenAPI bounds every list: what the request carries, the variables a
// virtual node adds for the kubernetes service included.
const MaxEnvironmentVars = 1000

// Limits of a group's names: ContainerGroupName is 2 to 128 characters, as
// ECI documents it; a hostname at most 63, as a kubelet cuts a pod's (and
// sethostname takes at most 64 bytes).
const (
	MinContainerGroupName = 2
	MaxContainerGroupName = 128
	MaxHostName           = 63
)

// ShortHostName is name as a hostname: cut to MaxHostName characters
// without a trailing hyphen or dot, as a kubelet cuts a long pod name.
func ShortHostName(name string) string {
	if len(name) <= MaxHostName {
		return name
	}
	return strings.TrimRight(name[:MaxHostName], "-.")
}

// EnvironmentVar is one variable of a container's environment: a Value, or
// a FieldRef the instance fills in when the container starts.
type EnvironmentVar struct {
	Key      string
	Value    string
	FieldRef *FieldRef `json:",omitempty"`
}

// FieldRef names a field of the instance, as ECI's
// EnvironmentVar.N.FieldRef.FieldPath: status.podIP (or status.podIPs, the
// same single address).
type FieldRef struct {
	FieldPath string
}

// Volume is a volume of a group, as ECI's Volume.N parameters: Type
// EmptyDirVolume or ConfigFileVolume (files given in the request: how a
// virtual node passes configMaps, secrets, the downward API and
// service-account tokens).
type Volume struct {
	Name             string
	Type             string
	EmptyDirVolume   *EmptyDirVolume   `json:",omitempty"`
	ConfigFileVolume *ConfigFileVolume `json:",omitempty"`
}

// Volume types.
const (
	VolumeEmptyDir   = "EmptyDirVolume"
	VolumeConfigFile = "ConfigFileVolume"
)

// EmptyDirVolume is scratch space for the group's life; Medium "Memory" is
// a tmpfs.
type EmptyDirVolume struct {
	Medium string `json:",omitempty"`
	// SizeLimit bounds the volume, a quantity with a unit as ECI takes it
	// ("256Mi", "1Gi"): a disk volume used past it evicts the group, a
	// Memory one is a tmpfs of that size.
	SizeLimit string `json:",omitempty"`
}

// ConfigFileVolume holds files written into the volume at creation.
type ConfigFileVolume struct {
	DefaultMode       int                `json:",omitempty" rpc:"DefaultMode|DefaultModel"` // 0644 unless set (the SDK spells it DefaultModel)
	ConfigFileToPaths []ConfigFileToPath `rpc:"ConfigFileToPath"`
}

// ConfigFileToPath is one file: its path in the volume and its content,
// base64-encoded.
type ConfigFileToPath struct {
	Path    string
	Content string
	Mode    int `json:",omitempty"` // DefaultMode unless set
}

// VolumeMount mounts a group volume into a container.
type VolumeMount struct {
	Name      string
	MountPath string
	SubPath   string `json:",omitempty"`
	ReadOnly  bool   `json:",omitempty"`
}

// Tag is a key-value label of a container group.
type Tag struct {
	Key   string
	Value string
}

// TagValue is the value of tag key in tags, or "".
func TagValue(tags []Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// Container is a container of a group to create.
type Container struct {
	Name  string
	Image string
	// ImagePullPolicy is Always, IfNotPresent or Never; empty defaults as
	// Kubernetes does (Always for :latest or no tag, else IfNotPresent).
	ImagePullPolicy string `json:",omitempty"`
	// Commands replace the image's entrypoint and Args its cmd; both empty
	// run the image's own.
	Commands        []string         `rpc:"Command"`
	Args            []string         `rpc:"Arg"`
	EnvironmentVars []EnvironmentVar `json:",omitempty" rpc:"EnvironmentVar"`
	WorkingDir      string           `json:",omitempty"`
	VolumeMounts    []VolumeMount    `json:",omitempty" rpc:"VolumeMount"`
	Cpu             float64          `json:",omitempty"`
	Memory          float64          `json:",omitempty"` // GiB
	// EphemeralStorageLimit bounds the container's writable layer and
	// logs, a quantity ("1Gi"): a Kubernetes container's ephemeral-storage
	// limit, which spoteci takes beside ECI's parameters. Used past it,
	// the group is evicted.
	EphemeralStorageLimit string `json:",omitempty"`
	// SecurityContext is the container's users, capabilities and file
	// system (see ContainerSecurityContext); nil is the defaults.
	SecurityContext *ContainerSecurityContext `json:",omitempty"`
}

// CreateContainerGroupRequest asks for a container group (an instance).
type CreateContainerGroupRequest struct {
	RegionId           string `json:",omitempty"`
	ZoneId             string `json:",omitempty"` // one zone; empty lets the market pick in the region
	ContainerGroupName string
	// ClientToken makes the request idempotent: a second request with the same
	// token returns the group the first one created.
	ClientToken string `json:",omitempty"`
	// InstanceType lists candidate specs in order of preference, as the
	// k8s.aliyun.com/eci-use-specs annotation does: "ecs.c5.large,2-4Gi".
	InstanceType string `json:",omitempty"`
	// Cpu and Memory (GiB) size the group when InstanceType is empty; zero
	// means the sum of the containers' Cpu and Memory.
	Cpu    float64 `json:",omitempty"`
	Memory float64 `json:",omitempty"`
	// SpotStrategy is NoSpot (or empty), SpotAsPriceGo or SpotWithPriceLimit.
	SpotStrategy   string   `json:",omitempty"`
	SpotPriceLimit Decimal  `json:",omitempty"`
	SpotDuration   *Decimal `json:",omitempty"` // hours of protection; default 1
	// SpotFallback creates a pay-as-you-go group when no pool has spot stock
	// at or under the bid.
	SpotFallback                  bool        `json:",omitempty"`
	RestartPolicy                 string      `json:",omitempty"` // Never (the default), OnFailure or Always
	TerminationGracePeriodSeconds *int64      `json:",omitempty"`
	Containers                    []Container `rpc:"Container"`
	Tags                          []Tag       `json:",omitempty" rpc:"Tag"`
	// HostName of the containers: an RFC 1123 host name of at most 63
	// characters; default ContainerGroupName cut to 63 characters.
	HostName string   `json:",omitempty"`
	Volumes  []Volume `json:",omitempty" rpc:"Volume"`
	// ImageRegistryCredentials log in to private registries.
	ImageRegistryCredentials []ImageRegistryCredential `json:",omitempty" rpc:"ImageRegistryCredential"`
	// EphemeralStorage adds that many GiB to the DefaultEphemeralStorage
	// every group has for its containers' writable layers, logs and disk
	// volumes (ECI's EphemeralStorage).
	EphemeralStorage int `json:",omitempty"`
	// SecurityContext holds what applies to every container: sysctls and
	// groups.
	SecurityContext *SecurityContext `json:",omitempty"`
	// DryRun checks the request as a create would (parameters, specs, spot
	// fields, the market's pick, fallback) and creates nothing: the answer
	// is a CodeDryRunOperation error when the create would succeed, and the
	// create's own error otherwise. A ClientToken already used is ignored.
	DryRun bool `json:",omitempty"`
}

// ImageRegistryCredential is a login to a registry, as ECI's
// ImageRegistryCredential.N parameters.
type ImageRegistryCredential struct {
	Server   string // registry host ("registry.example.com:5000")
	UserName string
	Password string
}

// CreateContainerGroupResponse names the group created.
type CreateContainerGroupResponse struct {
	RequestId        string
	ContainerGroupId string
}

// DescribeContainerGroupsRequest filters groups; empty fields match all.
type DescribeContainerGroupsRequest struct {
	// ContainerGroupIds picks groups by ID; named this way, deleted groups
	// are shown too (status Deleted), so a caller can see their containers stop.
	// On the OpenAPI it is a JSON array in one parameter, as ECI has it.
	ContainerGroupIds  []string `json:",omitempty" rpc:"ContainerGroupIds,json"`
	ContainerGroupName string   `json:",omitempty"`
	Status             string   `json:",omitempty"`
	// Tags keeps the groups that carry every one of these tags.
	Tags []Tag `json:",omitempty" rpc:"Tag"`
	// Limit is the size of a page (default and at most 100 on the OpenAPI,
	// all on the JSON API); NextToken, from the previous page, asks for the
	// next.
	Limit     int    `json:",omitempty"`
	NextToken string `json:",omitempty"`
}

// DescribeContainerGroupsResponse lists groups, newest first.
type DescribeContainerGroupsResponse struct {
	RequestId string
	Time      time.Time // market time of the answer
	// WallTime is the wall clock at Time, and TimeScale how many times faster
	// than wall time market time runs: together they turn a market time into
	// a wall time (Kubernetes objects carry wall times).
	WallTime  time.Time
	TimeScale float64
	// CheckInterval is the period of the market's checks of a spot group
	// after its protection (5 minutes in ECI), in market time: they fall on
	// a grid anchored at the group's CreationTime.
	CheckInterval time.Duration `json:",omitempty"`
	// TotalCount counts every group that matches, on all pages.
	TotalCount      int
	ContainerGroups []ContainerGroup
	// NextToken asks for the next page; empty on the last.
	NextToken string `json:",omitempty"`
}

// DescribeContainerGroupStatusRequest asks for the status of groups, as
// ECI's DescribeContainerGroupStatus: with SinceSecond only those whose
// status changed lately, which is how a virtual node polls thousands of
// groups. Empty fields match all. ResourceGroupId and VSwitchId, which ECI
// takes too, are accepted and filter nothing: spoteci has neither.
type DescribeContainerGroupStatusRequest struct {
	// ContainerGroupIds picks at most 20 groups by ID, deleted ones too; on
	// the OpenAPI a JSON array in one parameter, as ECI has it.
	ContainerGroupIds []string `json:",omitempty" rpc:"ContainerGroupIds,json"`
	ZoneId            string   `json:",omitempty"`
	// Tags keeps the groups that carry every one of these tags.
	Tags []Tag `json:",omitempty" rpc:"Tag"`
	// SinceSecond keeps the groups whose status (containers, events, IP,
	// notice) changed in the last that many wall seconds, deleted ones
	// too: 60 to 3600, as ECI takes it. Nil: every group but the deleted.
	SinceSecond *int `json:",omitempty"`
	// Limit is the size of a page: 1 to 200, default 200; NextToken, from
	// the previous page, asks for the next.
	Limit     int    `json:",omitempty"`
	NextToken string `json:",omitempty"`
}

// DescribeContainerGroupStatusResponse is one page of statuses, the groups
// that changed last first.
type DescribeContainerGroupStatusResponse struct {
	RequestId string
	// Time is the market time of the answer, WallTime the wall clock then,
	// as in DescribeContainerGroupsResponse.
	Time      time.Time
	WallTime  time.Time
	TimeScale float64
	// TotalCount counts every group that matches, on all pages.
	TotalCount int
	Data       []GroupStatus
	// NextToken asks for the next page; empty on the last.
	NextToken string `json:",omitempty"`
}

// GroupStatus is a group and when its status last changed.
type GroupStatus struct {
	Group ContainerGroup
	// ChangeTime is the wall time of its last change the service saw.
	ChangeTime time.Time
}

// ContainerGroup is the state of a group.
type ContainerGroup struct {
	ContainerGroupId   string
	ContainerGroupName string
	ClientToken        string `json:",omitempty"`
	RegionId           string
	ZoneId             string
	Status             string
	InstanceType       string
	Cpu                float64
	Memory             float64
	SpotStrategy       string
	SpotPriceLimit     float64 `json:",omitempty"`
	SpotDuration       int     // hours
	SpotFallback       bool    `json:",omitempty"`
	// Degraded is true when spot stock was short and the group runs pay-as-you-go.
	Degraded bool `json:",omitempty"`
	// PurchasePrice is the hourly price at creation; Price the one now.
	PurchasePrice float64
	Price         float64
	// Amount is the bill so far, in CNY.
	Amount        float64
	CreationTime  time.Time
	ProtectionEnd time.Time  `json:",omitempty"`
	NoticeTime    *time.Time `json:",omitempty"` // when SpotToBeReleased was sent
	ExpiredTime   *time.Time `json:",omitempty"` // release time: planned after the notice, actual once Expired
	SucceededTime *time.Time `json:",omitempty"` // when the group ended otherwise
	RestartPolicy string
	// IntranetIp is the group's address (the pod IP), once its sandbox is up.
	IntranetIp string `json:",omitempty"`
	Tags       []Tag  `json:",omitempty"`
	Events     []Event
	Containers []ContainerStatus
}

// Event is an ECI event of a group.
type Event struct {
	Type      string // Normal or Warning
	Reason    string
	Message   string
	Timestamp time.Time // market time
	// Container names the container the event is about, if any (image pulls,
	// starts, kills).
	Container string `json:",omitempty"`
}

// ContainerStatus is the state of one container.
type ContainerStatus struct {
	Name     string
	Image    string
	Commands []string
	Args     []string
	// ImageID is the digest of the image run, once pulled.
	ImageID      string `json:",omitempty"`
	CurrentState ContainerState
	// RestartCount counts the restarts of the container (RestartPolicy
	// OnFailure or Always); PreviousState is how its previous run ended.
	RestartCount  int             `json:",omitempty"`
	PreviousState *ContainerState `json:",omitempty"`
}

// ContainerState is ECI's current state of a container.
type ContainerState struct {
	State        string     // Waiting, Running, Terminated
	StartTime    *time.Time `json:",omitempty"`
	FinishTime   *time.Time `json:",omitempty"`
	ExitCode     int
	Reason       string `json:",omitempty"`
	DetailStatus string `json:",omitempty"`
}

// DeleteContainerGroupRequest deletes a group: its containers get SIGTERM and
// the grace period, and billing stops.
type DeleteContainerGroupRequest struct {
	ContainerGroupId string
	// GracePeriodSeconds overrides the group's termination grace period
	// (wall seconds), e.g. to fit before a spot release.
	GracePeriodSeconds *int64 `json:",omitempty"`
}

// RestartContainerGroupRequest restarts the containers of a running group
// in place: SIGTERM, the group's grace period, then each starts again.
type RestartContainerGroupRequest struct {
	ContainerGroupId string
}

// RestartContainerGroupResponse acknowledges a restart.
type RestartContainerGroupResponse struct {
	RequestId string
}

// DeleteContainerGroupResponse acknowledges a delete.
type DeleteContainerGroupResponse struct {
	RequestId string
}

// DescribeContainerGroupPriceRequest asks what a group would cost now.
type DescribeContainerGroupPriceRequest struct {
	RegionId       string  `json:",omitempty"`
	ZoneId         string  `json:",omitempty"`
	InstanceType   string  `json:",omitempty"`
	Cpu            float64 `json:",omitempty"`
	Memory         float64 `json:",omitempty"`
	SpotStrategy   string  `json:",omitempty"`
	SpotPriceLimit Decimal `json:",omitempty"`
}

// DescribeContainerGroupPriceResponse gives the pick and the candidates.
type DescribeContainerGroupPriceResponse struct {
	RequestId string
	Currency  string
	// ZoneId and InstanceType are where a create now would land; empty if
	// nowhere (then Reason says why).
	ZoneId        string
	InstanceType  string
	TradePrice    float64 // hourly price that would be paid
	OriginalPrice float64 // pay-as-you-go hourly price of that type
	Reason        string  `json:",omitempty"`
	SpotPrices    []SpotPrice
}

// SpotPrice is the price of a pool at a moment.
type SpotPrice struct {
	ZoneId       string
	InstanceType string
	SpotPrice    float64
	OriginPrice  float64 // pay-as-you-go
	Timestamp    time.Time
}

// DescribeSpotPriceHistoryRequest asks for a pool's price history, at most 30
// days back; zero times mean the last 30 days.
type DescribeSpotPriceHistoryRequest struct {
	ZoneId       string
	InstanceType string
	StartTime    time.Time `json:",omitzero"`
	EndTime      time.Time `json:",omitzero"`
}

// DescribeSpotPriceHistoryResponse lists the price changes in time order.
type DescribeSpotPriceHistoryResponse struct {
	RequestId  string
	Currency   string
	SpotPrices []SpotPrice
}

// DescribeAvailableResourceRequest filters pools; empty fields match all of
// the service's region.
type DescribeAvailableResourceRequest struct {
	ZoneId       string `json:",omitempty"`
	InstanceType string `json:",omitempty"`
}

// DescribeAvailableResourceResponse lists pools with their price and stock.
type DescribeAvailableResourceResponse struct {
	RequestId string
	Currency  string
	Time      time.Time // market time of the answer
	Resources []Resource
}

// Resource is one pool: an instance type in a zone.
type Resource struct {
	ZoneId        string
	InstanceType  string
	Cpu           int
	Memory        float64
	SpotPrice     float64
	OriginalPrice float64 // pay-as-you-go
	Stock         int     // spot units the pool holds
	Used          int     // held by running spot instances
	Available     int
	// Estimated says the snapshot had no price for this pool: the catalog
	// estimates it (see internal/catalog/NOTICE.md).
	Estimated bool `json:",omitempty"`
}

// DescribeSpotAdviceRequest asks for the discount and interruption rate of
// the pools that match, as ECS's DescribeSpotAdvice does; empty fields match
// every pool of the service's region.
type DescribeSpotAdviceRequest struct {
	ZoneId             string   `json:",omitempty"`
	InstanceTypes      []string `json:",omitempty"`
	InstanceTypeFamily string   `json:",omitempty"`
	Cores              int      `json:",omitempty"`
	Memory             float64  `json:",omitempty"`
	MinCores           int      `json:",omitempty"`
	MinMemory          float64  `json:",omitempty"`
}

// DescribeSpotAdviceResponse is the advice on each pool that matches, over
// the last 30 days of market time.
type DescribeSpotAdviceResponse struct {
	RequestId string
	Time      time.Time // market time of the answer
	Advice    []SpotAdvice
}

// SpotAdvice is what ECS advises of one pool: an instance type in a zone.
type SpotAdvice struct {
	ZoneId       string
	InstanceType string
	// InterruptionRate is a fraction (0.05: 5%); InterruptRateDesc its
	// bucket, as ECS names it: 0-3%, 3-5%, 5-10%, 10-20% or 20-100%.
	InterruptionRate  float64
	InterruptRateDesc string
	// AverageSpotDiscount is the average spot price as a percentage of
	// pay-as-you-go (30: 30% of it).
	AverageSpotDiscount int
}

// DescribeContainerLogRequest reads a container's log.
type DescribeContainerLogRequest struct {
	ContainerGroupId string
	ContainerName    string `json:",omitempty"` // empty: the only container
	Tail             int    `json:",omitempty"` // last lines; 0 = all
	SinceSeconds     int    `json:",omitempty"` // wall seconds, as kubectl logs --since
	Timestamps       bool   `json:",omitempty"`
	// LimitBytes cuts DescribeContainerLog's Content to its first bytes,
	// 1 to 1048576 (MaxLogBytes); 0 is the most, as in ECI.
	LimitBytes int `json:",omitempty"`
	// Follow keeps a StreamContainerLog open while the container runs.
	Follow bool `json:",omitempty" rpc:"-"`
	// Previous reads the log of the container's previous run.
	Previous bool `json:",omitempty"`
}

// MaxLogBytes is the most DescribeContainerLog returns, as in ECI: 1 MiB.
// A followed log (StreamContainerLog) streams without a limit.
const MaxLogBytes = 1 << 20

// DescribeContainerLogResponse carries the log.
type DescribeContainerLogResponse struct {
	RequestId     string
	ContainerName string
	Content       string
}

// ExecContainerCommandRequest asks to run a command in a running container.
type ExecContainerCommandRequest struct {
	ContainerGroupId string
	ContainerName    string
	// On the OpenAPI, Command is a JSON array in one parameter, as ECI has it.
	Command []string `rpc:"Command,json"`
	// TTY gives the command a terminal (stderr then goes to it); Stdin
	// attaches its standard input.
	TTY   bool `json:",omitempty"`
	Stdin bool `json:",omitempty"`
}

// ExecContainerCommandResponse is where to connect, once, within a minute:
// the URL speaks Kubernetes' remote command protocol (SPDY or WebSocket, as
// a kubelet's /exec does), so a kubelet proxies kubectl exec to it.
type ExecContainerCommandResponse struct {
	RequestId    string
	WebSocketUri string
}

// DescribeMultiContainerGroupMetricRequest asks for the resource use of
// groups, now.
type DescribeMultiContainerGroupMetricRequest struct {
	ContainerGroupIds []string `rpc:"ContainerGroupIds,json"`
}

// DescribeMultiContainerGroupMetricResponse holds one sample per running
// group (groups not running are left out).
type DescribeMultiContainerGroupMetricResponse struct {
	RequestId    string
	MonitorDatas []MonitorData
}

// MonitorData is the resource use of one group.
type MonitorData struct {
	ContainerGroupId string
	Records          []MetricRecord
}

// MetricRecord is one sample: the group's and its running containers'.
type MetricRecord struct {
	Timestamp  time.Time // wall time of the sample
	CPU        CPUMetric
	Memory     MemoryMetric
	Containers []ContainerMetric
}

// ContainerMetric is the sample of one container.
type ContainerMetric struct {
	Name      string
	StartTime time.Time // wall time
	CPU       CPUMetric
	Memory    MemoryMetric
}

// CPUMetric is CPU use: cumulative, and the rate since the previous sample.
type CPUMetric struct {
	UsageCoreNanoSeconds uint64
	UsageNanoCores       uint64
}

// MemoryMetric is memory use in bytes.
type MemoryMetric struct {
	UsageBytes uint64
	WorkingSet uint64
	Rss        uint64
}

// DescribeBillRequest filters the bill; empty matches every group.
type DescribeBillRequest struct {
	ContainerGroupIds []string `json:",omitempty"`
	// Tags keeps the groups that carry every one of these tags: one Job's
	// bill without reading every other group's.
	Tags []Tag `json:",omitempty"`
}

// DescribeBillResponse is the bill per group, with the pay-as-you-go cost of
// the same hours for comparison.
type DescribeBillResponse struct {
	RequestId string
	Currency  string
	Time      time.Time // market time of the bill
	// WallTime is the wall clock at Time, and TimeScale how many times
	// faster the market runs: what turns the bill's times into wall times.
	WallTime       time.Time
	TimeScale      float64
	Items          []BillItem
	Amount         float64
	OnDemandAmount float64
}

// BillItem is the bill of one group.
type BillItem struct {
	ContainerGroupId   string
	ContainerGroupName string
	InstanceType       string
	ZoneId             string
	SpotStrategy       string
	Status             string
	Seconds            float64
	Amount             float64
	OnDemandAmount     float64 // the same seconds at the pay-as-you-go price
	// EndTime is when the instance left the market (released, deleted, or
	// its containers ended) and its bill stopped; nil while it runs.
	EndTime *time.Time `json:",omitempty"`
	Lines   []BillLine
	// Tags of the group: the virtual node's name its pod, namespace and Job.
	Tags []Tag `json:",omitempty"`
}

// BillLine is a billed stretch at one hourly price.
type BillLine struct {
	From, To time.Time
	Price    float64
	Amount   float64
}

// ModifySpotMarketRequest is the operator's override of price and stock for
// one type, in one zone or (ZoneId empty) every zone of the region that sells
// it. Reset returns the pools to the model and traces first.
type ModifySpotMarketRequest struct {
	InstanceType string
	ZoneId       string   `json:",omitempty"`
	SpotPrice    *Decimal `json:",omitempty"`
	Stock        *int     `json:",omitempty"`
	Reset        bool     `json:",omitempty"`
}

// ModifySpotMarketResponse lists the pools after the change.
type ModifySpotMarketResponse struct {
	RequestId string
	Time      time.Time
	Resources []Resource
}

// Tags the virtual node puts on the groups of its pods; the service reads
// the owner ones for bills per namespace and Job.
const (
	TagNamespace = "spoteci.io/namespace"
	TagPod       = "spoteci.io/pod"
	TagJob       = "spoteci.io/job"
	// TagDeadline is the deadline of the instance's Job, in RFC 3339 UTC on
	// the wall clock (Kubernetes', not the market's), on the instances of a
	// deadline Job: bills per Job say whether it was met.
	TagDeadline = "spoteci.io/deadline"

	// TagPodUID names the pod by UID, for backends that do not return the
	// ClientToken (and the pod in the kubelet's messages).
	TagPodUID = "spoteci.io/pod-uid"
)
