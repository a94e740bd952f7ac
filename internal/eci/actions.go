package eci

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/openapi"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/spot"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Currency of every price.
const Currency = "CNY"

// APIError is an error with its HTTP status and ECI-style code.
type APIError = openapi.Error

func badRequest(field, format string, args ...any) *APIError {
	return &APIError{Status: 400, Code: "InvalidParameter." + field, Message: fmt.Sprintf(format, args...)}
}

func notFound(id string) *APIError {
	return &APIError{Status: 404, Code: eciapi.CodeNotFound, Message: fmt.Sprintf("container group %q not found", id)}
}

// zonesOf checks the RegionId and ZoneId of a request: the zones a group
// may land in, and where names them in errors.
func (s *Service) zonesOf(region, zone string) (zones []string, where string, err error) {
	if region != "" && region != s.cfg.Region {
		return nil, "", badRequest("RegionId", "RegionId %q: this service sells in %s", region, s.cfg.Region)
	}
	zones, where = s.cat.Zones(s.cfg.Region), s.cfg.Region
	if zone != "" {
		if !s.zones[zone] {
			return nil, "", badRequest("ZoneId", "ZoneId %q is not a zone of %s: want one of %s", zone, s.cfg.Region, strings.Join(zones, ", "))
		}
		zones, where = []string{zone}, zone
	}
	return zones, where, nil
}

// resolve checks what is left of the sizing and spot fields shared by
// CreateContainerGroup and DescribeContainerGroupPrice, against what is
// sold in zones, and returns the market order they make (spot.Order, as
// the simulator makes it).
func (s *Service) resolve(zones []string, where string, cpu, memory float64, sp annotation.Spot, containers []eciapi.Container) (market.Order, error) {
	if cpu == 0 && memory == 0 {
		// The group's size is its containers' unless given.
		for _, c := range containers {
			cpu += c.Cpu
			memory += c.Memory
		}
	}
	o, err := spot.Order(s.cat, sp, cpu, memory, zones, where)
	var se *spot.SizeError
	var ns *spot.NotSoldError
	switch {
	case errors.As(err, new(*annotation.FieldError)):
		return o, refusal(err)
	case errors.As(err, &se):
		return o, badRequest("Cpu", "%s", se.Error())
	case errors.As(err, &ns):
		return o, badRequest("InstanceType", "%s", ns.Error())
	case err != nil:
		return o, badRequest("Spot", "%v", err)
	}
	return o, nil
}

// spotOf parses the spot parameters of a request (annotation.ParseRequest).
func spotOf(strategy string, limit eciapi.Decimal, duration *eciapi.Decimal, fallback bool, instanceType string) (annotation.Spot, error) {
	sp, err := annotation.ParseRequest(strategy, string(limit), (*string)(duration), fallback, instanceType)
	if err != nil {
		return sp, refusal(err)
	}
	return sp, nil
}

// refusal renders a refused field (an *annotation.FieldError) in ECI's
// error format, the field also in spoteci's extension; any other error as
// it is.
func refusal(err error) error {
	var fe *annotation.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return &APIError{Status: 400, Code: fe.Code(), Message: fe.Error(),
		Spoteci: &eciapi.FieldRefusal{Field: fe.Field.API, Value: fe.Value, Reason: fe.Reason}}
}

func marketError(err error) error {
	switch {
	case errors.Is(err, market.ErrInsufficientStock):
		return &APIError{Status: 403, Code: eciapi.CodeNoStock, Message: "no spot stock for the requested specs in any candidate zone; retry later, add specs, or set SpotFallback"}
	case errors.Is(err, market.ErrBidBelowMarket):
		return &APIError{Status: 403, Code: eciapi.CodeBidBelowMarket, Message: "the price limit is below the market price of every candidate with stock; raise SpotPriceLimit or use SpotAsPriceGo"}
	}
	return err
}

// CreateContainerGroup creates a group: an instance in the market and its
// containers on the runtime. A repeated ClientToken returns the first group.
// With DryRun it only checks (dryRun).
func (s *Service) CreateContainerGroup(ctx context.Context, req eciapi.CreateContainerGroupRequest) (eciapi.CreateContainerGroupResponse, error) {
	if err := checkGroupNames(req); err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	if err := checkContainers(req); err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	zones, where, err := s.zonesOf(req.RegionId, req.ZoneId)
	if err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	sp, err := spotOf(req.SpotStrategy, req.SpotPriceLimit, req.SpotDuration, req.SpotFallback, req.InstanceType)
	if err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	o, err := s.resolve(zones, where, req.Cpu, req.Memory, sp, req.Containers)
	if err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	if req.DryRun {
		return eciapi.CreateContainerGroupResponse{}, s.dryRun(ctx, o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.byToken[req.ClientToken]; ok && req.ClientToken != "" {
		return eciapi.CreateContainerGroupResponse{ContainerGroupId: g.ID}, nil
	}
	if err := s.advance(ctx); err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	id := newID()
	g := &group{ID: id, Name: req.ContainerGroupName, ClientToken: req.ClientToken, Request: req}
	s.groups[id] = g
	o.ID = id
	in, err := s.core.Create(s.core.Now(), o)
	if err != nil {
		delete(s.groups, id)
		return eciapi.CreateContainerGroupResponse{}, marketError(err)
	}
	g.inst = in
	if err := s.handleReady(ctx, change{}); err != nil {
		return eciapi.CreateContainerGroupResponse{}, err
	}
	if g.ClientToken != "" {
		s.byToken[g.ClientToken] = g
	}
	s.sup.start(instanceOf(g))
	return eciapi.CreateContainerGroupResponse{ContainerGroupId: id}, nil
}

// dryRun is the rest of a create's checks, the market's pick of a pool for
// o now (stock, price, fallback), with nothing placed, billed, stored or
// told: ECS's DryRunOperation when the create would succeed, the create's
// own error when not. The market is brought up to now first, as for a
// price, so that the pick sees the stock that releases due have freed.
func (s *Service) dryRun(ctx context.Context, o market.Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(ctx); err != nil {
		return err
	}
	if _, err := s.core.Pick(s.core.Now(), o); err != nil {
		return marketError(err)
	}
	return &APIError{Status: 400, Code: eciapi.CodeDryRunOperation, Message: eciapi.DryRunMessage}
}

// Limits of a group, as CreateContainerGroup's: Container.N runs from 1 to 20.
const (
	maxContainers = 20
	// maxContainerName: ECI allows 128; Kubernetes' own names (DNS labels,
	// one character and up) must pass, as the virtual node sends them.
	maxContainerName = 128
)

// dnsLabel is the shape of a Kubernetes container's (and volume's) name:
// lowercase letters, digits and inner hyphens. It also names folders of the
// instance, so nothing else may pass.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkName refuses a container or volume name that is not a DNS label of
// at most maxContainerName characters; what says which one, for the message.
func checkName(field, what, name string) error {
	if len(name) > maxContainerName || !dnsLabel.MatchString(name) {
		return badRequest(field, "%s %s: want lowercase letters, digits and hyphens, starting and ending with a letter or digit, at most %d characters",
			what, annotation.Quote(name), maxContainerName)
	}
	return nil
}

func checkContainers(req eciapi.CreateContainerGroupRequest) error {
	if len(req.Containers) == 0 {
		return badRequest("Container", "a container group needs at least one container")
	}
	if len(req.Containers) > maxContainers {
		return badRequest("Container", "a container group has at most %d containers, not %d", maxContainers, len(req.Containers))
	}
	if p := req.RestartPolicy; p != "" && p != "Never" && p != "OnFailure" && p != "Always" {
		return badRequest("RestartPolicy", "RestartPolicy %q: want Never, OnFailure or Always", p)
	}
	if g := req.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		return badRequest("TerminationGracePeriodSeconds", "TerminationGracePeriodSeconds %d must not be negative", *g)
	}
	volumes, err := checkVolumes(req.Volumes)
	if err != nil {
		return err
	}
	if err := checkStorage(req); err != nil {
		return err
	}
	if err := checkSecurity(req); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, c := range req.Containers {
		if c.Name == "" {
			return badRequest("Container.Name", "container %d has no name", i+1)
		}
		if err := checkName("Container.Name", fmt.Sprintf("container %d: Name", i+1), c.Name); err != nil {
			return err
		}
		if seen[c.Name] {
			return badRequest("Container.Name", "two containers are named %q", c.Name)
		}
		seen[c.Name] = true
		if c.Image == "" {
			return badRequest("Container.Image", "container %q has no Image", c.Name)
		}
		switch c.ImagePullPolicy {
		case "", "Always", "IfNotPresent", "Never":
		default:
			return badRequest("Container.ImagePullPolicy", "container %q: ImagePullPolicy %q: want Always, IfNotPresent or Never", c.Name, c.ImagePullPolicy)
		}
		if c.Cpu < 0 || c.Memory < 0 {
			return badRequest("Container.Cpu", "container %q: Cpu %v and Memory %v must not be negative", c.Name, c.Cpu, c.Memory)
		}
		for _, e := range c.EnvironmentVars {
			if e.Key == "" || strings.ContainsFunc(e.Key, func(r rune) bool { return r == '=' || unicode.IsControl(r) }) {
				return badRequest("Container.EnvironmentVar.Key", "container %q: env key %s: want a non-empty name without '=' or control characters", c.Name, annotation.Quote(e.Key))
			}
			if f := e.FieldRef; f != nil && f.FieldPath != "status.podIP" && f.FieldPath != "status.podIPs" {
				return badRequest("Container.EnvironmentVar.FieldRef.FieldPath", "container %q: env %s: FieldPath %q: want status.podIP (the other fields are known before creation)", c.Name, e.Key, f.FieldPath)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				return badRequest("Container.VolumeMount.Name", "container %q mounts volume %q, which the group does not have", c.Name, m.Name)
			}
			if !path.IsAbs(m.MountPath) {
				return badRequest("Container.VolumeMount.MountPath", "container %q: MountPath %q must be absolute", c.Name, m.MountPath)
			}
			if m.SubPath != "" && !filepath.IsLocal(m.SubPath) {
				return badRequest("Container.VolumeMount.SubPath", "container %q: SubPath %q must be relative and stay inside the volume", c.Name, m.SubPath)
			}
		}
	}
	return nil
}

// checkVolumes checks the group's volumes and returns their names.
func checkVolumes(vs []eciapi.Volume) (map[string]bool, error) {
	names := map[string]bool{}
	for _, v := range vs {
		if v.Name == "" || names[v.Name] {
			return nil, badRequest("Volume.Name", "volume name %s is empty or used twice", annotation.Quote(v.Name))
		}
		if err := checkName("Volume.Name", "volume name", v.Name); err != nil {
			return nil, err
		}
		names[v.Name] = true
		switch v.Type {
		case eciapi.VolumeEmptyDir:
		case eciapi.VolumeConfigFile:
			if v.ConfigFileVolume == nil {
				return nil, badRequest("Volume.ConfigFileVolume", "volume %q of type ConfigFileVolume has no ConfigFileVolume", v.Name)
			}
			for _, f := range v.ConfigFileVolume.ConfigFileToPaths {
				if !filepath.IsLocal(f.Path) {
					return nil, badRequest("Volume.ConfigFileVolume.ConfigFileToPath.Path", "volume %q: Path %q must be relative and stay inside the volume", v.Name, f.Path)
				}
				if _, err := base64.StdEncoding.DecodeString(f.Content); err != nil {
					return nil, badRequest("Volume.ConfigFileVolume.ConfigFileToPath.Content", "volume %q: the Content of %q is not base64: %v", v.Name, f.Path, err)
				}
			}
		default:
			return nil, badRequest("Volume.Type", "volume %q: Type %q: want EmptyDirVolume or ConfigFileVolume", v.Name, v.Type)
		}
	}
	return names, nil
}

// DescribeContainerGroups lists groups, newest first. Deleted groups are left
// out unless asked for by ID. With a Limit it answers one page and a
// NextToken for the next.
func (s *Service) DescribeContainerGroups(ctx context.Context, req eciapi.DescribeContainerGroupsRequest) (eciapi.DescribeContainerGroupsResponse, error) {
	if req.Limit < 0 {
		return eciapi.DescribeContainerGroupsResponse{}, badRequest("Limit", "Limit %d: want a page size from 1", req.Limit)
	}
	after, err := parsePageToken(req.NextToken)
	if err != nil {
		return eciapi.DescribeContainerGroupsResponse{}, err
	}
	page, resp, vw, err := s.page(req, after)
	if err != nil {
		return resp, err
	}
	// Views are drawn outside the lock, from snapshots.
	resp.ContainerGroups = make([]eciapi.ContainerGroup, 0, len(page))
	for _, g := range page {
		resp.ContainerGroups = append(resp.ContainerGroups, vw.view(g))
	}
	return resp, nil
}

// page picks the groups of one page of a listing under the lock and returns
// snapshots of them, the response without its groups, and a viewer.
func (s *Service) page(req eciapi.DescribeContainerGroupsRequest, after *pageToken) ([]*group, eciapi.DescribeContainerGroupsResponse, viewer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A read: the market loop keeps the state current (it wakes when
	// something is due), so a listing writes nothing to disk under the lock.
	if s.failed != nil {
		return nil, eciapi.DescribeContainerGroupsResponse{}, viewer{}, s.failed
	}
	var picked []*group
	if len(req.ContainerGroupIds) > 0 {
		for _, id := range req.ContainerGroupIds {
			if g, ok := s.groups[id]; ok && !slices.Contains(picked, g) {
				picked = append(picked, g)
			}
		}
	} else {
		for _, g := range s.groups {
			if !g.Deleted {
				picked = append(picked, g)
			}
		}
	}
	picked = slices.DeleteFunc(picked, func(g *group) bool {
		return req.ContainerGroupName != "" && g.Name != req.ContainerGroupName || !hasTags(g.Request.Tags, req.Tags) ||
			req.Status != "" && s.statusOf(g) != req.Status
	})
	slices.SortFunc(picked, func(a, b *group) int { return pageOrder(a.inst.Created, a.ID, b.inst.Created, b.ID) })
	now := s.core.Now()
	resp := eciapi.DescribeContainerGroupsResponse{Time: now, WallTime: s.clock.WallAt(now), TimeScale: s.clock.Scale,
		CheckInterval: s.core.CheckInterval(), TotalCount: len(picked)}
	if after != nil {
		picked = picked[sort.Search(len(picked), func(i int) bool {
			return pageOrder(picked[i].inst.Created, picked[i].ID, after.created, after.id) >= 0
		}):]
	}
	if req.Limit > 0 && len(picked) > req.Limit {
		next := picked[req.Limit]
		resp.NextToken = pageToken{created: next.inst.Created, id: next.ID}.String()
		picked = picked[:req.Limit]
	}
	for i, g := range picked {
		picked[i] = g.snapshot()
	}
	return picked, resp, s.viewer(now), nil
}

// pageOrder orders groups newest first, then by ID.
func pageOrder(aCreated time.Time, aID string, bCreated time.Time, bID string) int {
	if c := bCreated.Compare(aCreated); c != 0 {
		return c
	}
	return strings.Compare(aID, bID)
}

// pageToken is where the next page starts: the first group of it, by its
// place in the order (so a page still starts in the right place when that
// group was deleted meanwhile).
type pageToken struct {
	created time.Time
	id      string
}

func (t pageToken) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.created.UnixNano(), 10) + "/" + t.id))
}

func parsePageToken(s string) (*pageToken, error) {
	if s == "" {
		return nil, nil
	}
	bad := badRequest("NextToken", "NextToken %q: not a token of this service's DescribeContainerGroups", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	nanos, id, ok := strings.Cut(string(raw), "/")
	n, err := strconv.ParseInt(nanos, 10, 64)
	if !ok || err != nil {
		return nil, bad
	}
	return &pageToken{created: time.Unix(0, n), id: id}, nil
}

func hasTags(have, want []eciapi.Tag) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// liveGroup is group id unless it is unknown or deleted. Call with mu held.
func (s *Service) liveGroup(id string) (*group, error) {
	g, ok := s.groups[id]
	if !ok || g.Deleted {
		return nil, notFound(id)
	}
	return g, nil
}

// RestartContainerGroup restarts the containers of a Running group in
// place, as ECI does; the instance, its IP and its bill go on.
func (s *Service) RestartContainerGroup(ctx context.Context, req eciapi.RestartContainerGroupRequest) (eciapi.RestartContainerGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.liveGroup(req.ContainerGroupId)
	if err != nil {
		return eciapi.RestartContainerGroupResponse{}, err
	}
	if st := s.statusOf(g); st != eciapi.StatusRunning {
		return eciapi.RestartContainerGroupResponse{}, &APIError{Status: 403, Code: eciapi.CodeIncorrectStatus,
			Message: fmt.Sprintf("container group %s is %s: only a Running group can be restarted", g.ID, st)}
	}
	if err := s.rt.Restart(ctx, g.ID, g.grace()); err != nil {
		return eciapi.RestartContainerGroupResponse{}, fmt.Errorf("restarting %s: %w", g.ID, err)
	}
	return eciapi.RestartContainerGroupResponse{}, nil
}

// DeleteContainerGroup stops billing at once and stops the containers with
// their grace period. Any group can be deleted, an ended one too, and then
// says Deleted; a deleted one is not found, as in ECI, and stays Deleted.
func (s *Service) DeleteContainerGroup(ctx context.Context, req eciapi.DeleteContainerGroupRequest) (eciapi.DeleteContainerGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.liveGroup(req.ContainerGroupId)
	if err != nil {
		return eciapi.DeleteContainerGroupResponse{}, err
	}
	if err := s.advance(ctx); err != nil {
		return eciapi.DeleteContainerGroupResponse{}, err
	}
	if err := s.core.Stop(s.core.Now(), g.ID, "Deleted by DeleteContainerGroup"); err != nil {
		return eciapi.DeleteContainerGroupResponse{}, err
	}
	g.Deleted = true
	g.Status = eciapi.StatusDeleted
	if err := s.handleReady(ctx, change{groups: []*group{g}}); err != nil {
		return eciapi.DeleteContainerGroupResponse{}, err
	}
	grace := g.grace()
	if p := req.GracePeriodSeconds; p != nil {
		grace = time.Duration(max(*p, 0)) * time.Second
	}
	s.sup.stop(g.ID, grace)
	return eciapi.DeleteContainerGroupResponse{}, nil
}

// DescribeContainerGroupPrice says where a group would land now and at what
// price, with the spot price of every candidate pool.
func (s *Service) DescribeContainerGroupPrice(ctx context.Context, req eciapi.DescribeContainerGroupPriceRequest) (eciapi.DescribeContainerGroupPriceResponse, error) {
	zones, where, err := s.zonesOf(req.RegionId, req.ZoneId)
	if err != nil {
		return eciapi.DescribeContainerGroupPriceResponse{}, err
	}
	sp, err := spotOf(req.SpotStrategy, req.SpotPriceLimit, nil, false, req.InstanceType)
	if err != nil {
		return eciapi.DescribeContainerGroupPriceResponse{}, err
	}
	o, err := s.resolve(zones, where, req.Cpu, req.Memory, sp, nil)
	if err != nil {
		return eciapi.DescribeContainerGroupPriceResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(ctx); err != nil {
		return eciapi.DescribeContainerGroupPriceResponse{}, err
	}
	now := s.core.Now()
	resp := eciapi.DescribeContainerGroupPriceResponse{Currency: Currency}
	for _, g := range o.Candidates {
		for _, off := range g {
			resp.SpotPrices = append(resp.SpotPrices, eciapi.SpotPrice{ZoneId: off.Zone, InstanceType: off.Type.Name,
				SpotPrice: s.book.Quote(off, now).Price, OriginPrice: off.OnDemand, Timestamp: now})
		}
	}
	pick, err := s.core.Pick(now, o)
	if err != nil {
		var apiErr *APIError
		if errors.As(marketError(err), &apiErr) {
			resp.Reason = apiErr.Message
			return resp, nil
		}
		return resp, err
	}
	resp.ZoneId, resp.InstanceType = pick.Offering.Zone, pick.Offering.Type.Name
	resp.TradePrice, resp.OriginalPrice = pick.Price, pick.Offering.OnDemand
	return resp, nil
}

// DescribeSpotPriceHistory is the price history of a type, per zone, over at
// most the last 30 days.
func (s *Service) DescribeSpotPriceHistory(ctx context.Context, req eciapi.DescribeSpotPriceHistoryRequest) (eciapi.DescribeSpotPriceHistoryResponse, error) {
	pools, err := s.pools(req.ZoneId, req.InstanceType, true)
	if err != nil {
		return eciapi.DescribeSpotPriceHistoryResponse{}, err
	}
	now := s.Now()
	from, to := req.StartTime, req.EndTime
	if to.IsZero() || to.After(now) {
		to = now
	}
	if from.IsZero() || from.Before(now.Add(-prices.HistoryWindow)) {
		from = now.Add(-prices.HistoryWindow)
	}
	if !from.Before(to) {
		return eciapi.DescribeSpotPriceHistoryResponse{}, badRequest("StartTime", "StartTime %s must be before EndTime %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	resp := eciapi.DescribeSpotPriceHistoryResponse{Currency: Currency}
	for _, o := range pools {
		for _, p := range s.book.Path(o, from, to) {
			resp.SpotPrices = append(resp.SpotPrices, eciapi.SpotPrice{ZoneId: o.Zone, InstanceType: o.Type.Name,
				SpotPrice: p.Price, OriginPrice: o.OnDemand, Timestamp: p.At})
		}
	}
	return resp, nil
}

// pools lists the service's pools, filtered by zone and type (each may be
// empty unless needType).
func (s *Service) pools(zone, typ string, needType bool) ([]*catalog.Offering, error) {
	if zone != "" && !s.zones[zone] {
		return nil, badRequest("ZoneId", "ZoneId %q is not a zone of %s", zone, s.cfg.Region)
	}
	if typ == "" && needType {
		return nil, badRequest("InstanceType", "InstanceType is required")
	}
	if _, ok := s.cat.Type(typ); typ != "" && !ok {
		return nil, badRequest("InstanceType", "unknown instance type %q", typ)
	}
	var out []*catalog.Offering
	for _, o := range s.cat.Offerings() {
		if s.zones[o.Zone] && (zone == "" || o.Zone == zone) && (typ == "" || o.Type.Name == typ) {
			out = append(out, o)
		}
	}
	if len(out) == 0 && typ != "" {
		where := s.cfg.Region
		if zone != "" {
			where = zone
		}
		return nil, badRequest("InstanceType", "%s is not sold in %s", typ, where)
	}
	return out, nil
}

// DescribeAvailableResource lists pools with their price and stock now.
func (s *Service) DescribeAvailableResource(ctx context.Context, req eciapi.DescribeAvailableResourceRequest) (eciapi.DescribeAvailableResourceResponse, error) {
	pools, err := s.pools(req.ZoneId, req.InstanceType, false)
	if err != nil {
		return eciapi.DescribeAvailableResourceResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(ctx); err != nil {
		return eciapi.DescribeAvailableResourceResponse{}, err
	}
	now := s.core.Now()
	return eciapi.DescribeAvailableResourceResponse{Currency: Currency, Time: now, Resources: s.resources(pools, now)}, nil
}

func (s *Service) resources(pools []*catalog.Offering, now time.Time) []eciapi.Resource {
	out := make([]eciapi.Resource, 0, len(pools))
	for _, o := range pools {
		q := s.book.Quote(o, now)
		held := s.core.Held(o)
		out = append(out, eciapi.Resource{ZoneId: o.Zone, InstanceType: o.Type.Name, Cpu: o.Type.VCPU, Memory: o.Type.MemoryGiB,
			SpotPrice: q.Price, OriginalPrice: o.OnDemand, Stock: q.Stock, Used: held, Available: max(q.Stock-held, 0), Estimated: o.Estimated})
	}
	return out
}

// DescribeContainerLog returns a container's log, at most LimitBytes of it
// (1 MiB, as in ECI): the log is streamed from its file, never read whole.
func (s *Service) DescribeContainerLog(ctx context.Context, req eciapi.DescribeContainerLogRequest) (eciapi.DescribeContainerLogResponse, error) {
	if req.LimitBytes < 0 || req.LimitBytes > eciapi.MaxLogBytes {
		return eciapi.DescribeContainerLogResponse{}, badRequest("LimitBytes", "LimitBytes %d: want 1 to %d", req.LimitBytes, eciapi.MaxLogBytes)
	}
	req.Follow = false
	rc, name, err := s.OpenLog(req)
	if err != nil {
		return eciapi.DescribeContainerLogResponse{}, err
	}
	defer rc.Close()
	content, err := io.ReadAll(io.LimitReader(rc, int64(cmp.Or(req.LimitBytes, eciapi.MaxLogBytes))))
	if err != nil {
		return eciapi.DescribeContainerLogResponse{}, fmt.Errorf("reading log of %s/%s: %w", req.ContainerGroupId, name, err)
	}
	return eciapi.DescribeContainerLogResponse{ContainerName: name, Content: string(content)}, nil
}

// OpenLog opens a container's log, following it if asked. A deleted group's
// log stays readable by its ID, like its Describe.
func (s *Service) OpenLog(req eciapi.DescribeContainerLogRequest) (io.ReadCloser, string, error) {
	s.mu.Lock()
	g, ok := s.groups[req.ContainerGroupId]
	s.mu.Unlock()
	if !ok {
		return nil, "", notFound(req.ContainerGroupId)
	}
	name := req.ContainerName
	if name == "" {
		if len(g.Request.Containers) != 1 {
			return nil, "", badRequest("ContainerName", "group %s has %d containers: name one", g.ID, len(g.Request.Containers))
		}
		name = g.Request.Containers[0].Name
	}
	if !slices.ContainsFunc(g.Request.Containers, func(c eciapi.Container) bool { return c.Name == name }) {
		return nil, "", badRequest("ContainerName", "group %s has no container %q", g.ID, name)
	}
	if req.Tail < 0 || req.SinceSeconds < 0 {
		return nil, "", badRequest("Tail", "Tail %d and SinceSeconds %d must not be negative", req.Tail, req.SinceSeconds)
	}
	opts := runtime.LogOptions{Tail: -1, Follow: req.Follow, Timestamps: req.Timestamps, Previous: req.Previous}
	if req.Tail > 0 {
		opts.Tail = req.Tail
	}
	if req.SinceSeconds > 0 {
		opts.SinceTime = time.Now().Add(-time.Duration(req.SinceSeconds) * time.Second)
	}
	rc, err := s.rt.Log(g.ID, name, opts)
	if errors.Is(err, runtime.ErrNotFound) && req.Previous {
		return nil, "", badRequest("Previous", "previous terminated container %q in group %s not found", name, g.ID)
	}
	if errors.Is(err, runtime.ErrNotFound) {
		return io.NopCloser(strings.NewReader("")), name, nil // not started yet
	}
	if err != nil {
		return nil, "", fmt.Errorf("opening log of %s/%s: %w", g.ID, name, err)
	}
	return rc, name, nil
}

// DescribeBill is the bill of every group (deleted ones too), with what the
// same seconds would have cost pay-as-you-go.
func (s *Service) DescribeBill(ctx context.Context, req eciapi.DescribeBillRequest) (eciapi.DescribeBillResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(ctx); err != nil {
		return eciapi.DescribeBillResponse{}, err
	}
	now := s.core.Now()
	resp := eciapi.DescribeBillResponse{Currency: Currency, Time: now, WallTime: s.clock.WallAt(now), TimeScale: s.clock.Scale}
	want := map[string]bool{}
	for _, id := range req.ContainerGroupIds {
		if _, ok := s.groups[id]; !ok {
			return resp, notFound(id)
		}
		want[id] = true
	}
	for _, g := range s.groups {
		if len(want) > 0 && !want[g.ID] || !hasTags(g.Request.Tags, req.Tags) {
			continue
		}
		in := g.inst
		var lines []market.BillLine
		if in.State.Ended() {
			if g.closedBill == nil {
				stored, err := s.store.billLines(ctx, g.ID)
				if err != nil {
					return resp, err
				}
				if stored == nil {
					stored = []market.BillLine{} // read: none (nil is not read yet)
				}
				g.closedBill = stored
			}
			lines = g.closedBill
		} else {
			lines = market.Bill(s.book, in, now)
		}
		item := eciapi.BillItem{ContainerGroupId: g.ID, ContainerGroupName: g.Name, InstanceType: in.Offering.Type.Name,
			ZoneId: in.Offering.Zone, SpotStrategy: string(in.Bid.Strategy), Status: s.statusOf(g), Tags: g.Request.Tags}
		if in.State.Ended() {
			end := in.Ended
			item.EndTime = &end
		}
		for _, l := range lines {
			item.Seconds += l.Seconds()
			item.Amount += l.Amount
			item.Lines = append(item.Lines, eciapi.BillLine{From: l.From, To: l.To, Price: l.Price, Amount: l.Amount})
		}
		item.OnDemandAmount = paygAmount(in.Offering, item.Seconds)
		resp.Amount += item.Amount
		resp.OnDemandAmount += item.OnDemandAmount
		resp.Items = append(resp.Items, item)
	}
	slices.SortFunc(resp.Items, func(a, b eciapi.BillItem) int { return strings.Compare(a.ContainerGroupId, b.ContainerGroupId) })
	return resp, nil
}

// paygAmount is what seconds of pool o cost pay-as-you-go: the bills'
// measure of savings.
func paygAmount(o *catalog.Offering, seconds float64) float64 {
	return seconds * o.OnDemand / 3600
}

// ModifySpotMarket sets the price and/or stock of a type in one zone or every
// zone of the region, from now on: how operators and tests force a reclaim.
func (s *Service) ModifySpotMarket(ctx context.Context, req eciapi.ModifySpotMarketRequest) (eciapi.ModifySpotMarketResponse, error) {
	pools, err := s.pools(req.ZoneId, req.InstanceType, true)
	if err != nil {
		return eciapi.ModifySpotMarketResponse{}, err
	}
	var price *float64
	if req.SpotPrice != nil {
		p, err := strconv.ParseFloat(string(*req.SpotPrice), 64)
		if err != nil || !catalog.ValidPrice(p) {
			return eciapi.ModifySpotMarketResponse{}, badRequest("SpotPrice", "SpotPrice %q: want a positive hourly price up to %d", string(*req.SpotPrice), catalog.MaxPrice)
		}
		price = &p
	}
	if req.Stock != nil && *req.Stock < 0 {
		return eciapi.ModifySpotMarketResponse{}, badRequest("Stock", "Stock %d must not be negative", *req.Stock)
	}
	if price == nil && req.Stock == nil && !req.Reset {
		return eciapi.ModifySpotMarketResponse{}, badRequest("SpotPrice", "set SpotPrice, Stock or Reset")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(ctx); err != nil {
		return eciapi.ModifySpotMarketResponse{}, err
	}
	now := s.core.Now()
	var overrides []prices.Override
	for _, o := range pools {
		overrides = append(overrides, prices.Override{At: now, Offering: o, Price: price, Stock: req.Stock, Reset: req.Reset})
	}
	// Persist first: an override the book knows but the disk does not would
	// change history after a restart.
	if err := s.handleReady(ctx, change{overrides: overrides}); err != nil {
		return eciapi.ModifySpotMarketResponse{}, err
	}
	for _, o := range overrides {
		if err := s.book.Set(o); err != nil {
			return eciapi.ModifySpotMarketResponse{}, err
		}
	}
	s.metrics.overrides.Add(float64(len(overrides)))
	return eciapi.ModifySpotMarketResponse{Time: now, Resources: s.resources(pools, now)}, nil
}
