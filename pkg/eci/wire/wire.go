// Package wire holds the JSON that the ECI and ECS OpenAPI answer, in the
// shapes Alibaba Cloud's official SDK reads, plus one object of spoteci's
// own per group and per listing (Spoteci) that the SDK ignores: protection
// end, notice time, the bill so far, market time. A client that wants those
// decodes the response body (the SDK's GetHttpContentBytes) into these types;
// against the real cloud Spoteci is simply absent.
//
// Times are UTC in the OpenAPI's format, 2006-01-02T15:04:05Z; the service's
// times are market times (they run TimeScale times faster than wall time),
// and Listing.Spoteci turns them into wall times.
package wire

import "time"

// TimeLayout is the format of every time on the wire.
const TimeLayout = "2006-01-02T15:04:05Z"

// Time formats t for the wire; the zero time is "".
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

// ParseTime reads a wire time; "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(TimeLayout, s)
}

// PreciseTime formats t with nanoseconds (RFC 3339), as spoteci's own
// fields carry times that ECI's whole seconds would blur.
func PreciseTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ParsePreciseTime reads a PreciseTime.
func ParsePreciseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// CreateContainerGroupResponse answers CreateContainerGroup.
type CreateContainerGroupResponse struct {
	RequestId        string
	ContainerGroupId string
}

// DescribeContainerGroupsResponse answers DescribeContainerGroups: one page.
type DescribeContainerGroupsResponse struct {
	RequestId string
	// NextToken asks for the next page; empty on the last.
	NextToken       string
	TotalCount      int
	ContainerGroups []ContainerGroup
	Spoteci         *Listing `json:",omitempty"`
}

// Listing is spoteci's own part of a listing: the market clock.
type Listing struct {
	MarketTime string // market time of the answer
	WallTime   string // wall time at MarketTime, with nanoseconds (RFC 3339)
	TimeScale  float64
}

// DescribeContainerGroupStatusResponse answers DescribeContainerGroupStatus:
// one page, the groups whose status changed last first.
type DescribeContainerGroupStatusResponse struct {
	RequestId string
	// NextToken asks for the next page; empty on the last.
	NextToken  string
	TotalCount int
	Data       []ContainerGroupStatus
	Spoteci    *Listing `json:",omitempty"`
}

// ContainerGroupStatus is a group's status as ECI gives it: Kubernetes' pod
// status in ECI's field names.
type ContainerGroupStatus struct {
	ContainerGroupId string
	Name             string // the group's name
	Status           string
	PodStatus        PodStatus
	Spoteci          *StatusDetail `json:",omitempty"`
}

// StatusDetail is spoteci's own part of a status: when it last changed,
// and the group as DescribeContainerGroups shows it (its events, tags and
// bill, which a virtual node needs beside the status), so that a poll
// needs no second call.
type StatusDetail struct {
	// ChangeTime is the wall time of the change, with nanoseconds (RFC
	// 3339): a client that asked for a wider window than it needs (ECI
	// takes at least 60 seconds) keeps what changed since its last poll.
	ChangeTime string
	Group      ContainerGroup
}

// PodStatus is the pod status of a group.
type PodStatus struct {
	Phase             string // Pending, Running, Succeeded, Failed
	Conditions        []PodCondition
	ContainerStatuses []PodContainerStatus
	PodIp             string  `json:",omitempty"`
	PodIps            []PodIP `json:",omitempty"`
	HostIp            string  `json:",omitempty"`
	QosClass          string  `json:",omitempty"`
	StartTime         string  `json:",omitempty"`
}

// PodCondition is a condition of a pod; ECI names its fields in
// lower case, as Kubernetes does.
type PodCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"` // True, False
	LastTransitionTime string `json:"lastTransitionTime"`
	Reason             string `json:",omitempty"`
	Message            string `json:",omitempty"`
}

// PodIP is an address of a pod.
type PodIP struct {
	Ip string
}

// PodContainerStatus is a container's status in a PodStatus.
type PodContainerStatus struct {
	Name         string
	Image        string
	ImageID      string
	Ready        bool
	Started      bool
	RestartCount int
	State        PodContainerState
	LastState    PodContainerState
}

// PodContainerState holds one of a container's three states.
type PodContainerState struct {
	Waiting    *StateWaiting    `json:",omitempty"`
	Running    *StateRunning    `json:",omitempty"`
	Terminated *StateTerminated `json:",omitempty"`
}

// StateWaiting is a container waiting to start.
type StateWaiting struct {
	Reason  string
	Message string
}

// StateRunning is a running container. ECI's wire name for its start is
// StartedAtstartedAt (sic).
type StateRunning struct {
	StartedAt string `json:"StartedAtstartedAt"`
}

// StateTerminated is a container that ended.
type StateTerminated struct {
	ContainerID string `json:",omitempty"`
	ExitCode    int
	Signal      int `json:",omitempty"`
	Reason      string
	Message     string
	StartedAt   string
	FinishedAt  string
}

// ContainerGroup is a group as ECI describes it.
type ContainerGroup struct {
	ContainerGroupId   string
	ContainerGroupName string
	RegionId           string
	ZoneId             string
	Cpu                float64
	Memory             float64 // GiB
	InstanceType       string
	Status             string
	RestartPolicy      string
	IntranetIp         string
	SpotStrategy       string
	SpotPriceLimit     float64
	CreationTime       string
	SucceededTime      string `json:",omitempty"`
	FailedTime         string `json:",omitempty"`
	// ExpiredTime is when a spot group is (or was) released.
	ExpiredTime string `json:",omitempty"`
	Tags        []Tag
	Events      []Event
	Containers  []Container
	Spoteci     *Group `json:",omitempty"`
}

// Group is spoteci's own part of a group.
type Group struct {
	ClientToken   string `json:",omitempty"`
	SpotDuration  int    // hours of protection
	SpotFallback  bool   `json:",omitempty"`
	Degraded      bool   `json:",omitempty"` // spot was short: runs pay-as-you-go
	PurchasePrice float64
	Price         float64 // hourly, now
	Amount        float64 // the bill so far, CNY
	ProtectionEnd string  `json:",omitempty"`
	NoticeTime    string  `json:",omitempty"` // when SpotToBeReleased was sent
	// CreationTime with nanoseconds (RFC 3339).
	CreationTime string
}

// Tag is a label of a group.
type Tag struct {
	Key   string
	Value string
}

// Event is an event of a group, as ECI lists them.
type Event struct {
	Count          int
	Type           string // Normal or Warning
	Name           string // the object: the group, or group.container
	Reason         string
	Message        string
	FirstTimestamp string
	LastTimestamp  string
	Spoteci        *EventDetail `json:",omitempty"`
}

// EventDetail is spoteci's own part of an event.
type EventDetail struct {
	Container string `json:",omitempty"`
	// Timestamp with nanoseconds (RFC 3339), to order events of one second.
	Timestamp string
}

// Container is a container of a group and its state.
type Container struct {
	Name          string
	Image         string
	Cpu           float64
	Memory        float64
	Commands      []string
	Args          []string
	RestartCount  int
	Ready         bool
	CurrentState  ContainerState
	PreviousState ContainerState
	Spoteci       *ContainerDetail `json:",omitempty"`
}

// ContainerDetail is spoteci's own part of a container.
type ContainerDetail struct {
	ImageID string `json:",omitempty"` // digest of the image run
}

// ContainerState is the state of a container: Waiting, Running or
// Terminated.
type ContainerState struct {
	State        string
	DetailStatus string
	ExitCode     int
	StartTime    string
	FinishTime   string
	Reason       string
	Message      string
}

// DeleteContainerGroupResponse answers DeleteContainerGroup.
type DeleteContainerGroupResponse struct {
	RequestId string
}

// RestartContainerGroupResponse answers RestartContainerGroup.
type RestartContainerGroupResponse struct {
	RequestId string
}

// DescribeContainerLogResponse answers DescribeContainerLog.
type DescribeContainerLogResponse struct {
	RequestId     string
	ContainerName string
	Content       string
}

// ExecContainerCommandResponse answers ExecContainerCommand.
type ExecContainerCommandResponse struct {
	RequestId    string
	WebSocketUri string
}

// DescribeContainerGroupPriceResponse answers DescribeContainerGroupPrice.
type DescribeContainerGroupPriceResponse struct {
	RequestId string
	PriceInfo PriceInfo
	Spoteci   *Placement `json:",omitempty"`
}

// Placement is spoteci's own part of a price: where a create now would
// land, or why nowhere.
type Placement struct {
	ZoneId       string `json:",omitempty"`
	InstanceType string `json:",omitempty"`
	Reason       string `json:",omitempty"`
}

// PriceInfo is the price of a group: pay-as-you-go and, for a spot ask,
// the spot prices of the candidate pools.
type PriceInfo struct {
	Price      Price
	SpotPrices []SpotPrice `json:",omitempty"`
}

// Price is an hourly price.
type Price struct {
	OriginalPrice float64
	DiscountPrice float64
	TradePrice    float64
	Currency      string
}

// SpotPrice is the spot price of one pool.
type SpotPrice struct {
	ZoneId       string
	InstanceType string
	SpotPrice    float64
	OriginPrice  float64
}
