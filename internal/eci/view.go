package eci

// The API's picture of a group: its status, containers, events, price and
// bill at a market time, from the market, the runtime and what was kept.

import (
	"cmp"
	"slices"
	"time"

	"github.com/spoteci/spoteci/internal/clock"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// viewer draws groups at one market time. It holds what it reads of the
// service, taken under mu, so that views of snapshots are drawn outside the
// lock: a listing of many groups no longer holds up creates and the market.
type viewer struct {
	now   time.Time
	book  *prices.Book // safe for concurrent use
	clock clock.Scaled
	rt    runtime.Runtime
}

// viewer returns a viewer at market time now. Call with mu held.
func (s *Service) viewer(now time.Time) viewer {
	return viewer{now: now, book: s.book, clock: s.clock, rt: s.rt}
}

// snapshot is a copy of g that the service's later changes leave alone:
// its instance copied, its events cut at their length (they are only ever
// appended). Call with mu held.
func (g *group) snapshot() *group {
	c := *g
	in := *g.inst
	c.inst = &in
	c.events = g.events[:len(g.events):len(g.events)]
	return &c
}

// view is the API's picture of group g (a snapshot, or any group with mu
// held).
func (s viewer) view(g *group) eciapi.ContainerGroup {
	in, now := g.inst, s.now
	live, _ := s.rt.Status(g.ID) // not found: not started yet
	containers := g.containers(live)
	v := eciapi.ContainerGroup{
		ContainerGroupId: g.ID, ContainerGroupName: g.Name, ClientToken: g.ClientToken,
		RegionId: in.Offering.Region, ZoneId: in.Offering.Zone, Status: g.status(containers),
		InstanceType: in.Offering.Type.Name, Cpu: float64(in.Offering.Type.VCPU), Memory: in.Offering.Type.MemoryGiB,
		SpotStrategy: string(in.Bid.Strategy), SpotPriceLimit: in.Bid.Limit, SpotDuration: int(in.Bid.Protection / time.Hour),
		SpotFallback: in.Bid.Fallback, Degraded: in.Degraded,
		PurchasePrice: in.PurchasePrice, Price: s.priceNow(in),
		Amount:       amount(s.book, g, now),
		CreationTime: in.Created, RestartPolicy: cmp.Or(g.Request.RestartPolicy, "Never"), Tags: g.Request.Tags, Events: s.events(g, live.Events),
		IntranetIp: live.IP,
	}
	if in.Spot {
		v.ProtectionEnd = in.ProtectionEnd()
	}
	if !in.NoticeAt.IsZero() {
		v.NoticeTime, v.ExpiredTime = ptr(in.NoticeAt), ptr(in.ReleaseAt)
	}
	if in.State == market.Stopped {
		v.SucceededTime = ptr(in.Ended)
	}
	byName := map[string]runtime.ContainerStatus{}
	for _, c := range containers {
		byName[c.Name] = c
	}
	for _, c := range g.Request.Containers {
		st := byName[c.Name]
		cs := eciapi.ContainerStatus{Name: c.Name, Image: c.Image, Commands: c.Commands, Args: c.Args, ImageID: st.ImageID,
			CurrentState: eciapi.ContainerState{State: string(st.State), ExitCode: st.ExitCode, Reason: st.Reason, DetailStatus: st.Message}}
		if cs.CurrentState.State == "" {
			cs.CurrentState.State = string(runtime.StateWaiting)
		}
		if !st.StartedAt.IsZero() {
			cs.CurrentState.StartTime = ptr(s.clock.MarketAt(st.StartedAt))
		}
		if !st.FinishedAt.IsZero() {
			cs.CurrentState.FinishTime = ptr(s.clock.MarketAt(st.FinishedAt))
		}
		cs.RestartCount = st.RestartCount
		if t := st.LastTerminated; t != nil {
			cs.PreviousState = &eciapi.ContainerState{State: string(runtime.StateTerminated), ExitCode: t.ExitCode, Reason: t.Reason,
				DetailStatus: t.Message, StartTime: ptr(s.clock.MarketAt(t.StartedAt)), FinishTime: ptr(s.clock.MarketAt(t.FinishedAt))}
		}
		v.Containers = append(v.Containers, cs)
	}
	return v
}

// amount is g's bill so far: the closed lines once it ended, else computed.
func amount(book *prices.Book, g *group, now time.Time) float64 {
	if g.inst.State.Ended() {
		return g.Amount
	}
	return market.Total(market.Bill(book, g.inst, now))
}

// containers is the state of g's containers: kept once they ended, else
// the runtime's.
func (g *group) containers(live runtime.Status) []runtime.ContainerStatus {
	if g.Status != "" && g.Containers != nil {
		return g.Containers
	}
	if live.Containers != nil {
		return live.Containers
	}
	return g.Containers
}

// live is the runtime's status of a group (empty until it is started).
func live(rt runtime.Runtime, id string) runtime.Status {
	st, _ := rt.Status(id)
	return st
}

// events are g's own events and the runtime's (image pulls, starts, kills)
// in time order.
func (s viewer) events(g *group, runtimeEvents []runtime.Event) []eciapi.Event {
	out := slices.Clone(g.events)
	for _, e := range runtimeEvents {
		out = append(out, eciapi.Event{Type: e.Type, Reason: e.Reason, Message: e.Message,
			Timestamp: s.clock.MarketAt(e.Time), Container: e.Container})
	}
	slices.SortStableFunc(out, func(a, b eciapi.Event) int { return a.Timestamp.Compare(b.Timestamp) })
	return out
}

// priceNow is the hourly price in is paying at the viewer's time.
func (s viewer) priceNow(in *market.Instance) float64 {
	now := s.now
	if in.State.Ended() {
		return 0
	}
	if !in.Spot || now.Before(in.ProtectionEnd()) {
		return in.PurchasePrice
	}
	return s.book.Quote(in.Offering, now).Price
}

func ptr[T any](v T) *T { return &v }

// statusOf is g's status now. Call with mu held.
func (s *Service) statusOf(g *group) string {
	return g.status(g.containers(live(s.rt, g.ID)))
}
