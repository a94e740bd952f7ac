package eci

import (
	"container/list"
	"fmt"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// group is a container group as the service keeps it: the request, the
// market's record of its instance, and what became of its containers.
type group struct {
	ID          string
	Name        string
	ClientToken string
	Request     eciapi.CreateContainerGroupRequest
	Market      marketState
	// Status is set once the group ends (Succeeded, Failed, Expired); a live
	// group's status comes from its containers.
	Status string
	// Containers is the last known state of the containers, kept once they end.
	Containers []runtime.ContainerStatus
	Deleted    bool
	// Amount is the total of the group's closed bill lines.
	Amount float64

	inst   *market.Instance
	events []eciapi.Event // as stored, in order; kept in memory for Describe
	// closedBill is an ended group's bill lines as stored, read once: a
	// closed bill never changes, and a bill asked every second (a console
	// following a Job) must not read them from disk each time.
	closedBill []market.BillLine

	// changed is the wall time of the last change of the group's view,
	// changeSeq its order, changeElem its place in the change index
	// (status.go); in memory only.
	changed    time.Time
	changeSeq  uint64
	changeElem *list.Element
}

func (g *group) grace() time.Duration {
	if p := g.Request.TerminationGracePeriodSeconds; p != nil {
		return time.Duration(*p) * time.Second
	}
	return DefaultGrace
}

// marketState is market.Instance as stored: the pool by name.
type marketState struct {
	Zone, Type          string
	Bid                 market.Bid
	Spot, Degraded      bool
	Created             time.Time
	PurchasePrice       float64
	State               market.State
	NoticeAt, ReleaseAt time.Time `json:",omitzero"`
	Reason              market.Reason
	Ended               time.Time `json:",omitzero"`
}

func marketStateOf(in *market.Instance) marketState {
	return marketState{
		Zone: in.Offering.Zone, Type: in.Offering.Type.Name,
		Bid: in.Bid, Spot: in.Spot, Degraded: in.Degraded,
		Created: in.Created, PurchasePrice: in.PurchasePrice, State: in.State,
		NoticeAt: in.NoticeAt, ReleaseAt: in.ReleaseAt, Reason: in.Reason, Ended: in.Ended,
	}
}

func (m marketState) instance(cat *catalog.Catalog, id string) (*market.Instance, error) {
	o, ok := cat.Offering(m.Zone, m.Type)
	if !ok {
		return nil, fmt.Errorf("%s in %s is not in the catalog", m.Type, m.Zone)
	}
	return &market.Instance{
		ID: id, Offering: o, Bid: m.Bid, Spot: m.Spot, Degraded: m.Degraded,
		Created: m.Created, PurchasePrice: m.PurchasePrice, State: m.State,
		NoticeAt: m.NoticeAt, ReleaseAt: m.ReleaseAt, Reason: m.Reason, Ended: m.Ended,
	}, nil
}

// eciEvent says a market event the way ECI does.
func eciEvent(e market.Event) eciapi.Event {
	typ := "Normal"
	switch e.Kind {
	case market.EventToBeReleased, market.EventReleased, market.EventDegraded:
		typ = "Warning"
	}
	return eciapi.Event{Type: typ, Reason: string(e.Kind), Message: e.Message, Timestamp: e.At}
}

// status is the ECI status of a group: its own once ended, else from its
// containers (Pending until one has started).
func (g *group) status(containers []runtime.ContainerStatus) string {
	if g.Status != "" {
		return g.Status
	}
	for _, c := range containers {
		if c.State != runtime.StateWaiting && c.State != "" || c.RestartCount > 0 {
			return eciapi.StatusRunning
		}
	}
	return eciapi.StatusPending
}
