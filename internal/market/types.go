package market

import (
	"errors"
	"fmt"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
)

// Strategy is the bid policy of an instance, named as in the ECI API.
type Strategy string

// The bid policies. NoSpot is an ordinary pay-as-you-go instance.
const (
	NoSpot             Strategy = "NoSpot"
	SpotAsPriceGo      Strategy = "SpotAsPriceGo"
	SpotWithPriceLimit Strategy = "SpotWithPriceLimit"
)

// MaxProtection is the longest protection period accepted: ECS offers 2 to 6
// hours in preview beside the default 1.
const MaxProtection = 6 * time.Hour

// Bid is what the buyer asks of the market.
type Bid struct {
	Strategy Strategy
	// Limit is the highest hourly price, for SpotWithPriceLimit only.
	Limit float64
	// Protection is the protection period, whole hours from 0 to MaxProtection.
	Protection time.Duration
	// Fallback asks for a pay-as-you-go instance when no pool has spot stock
	// at or under the bid.
	Fallback bool
}

// Validate reports whether the bid is one the market accepts.
func (b Bid) Validate() error {
	switch b.Strategy {
	case NoSpot, SpotAsPriceGo:
		if b.Limit != 0 {
			return fmt.Errorf("market: a price limit needs %s, not %s", SpotWithPriceLimit, b.Strategy)
		}
	case SpotWithPriceLimit:
		if !(b.Limit > 0) {
			return fmt.Errorf("market: %s needs a positive price limit, got %v", SpotWithPriceLimit, b.Limit)
		}
	default:
		return fmt.Errorf("market: unknown strategy %q", b.Strategy)
	}
	if b.Protection < 0 || b.Protection > MaxProtection || b.Protection%time.Hour != 0 {
		return fmt.Errorf("market: protection %v is not a whole number of hours from 0 to 6", b.Protection)
	}
	return nil
}

// Spot reports whether the bid asks for a spot instance.
func (b Bid) Spot() bool { return b.Strategy == SpotAsPriceGo || b.Strategy == SpotWithPriceLimit }

// Order asks the market for one instance.
type Order struct {
	ID  string
	Bid Bid
	// Candidates are groups of pools in order of preference (one group per
	// eci-use-specs item); within a group the cheapest pool that can serve wins.
	Candidates [][]*catalog.Offering
}

// State is where an instance stands in the market.
type State uint8

// The states of an instance. Released instances were reclaimed by the market
// (ECI shows them as Expired); Stopped ones left it by deletion or completion.
const (
	Running State = iota + 1
	ToBeReleased
	Released
	Stopped
)

func (s State) String() string {
	switch s {
	case Running:
		return "Running"
	case ToBeReleased:
		return "ToBeReleased"
	case Released:
		return "Expired"
	case Stopped:
		return "Stopped"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Ended reports whether the instance has left the market.
func (s State) Ended() bool { return s == Released || s == Stopped }

// Reason says why an instance is released.
type Reason string

// Release reasons.
const (
	ReasonPrice Reason = "price"
	ReasonStock Reason = "stock"
)

// Instance is the market's record of one instance. The market owns it: callers
// read it (and persist it) but change it only through Core.
type Instance struct {
	ID       string
	Offering *catalog.Offering
	Bid      Bid
	// Spot is false for a pay-as-you-go instance: NoSpot, or Degraded.
	Spot     bool
	Degraded bool
	Created  time.Time
	// PurchasePrice is the hourly price at creation, paid during protection.
	PurchasePrice float64
	State         State
	// NoticeAt and ReleaseAt are set when the release is decided.
	NoticeAt, ReleaseAt time.Time
	Reason              Reason
	// Ended is when the instance left the market (release or stop).
	Ended time.Time

	due int64 // UnixNano of the next check or release; 0 when nothing is scheduled
}

// ProtectionEnd is when the protection period of a spot instance ends.
func (in *Instance) ProtectionEnd() time.Time { return in.Created.Add(in.Bid.Protection) }

// BidPrice is the highest price the instance pays before it is reclaimed.
func (in *Instance) BidPrice() float64 {
	if in.Bid.Strategy == SpotWithPriceLimit {
		return in.Bid.Limit
	}
	return in.Offering.OnDemand
}

// EventKind names what happened to an instance; the names are ECI's events.
type EventKind string

// Event kinds.
const (
	EventCreated      EventKind = "Created"          // eci.ReasonCreated
	EventDegraded     EventKind = "SpotDegraded"     // eci.ReasonSpotDegraded
	EventToBeReleased EventKind = "SpotToBeReleased" // eci.ReasonSpotToBeReleased
	EventReleased     EventKind = "SpotReleased"     // eci.ReasonSpotReleased
	EventStopped      EventKind = "Stopped"
)

// Event is one thing that happened to an instance, at market time At.
type Event struct {
	At       time.Time
	Kind     EventKind
	Instance string
	Message  string
}

// BillLine is one billed stretch of an instance at one hourly price.
type BillLine struct {
	Instance string
	From, To time.Time
	Price    float64 // per hour
	Amount   float64
}

// Seconds is the billed duration.
func (l BillLine) Seconds() float64 { return l.To.Sub(l.From).Seconds() }

// Ready is what the market did since the last call of Core.Ready. Handle it in
// this order: persist Instances, Events and Lines together, then act on Events.
type Ready struct {
	Instances []*Instance // created or changed, each once, in order of first change
	Events    []Event     // in time order
	Lines     []BillLine  // closed bill lines of instances that ended
}

// Empty reports whether there is nothing to handle.
func (rd Ready) Empty() bool {
	return len(rd.Instances) == 0 && len(rd.Events) == 0 && len(rd.Lines) == 0
}

// Errors of Create and Stop; test them with errors.Is.
var (
	ErrInsufficientStock = errors.New("market: no stock in any candidate pool")
	ErrBidBelowMarket    = errors.New("market: the bid is below the market price in every candidate pool with stock")
	ErrNoCandidates      = errors.New("market: no candidate pool")
	ErrNotFound          = errors.New("market: no such instance")
	ErrExists            = errors.New("market: instance exists")
)

// Quote is the state of a pool at one moment.
type Quote struct {
	Price float64 // spot price per hour
	Stock int     // spot units the pool can hold
}

// PricePoint is the price of a pool from At on.
type PricePoint struct {
	At    time.Time
	Price float64
}

// Prices tells the market the price and stock of each pool over time. It must be
// deterministic: the same question gets the same answer, so a restarted service
// and a simulator replay decide exactly as the first run did.
type Prices interface {
	Quote(o *catalog.Offering, t time.Time) Quote
	// Path returns the spot price of o over [from, to): the price at from, then
	// each change before to, in time order.
	Path(o *catalog.Offering, from, to time.Time) []PricePoint
}
