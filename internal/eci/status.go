package eci

// DescribeContainerGroupStatus, and what makes its SinceSecond cheap: the
// groups kept in the order of their last change, the latest at the back, so
// that "what changed in the last minute" walks what changed, not every group.
// Everything a view shows that a virtual node acts on moves a group to the
// back: its market state (notice, release, end, delete) and events through
// handleReady, and what the runtime changes (containers, IP, its events)
// through the runtime's Notifier.

import (
	"cmp"
	"container/list"
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// Bounds of DescribeContainerGroupStatus, as ECI sets them.
const (
	MinSinceSecond  = 60
	MaxSinceSecond  = 3600
	MaxStatusLimit  = 200 // the default too
	maxStatusGroups = 20  // ContainerGroupIds
)

// changeIndex orders the groups by their last change.
type changeIndex struct {
	order *list.List // of *group, the latest change at the back
	seq   uint64     // of the latest change
	last  time.Time  // wall time of the latest change
}

func (c *changeIndex) reset() { *c = changeIndex{order: list.New()} }

// touch records that g changed at wall time now. Call with mu held.
func (c *changeIndex) touch(g *group, now time.Time) {
	// A wall clock may step back; the order may not.
	now = maxTime(now, c.last)
	c.last = now
	c.seq++
	g.changed, g.changeSeq = now, c.seq
	if g.changeElem != nil {
		c.order.MoveToBack(g.changeElem)
		return
	}
	g.changeElem = c.order.PushBack(g)
}

// wallNow reads the wall clock.
func (s *Service) wallNow() time.Time {
	if s.cfg.Wall != nil {
		return s.cfg.Wall()
	}
	return time.Now()
}

// touch records that g's view changed now. Call with mu held.
func (s *Service) touch(g *group) { s.changes.touch(g, s.wallNow()) }

// touchAll puts every group in the index, in the order they were made, as
// changed now: after a load, nothing is known of their past changes.
func (s *Service) touchAll() {
	s.changes.reset()
	groups := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b *group) int { return -pageOrder(a.inst.Created, a.ID, b.inst.Created, b.ID) })
	for _, g := range groups {
		s.touch(g)
	}
}

// runtimeChanges asks the runtime which groups changed. notified is false
// for a runtime that cannot say (not a runtime.Notifier).
func (s *Service) runtimeChanges() (ids []string, notified bool) {
	n, ok := s.rt.(runtime.Notifier)
	if !ok {
		return nil, false
	}
	return n.Changed(), true
}

// touchRuntime records what the runtime changed. A runtime that cannot say
// may have changed any group whose containers' end is not recorded yet.
// Call with mu held.
func (s *Service) touchRuntime(ids []string, notified bool) {
	if !notified {
		for _, g := range s.groups {
			if g.Containers == nil {
				s.touch(g)
			}
		}
		return
	}
	for _, id := range ids {
		if g, ok := s.groups[id]; ok {
			s.touch(g)
		}
	}
}

// DescribeContainerGroupStatus lists the status of groups, the latest
// changed first, one page at a time. With SinceSecond it walks only the
// groups that changed within that window.
func (s *Service) DescribeContainerGroupStatus(ctx context.Context, req eciapi.DescribeContainerGroupStatusRequest) (eciapi.DescribeContainerGroupStatusResponse, error) {
	var none eciapi.DescribeContainerGroupStatusResponse
	if n := len(req.ContainerGroupIds); n > maxStatusGroups {
		return none, badRequest("ContainerGroupIds", "%d ContainerGroupIds: at most %d at once", n, maxStatusGroups)
	}
	if p := req.SinceSecond; p != nil && (*p < MinSinceSecond || *p > MaxSinceSecond) {
		return none, badRequest("SinceSecond", "SinceSecond %d: want %d to %d seconds", *p, MinSinceSecond, MaxSinceSecond)
	}
	switch {
	case req.Limit == 0:
		req.Limit = MaxStatusLimit
	case req.Limit < 0 || req.Limit > MaxStatusLimit:
		return none, badRequest("Limit", "Limit %d: want 1 to %d", req.Limit, MaxStatusLimit)
	}
	after, err := parseStatusToken(req.NextToken)
	if err != nil {
		return none, err
	}
	page, resp, vw, err := s.statusPage(req, after)
	if err != nil {
		return none, err
	}
	// Views are drawn outside the lock, from snapshots.
	resp.Data = make([]eciapi.GroupStatus, 0, len(page))
	for _, g := range page {
		resp.Data = append(resp.Data, eciapi.GroupStatus{Group: vw.view(g), ChangeTime: g.changed})
	}
	return resp, nil
}

// statusPage picks, under the lock, the groups of one page (snapshots) and
// counts every match. after, from NextToken, is where the page starts: the
// groups changed before or at that change.
func (s *Service) statusPage(req eciapi.DescribeContainerGroupStatusRequest, after *uint64) ([]*group, eciapi.DescribeContainerGroupStatusResponse, viewer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return nil, eciapi.DescribeContainerGroupStatusResponse{}, viewer{}, s.failed
	}
	wallNow := s.wallNow()
	var cutoff time.Time
	if req.SinceSecond != nil {
		cutoff = wallNow.Add(-time.Duration(*req.SinceSecond) * time.Second)
	}
	// A deletion is a change: within a window, and by ID, deleted groups
	// are shown (as Deleted), so that a poll learns of it.
	withDeleted := req.SinceSecond != nil || len(req.ContainerGroupIds) > 0
	total := 0
	var picked []*group
	visit := func(g *group) {
		if g.Deleted && !withDeleted || req.ZoneId != "" && g.inst.Offering.Zone != req.ZoneId || !hasTags(g.Request.Tags, req.Tags) {
			return
		}
		total++
		if after != nil && g.changeSeq > *after {
			return // on an earlier page
		}
		if len(picked) <= req.Limit {
			picked = append(picked, g)
		}
	}
	if len(req.ContainerGroupIds) > 0 {
		var byID []*group
		for _, id := range req.ContainerGroupIds {
			if g, ok := s.groups[id]; ok && !slices.Contains(byID, g) && !g.changed.Before(cutoff) {
				byID = append(byID, g)
			}
		}
		slices.SortFunc(byID, func(a, b *group) int { return cmp.Compare(b.changeSeq, a.changeSeq) })
		for _, g := range byID {
			visit(g)
		}
	} else {
		for e := s.changes.order.Back(); e != nil; e = e.Prev() {
			g := e.Value.(*group)
			if g.changed.Before(cutoff) {
				break // and so did every group before it
			}
			visit(g)
		}
	}
	// The answer's clock is the wall clock the window was cut on, so that a
	// client cuts a narrower one on the same clock as the ChangeTimes.
	resp := eciapi.DescribeContainerGroupStatusResponse{Time: s.clock.MarketAt(wallNow), WallTime: wallNow, TimeScale: s.clock.Scale, TotalCount: total}
	if len(picked) > req.Limit {
		resp.NextToken = statusToken(picked[req.Limit].changeSeq)
		picked = picked[:req.Limit]
	}
	for i, g := range picked {
		picked[i] = g.snapshot()
	}
	return picked, resp, s.viewer(s.core.Now()), nil
}

// A status page's token is the change of the first group of the next page:
// a group that changes meanwhile moves to the front, where the next poll
// finds it, and the pages after it stay as they were.
const statusTokenPrefix = "status/"

func statusToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(statusTokenPrefix + strconv.FormatUint(seq, 10)))
}

func parseStatusToken(s string) (*uint64, error) {
	if s == "" {
		return nil, nil
	}
	bad := badRequest("NextToken", "NextToken %q: not a token of this service's DescribeContainerGroupStatus", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	num, ok := strings.CutPrefix(string(raw), statusTokenPrefix)
	seq, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil {
		return nil, bad
	}
	return &seq, nil
}

// wireStatus shapes a status page as ECI's.
func wireStatus(r eciapi.DescribeContainerGroupStatusResponse) wire.DescribeContainerGroupStatusResponse {
	out := wire.DescribeContainerGroupStatusResponse{NextToken: r.NextToken, TotalCount: r.TotalCount,
		Data:    make([]wire.ContainerGroupStatus, 0, len(r.Data)),
		Spoteci: &wire.Listing{MarketTime: wire.Time(r.Time), WallTime: wire.PreciseTime(r.WallTime), TimeScale: r.TimeScale}}
	for _, d := range r.Data {
		g := d.Group
		out.Data = append(out.Data, wire.ContainerGroupStatus{ContainerGroupId: g.ContainerGroupId, Name: g.ContainerGroupName,
			Status: g.Status, PodStatus: podStatus(g),
			Spoteci: &wire.StatusDetail{ChangeTime: wire.PreciseTime(d.ChangeTime), Group: wireGroup(g)}})
	}
	return out
}

// podStatus is a group's status as a pod's, the way ECI's virtual node
// reports it: phase, conditions, container statuses, IP.
func podStatus(g eciapi.ContainerGroup) wire.PodStatus {
	created := wire.Time(g.CreationTime)
	ps := wire.PodStatus{Phase: podPhase(g.Status), PodIp: g.IntranetIp, StartTime: created}
	if g.IntranetIp != "" {
		ps.PodIps = []wire.PodIP{{Ip: g.IntranetIp}}
	}
	// Ready since the last container started; not ready since the last one
	// ended (or since creation, for containers not started yet).
	readyAt, unreadyAt := g.CreationTime, g.CreationTime
	var unready []string
	for _, c := range g.Containers {
		running := c.CurrentState.State == string(runtime.StateRunning)
		if t := c.CurrentState.StartTime; running && t != nil {
			readyAt = maxTime(readyAt, *t)
		}
		if t := c.CurrentState.FinishTime; t != nil {
			unreadyAt = maxTime(unreadyAt, *t)
		}
		if !running {
			unready = append(unready, c.Name)
		}
		ps.ContainerStatuses = append(ps.ContainerStatuses, wire.PodContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.ImageID,
			Ready: running, Started: running, RestartCount: c.RestartCount,
			State: podContainerState(&c.CurrentState), LastState: podContainerState(c.PreviousState)})
	}
	ready := wire.PodCondition{Status: "True", LastTransitionTime: wire.Time(readyAt)}
	if len(unready) > 0 || len(g.Containers) == 0 {
		// The kubelet's words.
		ready = wire.PodCondition{Status: "False", LastTransitionTime: wire.Time(unreadyAt), Reason: "ContainersNotReady",
			Message: "containers with unready status: [" + strings.Join(unready, " ") + "]"}
	}
	containersReady, podReady := ready, ready
	containersReady.Type, podReady.Type = "ContainersReady", "Ready"
	ps.Conditions = []wire.PodCondition{
		{Type: "PodScheduled", Status: "True", LastTransitionTime: created},
		{Type: "ContainerInstanceCreated", Status: "True", LastTransitionTime: created},
		{Type: "Initialized", Status: "True", LastTransitionTime: created},
		containersReady, podReady,
	}
	return ps
}

// podPhase is the pod phase of an ECI status: an ended group that did not
// succeed failed.
func podPhase(status string) string {
	switch status {
	case eciapi.StatusPending, eciapi.StatusRunning, eciapi.StatusSucceeded:
		return status
	}
	return eciapi.StatusFailed
}

func podContainerState(s *eciapi.ContainerState) wire.PodContainerState {
	if s == nil {
		return wire.PodContainerState{}
	}
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return wire.Time(*t)
	}
	switch s.State {
	case string(runtime.StateRunning):
		return wire.PodContainerState{Running: &wire.StateRunning{StartedAt: at(s.StartTime)}}
	case string(runtime.StateTerminated):
		return wire.PodContainerState{Terminated: &wire.StateTerminated{ExitCode: s.ExitCode, Reason: s.Reason, Message: s.DetailStatus,
			StartedAt: at(s.StartTime), FinishedAt: at(s.FinishTime)}}
	}
	return wire.PodContainerState{Waiting: &wire.StateWaiting{Reason: s.Reason, Message: s.DetailStatus}}
}
