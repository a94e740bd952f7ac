// Package eciprovider is the virtual node's provider on Alibaba Cloud's
// official Go SDK: the same calls drive the local spoteci service and the
// real ECI. It wraps the SDK, which takes no context and whose clients are
// not safe for concurrent use (SDK issue 538), with a pool of clients and
// calls that return when their context ends, and turns the answers into the
// node's types: wall times, typed states and errors.
package eciprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	"github.com/spoteci/spoteci/internal/clock"
	"github.com/spoteci/spoteci/internal/vnode"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// Config says where the ECI endpoint is and who calls it.
type Config struct {
	// Endpoint is host:port of the service ("127.0.0.1:PORT" for the local
	// one); empty lets the SDK find Alibaba Cloud's endpoint of Region.
	Endpoint string
	Region   string
	// AccessKeyID and AccessKeySecret sign the calls.
	AccessKeyID     string
	AccessKeySecret string
	// VSwitchID and SecurityGroupID place instances on the real cloud.
	VSwitchID       string
	SecurityGroupID string
	// Admin is the local service's admin API, if known: kubectl logs -f
	// streams through it; without it a followed log is polled.
	Admin *eciapi.Client
	// PageSize is the Limit of DescribeContainerGroups; default 100.
	PageSize int
	// Clients is how many calls may run at once; default 8.
	Clients int
	// Timeout bounds one call; default 30 s.
	Timeout time.Duration
}

// Provider implements vnode.Provider on the SDK.
type Provider struct {
	cfg     Config
	clients chan *sdkeci.Client

	mu     sync.Mutex
	closed bool
}

var _ vnode.Provider = (*Provider)(nil)

// NoticeLead is ECI's time from the SpotToBeReleased event to the release,
// for a backend that does not say when the release comes.
const NoticeLead = 5 * time.Minute

// New checks cfg and builds the pool of SDK clients.
func New(cfg Config) (*Provider, error) {
	if cfg.Region == "" || cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("eciprovider: Region, AccessKeyID and AccessKeySecret are required")
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 8
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	p := &Provider{cfg: cfg, clients: make(chan *sdkeci.Client, cfg.Clients)}
	for range cfg.Clients {
		c, err := sdkeci.NewClientWithAccessKey(cfg.Region, cfg.AccessKeyID, cfg.AccessKeySecret)
		if err != nil {
			return nil, fmt.Errorf("eciprovider: %w", err)
		}
		if cfg.Endpoint != "" {
			c.Domain = strings.TrimPrefix(strings.TrimPrefix(cfg.Endpoint, "http://"), "https://")
		}
		c.SetConnectTimeout(5 * time.Second)
		c.SetReadTimeout(cfg.Timeout)
		p.clients <- c
	}
	return p, nil
}

// Close shuts the SDK clients down: the idle ones now, those in a call
// when it returns.
func (p *Provider) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for {
		select {
		case c := <-p.clients:
			c.Shutdown()
		default:
			return
		}
	}
}

// giveBack returns a client to the pool, or shuts it down after Close.
func (p *Provider) giveBack(c *sdkeci.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Shutdown()
		return
	}
	p.clients <- c
}

// do runs f with a client of the pool; it returns when f does or ctx ends
// (f then finishes on its own and gives its client back).
func (p *Provider) do(ctx context.Context, f func(*sdkeci.Client) error) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errors.New("eciprovider: closed")
	}
	var c *sdkeci.Client
	select {
	case c = <-p.clients:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		defer p.giveBack(c)
		done <- f(c)
	}()
	select {
	case err := <-done:
		return requestError(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestError turns the SDK's ServerError into the node's typed errors.
func requestError(err error) error {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return vnode.NewRequestError(se.HttpStatus(), se.ErrorCode(), se.Message())
	}
	return err
}

// Create asks for an instance (CreateContainerGroup).
func (p *Provider) Create(ctx context.Context, spec eciapi.CreateContainerGroupRequest) (string, error) {
	req := createRequest(spec)
	req.RegionId = p.cfg.Region
	req.VSwitchId, req.SecurityGroupId = p.cfg.VSwitchID, p.cfg.SecurityGroupID
	var id string
	err := p.do(ctx, func(c *sdkeci.Client) error {
		resp, err := c.CreateContainerGroup(req)
		if err == nil {
			id = resp.ContainerGroupId
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainerGroup %s: %w", spec.ContainerGroupName, err)
	}
	return id, nil
}

// createRequest is spec in the SDK's request. What the SDK has no field
// for (SpotDuration, SpotFallback, HostName) goes in as query parameters.
func createRequest(spec eciapi.CreateContainerGroupRequest) *sdkeci.CreateContainerGroupRequest {
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ZoneId, req.ContainerGroupName, req.ClientToken = spec.ZoneId, spec.ContainerGroupName, spec.ClientToken
	req.InstanceType, req.RestartPolicy = spec.InstanceType, spec.RestartPolicy
	req.SpotStrategy, req.SpotPriceLimit = spec.SpotStrategy, requests.Float(spec.SpotPriceLimit)
	if spec.Cpu > 0 {
		req.Cpu = requests.NewFloat(spec.Cpu)
	}
	if spec.Memory > 0 {
		req.Memory = requests.NewFloat(spec.Memory)
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		req.TerminationGracePeriodSeconds = requests.NewInteger64(*g)
	}
	if spec.SpotDuration != nil {
		req.QueryParams["SpotDuration"] = string(*spec.SpotDuration)
	}
	if spec.SpotFallback {
		req.QueryParams["SpotFallback"] = "true"
	}
	if spec.HostName != "" {
		req.QueryParams["HostName"] = spec.HostName
	}
	tags := make([]sdkeci.CreateContainerGroupTag, 0, len(spec.Tags))
	for _, t := range spec.Tags {
		tags = append(tags, sdkeci.CreateContainerGroupTag{Key: t.Key, Value: t.Value})
	}
	req.Tag = &tags
	var creds []sdkeci.CreateContainerGroupImageRegistryCredential
	for _, c := range spec.ImageRegistryCredentials {
		creds = append(creds, sdkeci.CreateContainerGroupImageRegistryCredential{Server: c.Server, UserName: c.UserName, Password: c.Password})
	}
	if len(creds) > 0 {
		req.ImageRegistryCredential = &creds
	}
	containers := make([]sdkeci.CreateContainerGroupContainer, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		sc := sdkeci.CreateContainerGroupContainer{Name: c.Name, Image: c.Image, ImagePullPolicy: c.ImagePullPolicy,
			Command: c.Commands, Arg: c.Args, WorkingDir: c.WorkingDir}
		if c.Cpu > 0 {
			sc.Cpu = requests.NewFloat(c.Cpu)
		}
		if c.Memory > 0 {
			sc.Memory = requests.NewFloat(c.Memory)
		}
		env := make([]sdkeci.CreateContainerGroupEnvironmentVar, 0, len(c.EnvironmentVars))
		for _, e := range c.EnvironmentVars {
			se := sdkeci.CreateContainerGroupEnvironmentVar{Key: e.Key, Value: e.Value}
			if e.FieldRef != nil {
				se.FieldRef.FieldPath = e.FieldRef.FieldPath
			}
			env = append(env, se)
		}
		sc.EnvironmentVar = &env
		mounts := make([]sdkeci.CreateContainerGroupVolumeMount, 0, len(c.VolumeMounts))
		for _, m := range c.VolumeMounts {
			sm := sdkeci.CreateContainerGroupVolumeMount{Name: m.Name, MountPath: m.MountPath, SubPath: m.SubPath}
			if m.ReadOnly {
				sm.ReadOnly = requests.NewBoolean(true)
			}
			mounts = append(mounts, sm)
		}
		sc.VolumeMount = &mounts
		containers = append(containers, sc)
	}
	req.Container = &containers
	volumes := make([]sdkeci.CreateContainerGroupVolume, 0, len(spec.Volumes))
	for _, v := range spec.Volumes {
		sv := sdkeci.CreateContainerGroupVolume{Name: v.Name, Type: v.Type}
		if v.EmptyDirVolume != nil {
			sv.EmptyDirVolume.Medium = v.EmptyDirVolume.Medium
		}
		if cf := v.ConfigFileVolume; cf != nil {
			if cf.DefaultMode != 0 {
				sv.ConfigFileVolume.DefaultModel = requests.NewInteger(cf.DefaultMode)
			}
			files := make([]sdkeci.CreateContainerGroupConfigFileToPath, 0, len(cf.ConfigFileToPaths))
			for _, f := range cf.ConfigFileToPaths {
				sf := sdkeci.CreateContainerGroupConfigFileToPath{Path: f.Path, Content: f.Content}
				if f.Mode != 0 {
					sf.Mode = requests.NewInteger(f.Mode)
				}
				files = append(files, sf)
			}
			sv.ConfigFileVolume.ConfigFileToPath = &files
		}
		volumes = append(volumes, sv)
	}
	if len(volumes) > 0 {
		req.Volume = &volumes
	}
	return req
}

// List reads every page of the instances carrying tags.
func (p *Provider) List(ctx context.Context, tags map[string]string) ([]vnode.Instance, error) {
	var out []vnode.Instance
	token := ""
	for {
		params := map[string]string{"Limit": strconv.Itoa(p.cfg.PageSize)}
		if token != "" {
			params["NextToken"] = token
		}
		i := 1
		for k, v := range tags {
			params[fmt.Sprintf("Tag.%d.Key", i)], params[fmt.Sprintf("Tag.%d.Value", i)] = k, v
			i++
		}
		page, err := p.describe(ctx, params)
		if err != nil {
			return nil, err
		}
		out = append(out, page.instances()...)
		if token = page.NextToken; token == "" {
			return out, nil
		}
	}
}

// Get reads one instance by ID.
func (p *Provider) Get(ctx context.Context, id string) (*vnode.Instance, error) {
	ids, _ := json.Marshal([]string{id})
	page, err := p.describe(ctx, map[string]string{"ContainerGroupIds": string(ids)})
	if err != nil {
		return nil, err
	}
	for _, in := range page.instances() {
		if in.ID == id {
			return &in, nil
		}
	}
	return nil, nil
}

// describe calls DescribeContainerGroups as the SDK's common request, which
// leaves the body to the caller: a listing of 1,000 groups is parsed once,
// into the wire types with spoteci's extension, not first into the SDK's.
func (p *Provider) describe(ctx context.Context, params map[string]string) (listing, error) {
	req := requests.NewCommonRequest()
	req.Product, req.Version, req.ApiName = "Eci", "2018-08-08", "DescribeContainerGroups"
	req.ServiceCode, req.EndpointType = "eci", "openAPI"
	req.QueryParams["RegionId"] = p.cfg.Region
	for k, v := range params {
		req.QueryParams[k] = v
	}
	var page listing
	err := p.do(ctx, func(c *sdkeci.Client) error {
		resp, err := c.ProcessCommonRequest(req)
		if err != nil {
			return err
		}
		return json.Unmarshal(resp.GetHttpContentBytes(), &page.DescribeContainerGroupsResponse)
	})
	if err != nil {
		return listing{}, fmt.Errorf("DescribeContainerGroups: %w", err)
	}
	return page, nil
}

// Delete deletes an instance; a grace goes in as spoteci's GracePeriodSeconds.
func (p *Provider) Delete(ctx context.Context, id string, grace *int64) error {
	req := sdkeci.CreateDeleteContainerGroupRequest()
	req.RegionId, req.ContainerGroupId = p.cfg.Region, id
	if grace != nil {
		req.QueryParams["GracePeriodSeconds"] = strconv.FormatInt(*grace, 10)
	}
	err := p.do(ctx, func(c *sdkeci.Client) error {
		_, err := c.DeleteContainerGroup(req)
		return err
	})
	if err != nil {
		return fmt.Errorf("DeleteContainerGroup %s: %w", id, err)
	}
	return nil
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
	req := sdkeci.CreateDescribeContainerLogRequest()
	req.RegionId, req.ContainerGroupId, req.ContainerName = p.cfg.Region, r.ContainerGroupId, r.ContainerName
	if r.Tail > 0 {
		req.Tail = requests.NewInteger(r.Tail)
	}
	if r.SinceSeconds > 0 {
		req.SinceSeconds = requests.NewInteger(r.SinceSeconds)
	}
	if r.Timestamps {
		req.QueryParams["Timestamps"] = "true"
	}
	if r.Previous {
		req.QueryParams["Previous"] = "true"
	}
	var content string
	err := p.do(ctx, func(c *sdkeci.Client) error {
		resp, err := c.DescribeContainerLog(req)
		if err == nil {
			content = resp.Content
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("DescribeContainerLog %s: %w", r.ContainerGroupId, err)
	}
	return content, nil
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

func containerRunning(in *vnode.Instance, name string) bool {
	for _, c := range in.Containers {
		if (name == "" || c.Name == name) && c.State.State == vnode.ContainerRunning {
			return true
		}
	}
	return false
}

// Exec asks for a command's stream (ExecContainerCommand).
func (p *Provider) Exec(ctx context.Context, r eciapi.ExecContainerCommandRequest) (string, error) {
	req := sdkeci.CreateExecContainerCommandRequest()
	req.RegionId, req.ContainerGroupId, req.ContainerName = p.cfg.Region, r.ContainerGroupId, r.ContainerName
	cmd, _ := json.Marshal(r.Command)
	req.Command = string(cmd)
	req.TTY = requests.NewBoolean(r.TTY)
	if r.Stdin {
		req.QueryParams["Stdin"] = "true"
	}
	var uri string
	err := p.do(ctx, func(c *sdkeci.Client) error {
		resp, err := c.ExecContainerCommand(req)
		if err == nil {
			uri = resp.WebSocketUri
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ExecContainerCommand %s: %w", r.ContainerGroupId, err)
	}
	return uri, nil
}

// Metrics reads the instances' resource use (DescribeMultiContainerGroupMetric).
func (p *Provider) Metrics(ctx context.Context, ids []string) (eciapi.DescribeMultiContainerGroupMetricResponse, error) {
	req := sdkeci.CreateDescribeMultiContainerGroupMetricRequest()
	req.RegionId = p.cfg.Region
	b, _ := json.Marshal(ids)
	req.ContainerGroupIds = string(b)
	var out eciapi.DescribeMultiContainerGroupMetricResponse
	err := p.do(ctx, func(c *sdkeci.Client) error {
		resp, err := c.DescribeMultiContainerGroupMetric(req)
		if err != nil {
			return err
		}
		return json.Unmarshal(resp.GetHttpContentBytes(), &out)
	})
	if err != nil {
		return out, fmt.Errorf("DescribeMultiContainerGroupMetric: %w", err)
	}
	return out, nil
}

// listing is one page as the service answered it.
type listing struct {
	wire.DescribeContainerGroupsResponse
}

// wall turns the service's times into wall times: the local service's
// market runs TimeScale times faster and says so in its extension; the real
// cloud's times are wall times already.
func (l listing) wall() func(string, string) time.Time {
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

// instances are the groups of the page as the node sees them.
func (l listing) instances() []vnode.Instance {
	wall := l.wall()
	out := make([]vnode.Instance, 0, len(l.ContainerGroups))
	for _, g := range l.ContainerGroups {
		in := vnode.Instance{ID: g.ContainerGroupId, Name: g.ContainerGroupName, Status: vnode.InstanceStatus(g.Status),
			IP: g.IntranetIp, ZoneID: g.ZoneId, InstanceType: g.InstanceType, Tags: map[string]string{},
			Created: wall("", g.CreationTime), ReleaseTime: wall("", g.ExpiredTime)}
		if x := g.Spoteci; x != nil {
			in.Token, in.Degraded = x.ClientToken, x.Degraded
			in.Created = wall(x.CreationTime, g.CreationTime)
			in.NoticeTime = wall("", x.NoticeTime)
		}
		for _, t := range g.Tags {
			in.Tags[t.Key] = t.Value
		}
		for _, e := range g.Events {
			ev := vnode.Event{Type: e.Type, Reason: e.Reason, Message: e.Message, Time: wall("", e.FirstTimestamp)}
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
			cs := vnode.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: c.RestartCount, State: state(c.CurrentState, wall)}
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

func state(s wire.ContainerState, wall func(string, string) time.Time) vnode.ContainerState {
	msg := s.Message
	if msg == "" {
		msg = s.DetailStatus
	}
	return vnode.ContainerState{State: s.State, Reason: s.Reason, Message: msg, ExitCode: s.ExitCode,
		Started: wall("", s.StartTime), Finished: wall("", s.FinishTime)}
}
