// Package eciprovider is the virtual node's provider on Alibaba Cloud's
// official Go SDK (through ecisdk): the same calls drive the local spoteci
// service and the real ECI. It turns the answers into the node's types: wall
// times, typed states and errors.
package eciprovider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/clock"
	"github.com/spoteci/spoteci/internal/ecisdk"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// Config says where the ECI endpoint is and who calls it.
type Config struct {
	ecisdk.Config
	// Admin is the local service's admin API, if known: kubectl logs -f
	// streams through it; without it a followed log is polled.
	Admin *eciapi.Client
	// PageSize is the Limit of DescribeContainerGroups; default 20, ECI's
	// most (the local service takes up to eci.MaxPageSize).
	PageSize int
}

// Provider implements provider.Provider on the SDK.
type Provider struct {
	cfg Config
	sdk *ecisdk.Client
}

var _ provider.Provider = (*Provider)(nil)

// NoticeLead is ECI's time from the SpotToBeReleased event to the release,
// for a backend that does not say when the release comes.
const NoticeLead = 5 * time.Minute

// New checks cfg and builds the SDK's clients.
func New(cfg Config) (*Provider, error) {
	if cfg.PageSize <= 0 {
		cfg.PageSize = maxIDs
	}
	sdk, err := ecisdk.New(cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("eciprovider: %w", err)
	}
	return &Provider{cfg: cfg, sdk: sdk}, nil
}

// Close shuts the SDK's clients down.
func (p *Provider) Close() { p.sdk.Close() }

// requestError turns a refusal into the node's typed errors; a refused
// field comes from the structure the service adds (eci.FieldRefusal), not
// from the words of its message.
func requestError(err error) error {
	var e *eciapi.Error
	if !errors.As(err, &e) {
		return err
	}
	re := provider.NewRequestError(e.HTTPStatus, e.Code, e.Message)
	if r := e.Spoteci; r != nil {
		if f, ok := annotation.FieldByAPI(r.Field); ok {
			re.Field = &annotation.FieldError{Field: f, Value: r.Value, Reason: r.Reason}
		}
	}
	return re
}

// Create asks for an instance (CreateContainerGroup).
func (p *Provider) Create(ctx context.Context, spec eciapi.CreateContainerGroupRequest) (string, error) {
	id, err := p.sdk.CreateContainerGroup(ctx, spec)
	return id, requestError(err)
}

// DryRun is CreateContainerGroup with DryRun: the backend's DryRunOperation
// refusal means the create would succeed. The ClientToken is left out, so
// that a backend that creates anyway (it knows no DryRun) creates a new
// instance, not answers with the pod's: that one is deleted, and an error.
func (p *Provider) DryRun(ctx context.Context, spec eciapi.CreateContainerGroupRequest) error {
	spec.DryRun, spec.ClientToken = true, ""
	id, err := p.sdk.CreateContainerGroup(ctx, spec)
	var e *eciapi.Error
	switch {
	case errors.As(err, &e) && e.Code == eciapi.CodeDryRunOperation:
		return nil
	case err != nil:
		return requestError(err)
	}
	derr := p.Delete(ctx, id, nil)
	if errors.Is(derr, provider.ErrNotFound) {
		derr = nil
	}
	return errors.Join(fmt.Errorf("eciprovider: a dry run of %s created %s: the backend ignores DryRun", spec.ContainerGroupName, id), derr)
}

// List reads every page of the instances carrying tags.
func (p *Provider) List(ctx context.Context, tags map[string]string) ([]provider.Instance, error) {
	var req eciapi.DescribeContainerGroupsRequest
	for k, v := range tags {
		req.Tags = append(req.Tags, eciapi.Tag{Key: k, Value: v})
	}
	all, err := p.sdk.DescribeAllContainerGroups(ctx, req, p.cfg.PageSize)
	if err != nil {
		return nil, requestError(err)
	}
	return instances(all), nil
}

// ECI's bounds: at most 20 ContainerGroupIds a call (and a page of
// DescribeContainerGroups), SinceSecond from 60 to 3600.
const (
	maxIDs         = 20
	minSinceSecond = 60
	// statusPageSize is the Limit of DescribeContainerGroupStatus (ECI's
	// most is 200): the local service answers the latest changes first,
	// and a poll stops at its window, so a small page wastes little.
	statusPageSize = 100
)

// Changed reads the instances whose status changed within since, through
// DescribeContainerGroupStatus with SinceSecond (whole seconds, at least
// ECI's 60). The local service's answer holds each group whole, latest
// change first, with the time of its change: the reading stops at since.
// The real cloud's holds statuses alone: its groups are then read by ID, 20
// at a time, all of ECI's window.
func (p *Provider) Changed(ctx context.Context, tags map[string]string, since time.Duration) ([]provider.Instance, error) {
	if since <= 0 || since > provider.MaxChangedWindow {
		return nil, fmt.Errorf("eciprovider: a window of %s: want up to %s", since, provider.MaxChangedWindow)
	}
	seconds := max(minSinceSecond, int(math.Ceil(since.Seconds())))
	req := eciapi.DescribeContainerGroupStatusRequest{SinceSecond: &seconds, Limit: statusPageSize}
	for k, v := range tags {
		req.Tags = append(req.Tags, eciapi.Tag{Key: k, Value: v})
	}
	var local wire.DescribeContainerGroupsResponse // the groups the answers held whole
	var ids []string                               // those to read by ID
	var cutoff time.Time
	for {
		page, err := p.sdk.DescribeContainerGroupStatus(ctx, req)
		if err != nil {
			return nil, requestError(err)
		}
		if x := page.Spoteci; x != nil && local.Spoteci == nil {
			local.Spoteci = x
			if at, err := wire.ParsePreciseTime(x.WallTime); err == nil {
				cutoff = at.Add(-since)
			}
		}
		older := false
		for _, d := range page.Data {
			x := d.Spoteci
			if x == nil {
				ids = append(ids, d.ContainerGroupId)
				continue
			}
			if at, err := wire.ParsePreciseTime(x.ChangeTime); err == nil && at.Before(cutoff) {
				older = true // and so is every group after it
				break
			}
			local.ContainerGroups = append(local.ContainerGroups, x.Group)
		}
		if req.NextToken = page.NextToken; older || req.NextToken == "" {
			break
		}
	}
	out := instances(local)
	for batch := range slices.Chunk(ids, maxIDs) {
		page, err := p.sdk.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: batch, Limit: maxIDs})
		if err != nil {
			return nil, requestError(err)
		}
		out = append(out, instances(page)...)
	}
	return out, nil
}

// Get reads one instance by ID.
func (p *Provider) Get(ctx context.Context, id string) (*provider.Instance, error) {
	page, err := p.sdk.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		return nil, requestError(err)
	}
	for _, in := range instances(page) {
		if in.ID == id {
			return &in, nil
		}
	}
	return nil, nil
}

// Delete deletes an instance; a grace goes in as spoteci's GracePeriodSeconds.
func (p *Provider) Delete(ctx context.Context, id string, grace *int64) error {
	return requestError(p.sdk.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id, GracePeriodSeconds: grace}))
}

// Logs reads a container's log (DescribeContainerLog). A followed log
// streams through the local service's admin API when there is one, and is
// polled otherwise.
func (p *Provider) Logs(ctx context.Context, r eciapi.DescribeContainerLogRequest) (io.ReadCloser, error) {
	if r.Follow && p.cfg.Admin != nil {
		return p.cfg.Admin.StreamContainerLog(ctx, r)
	}
	content, err := p.readLog(ctx, r)
	if err != nil || !r.Follow {
		return io.NopCloser(strings.NewReader(content)), err
	}
	pr, pw := io.Pipe()
	go p.pollLog(ctx, r, content, pw)
	return pr, nil
}

func (p *Provider) readLog(ctx context.Context, r eciapi.DescribeContainerLogRequest) (string, error) {
	resp, err := p.sdk.DescribeContainerLog(ctx, r)
	return resp.Content, requestError(err)
}

// pollLog writes a followed log: what came first, then every second what
// was added, until the container stops running or ctx ends.
func (p *Provider) pollLog(ctx context.Context, r eciapi.DescribeContainerLogRequest, first string, w *io.PipeWriter) {
	if _, err := io.WriteString(w, first); err != nil {
		return
	}
	sent := len(first) // where the whole log's new part starts
	if r.Tail > 0 || r.SinceSeconds > 0 {
		sent = -1 // unknown: the first read was cut; the next whole read sets it
	}
	r.Tail, r.SinceSeconds = 0, 0
	for {
		select {
		case <-ctx.Done():
			w.CloseWithError(ctx.Err())
			return
		case <-time.After(time.Second):
		}
		content, err := p.readLog(ctx, r)
		if err != nil {
			w.CloseWithError(err)
			return
		}
		if sent < 0 {
			sent = len(content)
		}
		if len(content) > sent {
			if _, err := io.WriteString(w, content[sent:]); err != nil {
				return
			}
			sent = len(content)
		}
		in, err := p.Get(ctx, r.ContainerGroupId)
		if err != nil || in == nil || !containerRunning(in, r.ContainerName) {
			w.Close()
			return
		}
	}
}

func containerRunning(in *provider.Instance, name string) bool {
	for _, c := range in.Containers {
		if (name == "" || c.Name == name) && c.State.State == provider.ContainerRunning {
			return true
		}
	}
	return false
}

// Exec asks for a command's stream (ExecContainerCommand).
func (p *Provider) Exec(ctx context.Context, r eciapi.ExecContainerCommandRequest) (string, error) {
	resp, err := p.sdk.ExecContainerCommand(ctx, r)
	return resp.WebSocketUri, requestError(err)
}

// Metrics reads the instances' resource use (DescribeMultiContainerGroupMetric).
func (p *Provider) Metrics(ctx context.Context, ids []string) (eciapi.DescribeMultiContainerGroupMetricResponse, error) {
	resp, err := p.sdk.DescribeMultiContainerGroupMetric(ctx, eciapi.DescribeMultiContainerGroupMetricRequest{ContainerGroupIds: ids})
	return resp, requestError(err)
}

// Pools reads what the zone, or every zone of the region, sells now as
// spot (ECS's DescribeAvailableResource). Only the local service gives the
// numbers, in its extension; the real cloud's pools come back with
// provider.StockUnknown.
func (p *Provider) Pools(ctx context.Context, zone string) ([]provider.Pool, error) {
	resp, err := p.sdk.DescribeAvailableResource(ctx, wire.DescribeAvailableResourceRequest{DestinationResource: "InstanceType",
		ZoneId: zone, SpotStrategy: eciapi.SpotAsPriceGo})
	if err != nil {
		return nil, requestError(err)
	}
	var out []provider.Pool
	for _, z := range resp.AvailableZones.AvailableZone {
		for _, r := range z.AvailableResources.AvailableResource {
			for _, t := range r.SupportedResources.SupportedResource {
				pool := provider.Pool{Zone: z.ZoneId, InstanceType: t.Value, Stock: provider.StockUnknown}
				if x := t.Spoteci; x != nil {
					pool.VCPU, pool.MemoryGiB, pool.Stock = x.Cpu, x.Memory, x.Stock
				}
				out = append(out, pool)
			}
		}
	}
	return out, nil
}

// Region is the region the SDK calls.
func (p *Provider) Region() string { return p.sdk.Region() }

// wall turns the service's times into wall times: the local service's
// market runs TimeScale times faster and says so in its extension; the real
// cloud's times are wall times already.
func wallClock(l wire.DescribeContainerGroupsResponse) func(string, string) time.Time {
	var c *clock.Scaled
	if x := l.Spoteci; x != nil && x.TimeScale > 0 {
		market, err1 := wire.ParseTime(x.MarketTime)
		wallAt, err2 := wire.ParsePreciseTime(x.WallTime)
		if err1 == nil && err2 == nil {
			c = &clock.Scaled{AnchorMarket: market, AnchorWall: wallAt, Scale: x.TimeScale}
		}
	}
	return func(precise, s string) time.Time {
		t, err := wire.ParsePreciseTime(precise)
		if precise == "" || err != nil {
			if t, err = wire.ParseTime(s); err != nil || t.IsZero() {
				return time.Time{}
			}
		}
		if c == nil {
			return t
		}
		return c.WallAt(t)
	}
}

// instances are the groups of a page as the node sees them.
func instances(l wire.DescribeContainerGroupsResponse) []provider.Instance {
	wall := wallClock(l)
	out := make([]provider.Instance, 0, len(l.ContainerGroups))
	for _, g := range l.ContainerGroups {
		in := provider.Instance{ID: g.ContainerGroupId, Name: g.ContainerGroupName, Status: provider.InstanceStatus(g.Status),
			IP: g.IntranetIp, ZoneID: g.ZoneId, InstanceType: g.InstanceType, Tags: map[string]string{},
			Created: wall("", g.CreationTime), ReleaseTime: wall("", g.ExpiredTime),
			Spot: g.SpotStrategy != "" && g.SpotStrategy != eciapi.NoSpot}
		if x := g.Spoteci; x != nil {
			in.Token, in.Degraded, in.PurchasePrice = x.ClientToken, x.Degraded, x.PurchasePrice
			in.Spot = in.Spot && !x.Degraded
			in.Created = wall(x.CreationTime, g.CreationTime)
			in.NoticeTime = wall("", x.NoticeTime)
		}
		for _, t := range g.Tags {
			in.Tags[t.Key] = t.Value
		}
		for _, e := range g.Events {
			ev := provider.Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Time: wall("", e.FirstTimestamp)}
			if x := e.Spoteci; x != nil {
				ev.Container, ev.Time = x.Container, wall(x.Timestamp, e.FirstTimestamp)
			}
			in.Events = append(in.Events, ev)
		}
		if in.NoticeTime.IsZero() {
			// ECI's own fields: the notice is its event.
			for _, e := range in.Events {
				if e.Reason == eciapi.ReasonSpotToBeReleased {
					in.NoticeTime = e.Time
				}
			}
		}
		if !in.NoticeTime.IsZero() && in.ReleaseTime.IsZero() {
			in.ReleaseTime = in.NoticeTime.Add(NoticeLead)
		}
		for _, c := range g.Containers {
			cs := provider.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: c.RestartCount, State: state(c.CurrentState, wall)}
			if c.Spoteci != nil {
				cs.ImageID = c.Spoteci.ImageID
			}
			if c.PreviousState.State != "" {
				prev := state(c.PreviousState, wall)
				cs.Previous = &prev
			}
			in.Containers = append(in.Containers, cs)
		}
		out = append(out, in)
	}
	return out
}

func state(s wire.ContainerState, wall func(string, string) time.Time) provider.ContainerState {
	msg := s.Message
	if msg == "" {
		msg = s.DetailStatus
	}
	return provider.ContainerState{State: s.State, Reason: s.Reason, Message: msg, ExitCode: s.ExitCode,
		Started: wall("", s.StartTime), Finished: wall("", s.FinishTime)}
}
