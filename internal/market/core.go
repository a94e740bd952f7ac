package market

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
)

// Defaults of Config.
const (
	DefaultCheckInterval = 5 * time.Minute
	DefaultNoticeLead    = 5 * time.Minute
	// DefaultShortCooldown is how long a pool that ran short of stock is
	// avoided: a protection period's length.
	DefaultShortCooldown = time.Hour
)

// Config sets up a Core.
type Config struct {
	Prices Prices
	// CheckInterval is the period of the checks after protection (default 5m).
	CheckInterval time.Duration
	// NoticeLead is the time from SpotToBeReleased to the release. Zero
	// releases at the check itself (AWS-like rules, for the simulator); the
	// service uses DefaultNoticeLead.
	NoticeLead time.Duration
	// ShortCooldown is how long a pool whose stock ran short at a check is
	// avoided by new orders that have another candidate in the same
	// preference group, as Karpenter avoids an offering that ran out
	// (default DefaultShortCooldown; negative: never avoided).
	ShortCooldown time.Duration
}

// Core is the spot market: a synchronous, deterministic state machine. It is
// not safe for concurrent use; the caller serialises calls.
type Core struct {
	cfg       Config
	now       time.Time
	instances map[string]*Instance
	// pools counts, per offering ID, the spot instances holding stock: those
	// running or noticed (they hold their unit until release) and those not yet
	// noticed (active: the ones a stock shortage can still release).
	held, active map[int]int
	// due holds the instances with a check or release at each time; whenTimes is
	// a min-heap of its keys. Many instances share a time (those created in the
	// same second share their whole grid), so a check over a crowd is a loop.
	due       map[int64][]*Instance
	whenTimes []int64
	quotes    quoteCache
	// short holds, per offering ID, when its stock last ran short at a check.
	short   map[int]time.Time
	ready   Ready
	changed map[*Instance]bool
}

// New returns an empty market.
func New(cfg Config) *Core {
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	cfg.NoticeLead = max(cfg.NoticeLead, 0)
	if cfg.ShortCooldown == 0 {
		cfg.ShortCooldown = DefaultShortCooldown
	}
	return &Core{
		cfg:       cfg,
		instances: map[string]*Instance{},
		held:      map[int]int{},
		active:    map[int]int{},
		due:       map[int64][]*Instance{},
		short:     map[int]time.Time{},
		changed:   map[*Instance]bool{},
		quotes:    quoteCache{prices: cfg.Prices},
	}
}

// Now is the market time the core has advanced to.
func (c *Core) Now() time.Time { return c.now }

// Get returns the instance with the given ID.
func (c *Core) Get(id string) (*Instance, bool) {
	in, ok := c.instances[id]
	return in, ok
}

// Held returns the spot units held in the pool of o.
func (c *Core) Held(o *catalog.Offering) int { return c.held[o.ID] }

// NextDue returns when Advance next has something to do; zero if nothing.
func (c *Core) NextDue() time.Time {
	if len(c.whenTimes) == 0 {
		return time.Time{}
	}
	return time.Unix(0, c.whenTimes[0]).UTC()
}

// Ready returns what happened since the last call and forgets it.
func (c *Core) Ready() Ready {
	rd := c.ready
	c.ready = Ready{}
	clear(c.changed)
	return rd
}

// Restore loads instances saved from an earlier run whose market had advanced
// to now. Checks missed while the caller was away are due at once, so the next
// Advance replays them in order with the prices of their time.
func (c *Core) Restore(now time.Time, saved []*Instance) error {
	c.now = now
	sorted := slices.Clone(saved)
	slices.SortFunc(sorted, func(a, b *Instance) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	for _, in := range sorted {
		if _, ok := c.instances[in.ID]; ok {
			return fmt.Errorf("restoring %s: %w", in.ID, ErrExists)
		}
		c.instances[in.ID] = in
		if in.Reason == ReasonStock && in.NoticeAt.After(c.short[in.Offering.ID]) {
			c.short[in.Offering.ID] = in.NoticeAt // what the market remembers, it rebuilds
		}
		if in.State.Ended() || !in.Spot {
			continue
		}
		c.held[in.Offering.ID]++
		switch in.State {
		case Running:
			c.active[in.Offering.ID]++
			c.schedule(in, c.checkAfter(in, now))
		case ToBeReleased:
			c.schedule(in, in.ReleaseAt)
		}
	}
	return nil
}

// Create places an order at time now. On success the instance is running; its
// events are in the next Ready.
func (c *Core) Create(now time.Time, o Order) (*Instance, error) {
	c.advanceClock(now)
	if _, ok := c.instances[o.ID]; ok {
		return nil, fmt.Errorf("creating %s: %w", o.ID, ErrExists)
	}
	pick, err := c.Pick(now, o)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", o.ID, err)
	}
	in := &Instance{ID: o.ID, Bid: o.Bid, Created: now, State: Running,
		Offering: pick.Offering, PurchasePrice: pick.Price, Spot: pick.Spot, Degraded: pick.Degraded}
	if !in.Spot {
		c.add(in, "Created pay-as-you-go instance of "+in.Offering.Type.Name+" in "+in.Offering.Zone+" at "+formatPrice(in.PurchasePrice)+"/h")
		if in.Degraded {
			why := "Spot stock is insufficient for the requested specs"
			if pick.Short == ErrBidBelowMarket {
				why = "No spot stock for the requested specs is at or under the price limit " + formatPrice(in.Bid.Limit) + "/h"
			}
			c.emit(Event{At: now, Kind: EventDegraded, Instance: in.ID, Message: why + "; created a pay-as-you-go instance instead"})
		}
		return in, nil
	}
	c.held[in.Offering.ID]++
	c.active[in.Offering.ID]++
	msg := "Created spot instance of " + in.Offering.Type.Name + " in " + in.Offering.Zone + " at " + formatPrice(in.PurchasePrice) +
		"/h, bid " + formatPrice(in.BidPrice()) + "/h (" + string(in.Bid.Strategy) + "), protection " + formatHours(in.Bid.Protection)
	for _, o := range pick.Avoided {
		msg += "; avoided " + o.Type.Name + " in " + o.Zone + ": its spot stock ran short at " + c.short[o.ID].Format(time.RFC3339)
	}
	c.add(in, msg)
	c.schedule(in, c.checkAfter(in, now))
	return in, nil
}

// Pick is where an order placed at now would land, without placing it.
type Pick struct {
	Offering *catalog.Offering
	Price    float64 // hourly price at purchase
	Spot     bool
	Degraded bool // pay-as-you-go because no spot stock is at or under the bid
	// Avoided are cheaper pools passed over because their stock ran short
	// lately (Config.ShortCooldown).
	Avoided []*catalog.Offering
	// Short says why a degraded order got no spot: ErrInsufficientStock or
	// ErrBidBelowMarket.
	Short error
}

// Pick decides where order o would land at now: the rule Create applies, for
// price enquiries too.
func (c *Core) Pick(now time.Time, o Order) (Pick, error) {
	if err := o.Bid.Validate(); err != nil {
		return Pick{}, err
	}
	if !slices.ContainsFunc(o.Candidates, func(g []*catalog.Offering) bool { return len(g) > 0 }) {
		return Pick{}, ErrNoCandidates
	}
	if !o.Bid.Spot() {
		od := cheapestOnDemand(o.Candidates)
		return Pick{Offering: od, Price: od.OnDemand}, nil
	}
	pick, price, avoided, err := c.pickSpot(now, o.Bid, o.Candidates)
	switch {
	case err == nil:
		return Pick{Offering: pick, Price: price, Spot: true, Avoided: avoided}, nil
	case (err == ErrInsufficientStock || err == ErrBidBelowMarket) && o.Bid.Fallback:
		// As the guide has it: fallback is for want of stock that meets the
		// specs *and* the maximum price.
		od := cheapestOnDemand(o.Candidates)
		return Pick{Offering: od, Price: od.OnDemand, Degraded: true, Short: err}, nil
	}
	return Pick{}, err
}

// pickSpot finds the pool of the first preference group that can take the bid:
// the cheapest with stock and a price at or below the bid that has not run
// short lately, else the cheapest that has. It also returns the pools it
// passed over for having run short.
func (c *Core) pickSpot(now time.Time, bid Bid, candidates [][]*catalog.Offering) (*catalog.Offering, float64, []*catalog.Offering, error) {
	sawPrice := false
	type option struct {
		o *catalog.Offering
		q Quote
	}
	var options []option
	for _, group := range candidates {
		options = options[:0]
		for _, o := range group {
			options = append(options, option{o, c.quotes.at(o, now)})
		}
		slices.SortStableFunc(options, func(a, b option) int {
			return cmp.Or(cmp.Compare(a.q.Price, b.q.Price), cmp.Compare(a.o.Zone, b.o.Zone), cmp.Compare(a.o.Type.Name, b.o.Type.Name))
		})
		var avoided []*catalog.Offering // cheaper, but ran short lately
		avoidedPrice := 0.0             // the first one's
		for _, op := range options {
			if c.held[op.o.ID] >= op.q.Stock {
				continue
			}
			limit := op.o.OnDemand
			if bid.Strategy == SpotWithPriceLimit {
				limit = bid.Limit
			}
			if op.q.Price > limit {
				sawPrice = true
				continue
			}
			if c.cooling(op.o, now) {
				if len(avoided) == 0 {
					avoidedPrice = op.q.Price
				}
				avoided = append(avoided, op.o)
				continue
			}
			return op.o, op.q.Price, avoided, nil
		}
		if len(avoided) > 0 {
			return avoided[0], avoidedPrice, nil, nil // the group has nothing else
		}
	}
	if sawPrice {
		return nil, 0, nil, ErrBidBelowMarket
	}
	return nil, 0, nil, ErrInsufficientStock
}

// cooling says whether pool o ran short of stock within the cooldown.
func (c *Core) cooling(o *catalog.Offering, now time.Time) bool {
	at, ok := c.short[o.ID]
	return ok && c.cfg.ShortCooldown > 0 && now.Before(at.Add(c.cfg.ShortCooldown))
}

// Stop takes an instance out of the market at now (deleted, or its containers
// finished). Stopping an ended instance does nothing.
func (c *Core) Stop(now time.Time, id, why string) error {
	c.advanceClock(now)
	in, ok := c.instances[id]
	if !ok {
		return fmt.Errorf("stopping %s: %w", id, ErrNotFound)
	}
	if in.State.Ended() {
		return nil
	}
	if in.State == Running && in.Spot {
		c.active[in.Offering.ID]--
	}
	c.end(in, Stopped, now)
	c.emit(Event{At: now, Kind: EventStopped, Instance: id, Message: why})
	return nil
}

// Advance runs every check and release due at or before now, in time order.
func (c *Core) Advance(now time.Time) {
	for len(c.whenTimes) > 0 && c.whenTimes[0] <= now.UnixNano() {
		at := c.popTime()
		t := time.Unix(0, at).UTC()
		c.advanceClock(t)
		list := c.due[at]
		delete(c.due, at)
		// Instances that pass their check are due again together: reuse the
		// slice for them and schedule it in one step.
		kept := list[:0]
		for _, in := range list {
			if in.due != at {
				continue // stale: rescheduled or stopped since
			}
			switch in.State {
			case Running:
				if c.check(in, t) {
					kept = append(kept, in)
				}
			case ToBeReleased:
				c.release(in, t)
			}
		}
		if len(kept) > 0 {
			next := t.Add(c.cfg.CheckInterval)
			for _, in := range kept {
				in.due = next.UnixNano()
			}
			c.scheduleAll(next, kept)
		}
	}
	c.advanceClock(now)
}

// check is the 5-minute check of a running spot instance after protection. It
// reports whether the instance passed and is due at the next check.
func (c *Core) check(in *Instance, t time.Time) bool {
	q := c.quotes.at(in.Offering, t)
	switch {
	case q.Price > in.BidPrice():
		in.Reason = ReasonPrice
	case c.active[in.Offering.ID] > q.Stock:
		in.Reason = ReasonStock
		c.short[in.Offering.ID] = t
	default:
		return true
	}
	c.active[in.Offering.ID]--
	in.State = ToBeReleased
	in.NoticeAt, in.ReleaseAt = t, t.Add(c.cfg.NoticeLead)
	c.touch(in)
	c.emit(Event{At: t, Kind: EventToBeReleased, Instance: in.ID,
		Message: "Spot ECI will be released in " + formatLead(c.cfg.NoticeLead)})
	c.schedule(in, in.ReleaseAt)
	return false
}

func (c *Core) release(in *Instance, t time.Time) {
	c.end(in, Released, t)
	var why string
	if in.Reason == ReasonPrice {
		why = fmt.Sprintf("the market price %s/h exceeded the bid %s/h", formatPrice(c.quotes.at(in.Offering, in.NoticeAt).Price), formatPrice(in.BidPrice()))
	} else {
		why = "the stock of " + in.Offering.Type.Name + " in " + in.Offering.Zone + " ran out"
	}
	c.emit(Event{At: t, Kind: EventReleased, Instance: in.ID,
		Message: "The spot instance was released at " + t.Format(time.RFC3339) + ": " + why})
}

func (c *Core) end(in *Instance, s State, t time.Time) {
	if in.Spot {
		c.held[in.Offering.ID]--
	}
	in.State, in.Ended, in.due = s, t, 0
	c.touch(in)
	c.ready.Lines = append(c.ready.Lines, Bill(c.cfg.Prices, in, t)...)
}

// checkAfter is the first check of in strictly after t.
func (c *Core) checkAfter(in *Instance, t time.Time) time.Time {
	return NextCheck(in.Created, in.Bid.Protection, c.cfg.CheckInterval, t)
}

// CheckInterval is the period of the checks after protection.
func (c *Core) CheckInterval() time.Duration { return c.cfg.CheckInterval }

// The checks of a spot instance fall on a grid of period step anchored at
// its creation: the first at the end of its protection rounded up to the
// grid, never at creation itself, then every step.

// firstCheck is the first check of an instance.
func firstCheck(created time.Time, protection, step time.Duration) time.Time {
	return created.Add(max(step, ceilTo(protection, step)))
}

// NextCheck is the first check strictly after t of a spot instance created
// at created with the given protection, checked every step.
func NextCheck(created time.Time, protection, step time.Duration, t time.Time) time.Time {
	if first := firstCheck(created, protection, step); t.Before(first) {
		return first
	}
	return created.Add((t.Sub(created)/step + 1) * step)
}

// ChecksBefore is the checks strictly before t of the same instance: how
// many, the first and the last; n is 0 (and the times zero) when none.
func ChecksBefore(created time.Time, protection, step time.Duration, t time.Time) (first, last time.Time, n int) {
	first = firstCheck(created, protection, step)
	if !first.Before(t) {
		return time.Time{}, time.Time{}, 0
	}
	last = created.Add((t.Sub(created) - 1) / step * step)
	return first, last, int(last.Sub(first)/step) + 1
}

func ceilTo(d, step time.Duration) time.Duration { return (d + step - 1) / step * step }

func (c *Core) add(in *Instance, msg string) {
	c.instances[in.ID] = in
	c.touch(in)
	c.emit(Event{At: in.Created, Kind: EventCreated, Instance: in.ID, Message: msg})
}

func (c *Core) touch(in *Instance) {
	if !c.changed[in] {
		c.changed[in] = true
		c.ready.Instances = append(c.ready.Instances, in)
	}
}

func (c *Core) emit(e Event) { c.ready.Events = append(c.ready.Events, e) }

func (c *Core) advanceClock(t time.Time) {
	if t.After(c.now) {
		c.now = t
	}
}

func (c *Core) schedule(in *Instance, t time.Time) {
	in.due = t.UnixNano()
	c.scheduleAll(t, []*Instance{in})
}

func (c *Core) scheduleAll(t time.Time, ins []*Instance) {
	k := t.UnixNano()
	list, ok := c.due[k]
	if !ok {
		c.pushTime(k)
		c.due[k] = ins
		return
	}
	c.due[k] = append(list, ins...)
}

// pushTime and popTime keep whenTimes a binary min-heap.
func (c *Core) pushTime(k int64) {
	h := append(c.whenTimes, k)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p] <= h[i] {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	c.whenTimes = h
}

func (c *Core) popTime() int64 {
	h := c.whenTimes
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l] < h[m] {
			m = l
		}
		if r < n && h[r] < h[m] {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	c.whenTimes = h
	return top
}

func cheapestOnDemand(groups [][]*catalog.Offering) *catalog.Offering {
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		return slices.MinFunc(g, func(a, b *catalog.Offering) int {
			return cmp.Or(cmp.Compare(a.OnDemand, b.OnDemand), cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Type.Name, b.Type.Name))
		})
	}
	return nil
}

// quoteCache asks Prices once per pool and moment: a check over a crowd of
// instances in few pools then costs a slice lookup per instance.
type quoteCache struct {
	prices  Prices
	entries []cachedQuote // by offering ID
}

type cachedQuote struct {
	at    int64
	valid bool
	q     Quote
}

func (qc *quoteCache) at(o *catalog.Offering, t time.Time) Quote {
	if o.ID >= len(qc.entries) {
		qc.entries = slices.Grow(qc.entries, o.ID+1-len(qc.entries))[:o.ID+1]
	}
	k := t.UnixNano()
	e := &qc.entries[o.ID]
	if e.valid && e.at == k {
		return e.q
	}
	*e = cachedQuote{at: k, valid: true, q: qc.prices.Quote(o, t)}
	return e.q
}

func formatPrice(p float64) string { return strconv.FormatFloat(p, 'g', 4, 64) }

func formatHours(d time.Duration) string {
	h := d.Hours()
	if h == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%g hours", h)
}

// formatLead says a notice lead the way the guide does: "5 minutes".
func formatLead(d time.Duration) string {
	if d%time.Minute == 0 {
		if m := int(d / time.Minute); m == 1 {
			return "1 minute"
		} else {
			return fmt.Sprintf("%d minutes", m)
		}
	}
	return fmt.Sprintf("%d seconds", int(math.Round(d.Seconds())))
}
