// Package prices says what each spot pool (an instance type in a zone) costs
// and how much stock it has, at any moment: a seeded model anchored at the real
// snapshot, the replay of availability traces, and operator overrides on top.
//
// A Book is deterministic: its answers depend only on its seed, its traces and
// its overrides, never on when it is asked. So history is computed, not stored,
// and a restarted service that reloads its overrides sees the same market.
package prices

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// DefaultStock is the spot stock of a pool nobody has set.
const DefaultStock = 10000

// HistoryWindow is how far back DescribeSpotPriceHistory looks.
const HistoryWindow = 30 * 24 * time.Hour

// Override is an operator's setting of one pool from At on. A nil field leaves
// that part as it was; Reset returns both to the model and traces.
type Override struct {
	At       time.Time
	Offering *catalog.Offering
	Price    *float64
	Stock    *int
	Reset    bool
}

// Book is the price and stock source of the market, for the service and the
// simulator alike. It is safe for concurrent use: the API reads it while the
// market loop does.
type Book struct {
	model        Model
	fixed        bool
	defaultStock int

	mu        sync.RWMutex
	overrides map[int][]Override // by offering ID, in time order
	traces    []*Trace

	cacheMu sync.Mutex
	cache   []cachedPrice // the model's price by offering ID, for one step
}

// cachedPrice is a model price: a step's price costs 64 hashed shocks, and a
// listing or a simulation asks for the same one again and again.
type cachedPrice struct {
	step  int64
	valid bool
	price float64
}

var _ market.Prices = (*Book)(nil)

// Config sets up a Book.
type Config struct {
	Seed int64
	// Fixed keeps each pool at its snapshot price instead of the model's
	// (the simulator's fixed market).
	Fixed bool
	// DefaultStock of each pool; 0 means DefaultStock.
	DefaultStock int
}

// NewBook returns a Book of the price model alone.
func NewBook(cfg Config) *Book {
	if cfg.DefaultStock == 0 {
		cfg.DefaultStock = DefaultStock
	}
	return &Book{model: NewModel(cfg.Seed), fixed: cfg.Fixed, defaultStock: cfg.DefaultStock, overrides: map[int][]Override{}}
}

// AddTrace makes a trace decide the stock of the pools it covers.
func (b *Book) AddTrace(t *Trace) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.traces = append(b.traces, t)
}

// Set records an override. Overrides at the same time apply in the order set.
func (b *Book) Set(o Override) error {
	if o.Offering == nil {
		return fmt.Errorf("prices: override without a pool")
	}
	if o.Price != nil && !catalog.ValidPrice(*o.Price) {
		return fmt.Errorf("prices: price %v of %s in %s: want a positive hourly price up to %d", *o.Price, o.Offering.Type.Name, o.Offering.Zone, catalog.MaxPrice)
	}
	if o.Stock != nil && *o.Stock < 0 {
		return fmt.Errorf("prices: stock %d of %s in %s must not be negative", *o.Stock, o.Offering.Type.Name, o.Offering.Zone)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.overrides[o.Offering.ID]
	i, _ := slices.BinarySearchFunc(list, o.At, func(x Override, t time.Time) int {
		return cmp.Or(x.At.Compare(t), -1) // after every override at the same time
	})
	b.overrides[o.Offering.ID] = slices.Insert(list, i, o)
	return nil
}

// Overridden reports whether an operator ever overrode pool o's price or
// stock (a reset counts: the pool was touched).
func (b *Book) Overridden(o *catalog.Offering) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.overrides[o.ID]) > 0
}

// Quote is the spot price and stock of pool o at t.
func (b *Book) Quote(o *catalog.Offering, t time.Time) market.Quote {
	b.mu.RLock()
	defer b.mu.RUnlock()
	price, stock := b.overridden(o, t)
	q := market.Quote{Price: b.basePrice(o, t), Stock: b.baseStock(o, t)}
	if price != nil {
		q.Price = *price
	}
	if stock != nil {
		q.Stock = *stock
	}
	return q
}

// basePrice is the price of o at t before overrides: the model's, or the
// snapshot's in a fixed book.
func (b *Book) basePrice(o *catalog.Offering, t time.Time) float64 {
	if b.fixed {
		return Anchor(o)
	}
	step := stepOf(t)
	b.cacheMu.Lock()
	if o.ID < len(b.cache) {
		if c := b.cache[o.ID]; c.valid && c.step == step {
			b.cacheMu.Unlock()
			return c.price
		}
	}
	b.cacheMu.Unlock()
	p := b.model.Price(o, t)
	b.cacheMu.Lock()
	if o.ID >= len(b.cache) {
		b.cache = append(b.cache, make([]cachedPrice, o.ID+1-len(b.cache))...)
	}
	b.cache[o.ID] = cachedPrice{step: step, valid: true, price: p}
	b.cacheMu.Unlock()
	return p
}

// basePath is basePrice over [from, to), one point per change.
func (b *Book) basePath(o *catalog.Offering, from, to time.Time) []market.PricePoint {
	if b.fixed {
		return []market.PricePoint{{At: from, Price: Anchor(o)}}
	}
	return b.model.Path(o, from, to)
}

// NextChange is the first time after t at which a price or a stock may
// differ from its value at t: the model's next step, a trace's next tick,
// the next override. Zero when nothing ever changes.
func (b *Book) NextChange(t time.Time) time.Time {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var next time.Time
	earliest := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if !b.fixed {
		earliest(stepStart(stepOf(t) + 1))
	}
	for _, tr := range b.traces {
		d := t.Sub(tr.Start)
		k := d / tr.Gap
		if d < 0 && d%tr.Gap != 0 {
			k--
		}
		earliest(tr.Start.Add((k + 1) * tr.Gap))
	}
	for _, list := range b.overrides {
		for _, ov := range list {
			if ov.At.After(t) {
				earliest(ov.At)
				break
			}
		}
	}
	return next
}

// overridden returns the price and stock overrides in force at t, if any.
func (b *Book) overridden(o *catalog.Offering, t time.Time) (price *float64, stock *int) {
	for _, ov := range b.overrides[o.ID] {
		if ov.At.After(t) {
			break
		}
		if ov.Reset {
			price, stock = nil, nil
		}
		if ov.Price != nil {
			price = ov.Price
		}
		if ov.Stock != nil {
			stock = ov.Stock
		}
	}
	return price, stock
}

func (b *Book) baseStock(o *catalog.Offering, t time.Time) int {
	for _, tr := range b.traces {
		if avail, ok := tr.Available(o, t); ok && !avail {
			return 0
		}
	}
	return b.defaultStock
}

// Path is the spot price of o over [from, to): the price at from, then each
// change. Changes come from the model's hourly steps and from overrides.
func (b *Book) Path(o *catalog.Offering, from, to time.Time) []market.PricePoint {
	if !to.After(from) {
		return nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	var path []market.PricePoint
	emit := func(at time.Time, p float64) {
		if n := len(path); n > 0 && path[n-1].Price == p {
			return
		}
		path = append(path, market.PricePoint{At: at, Price: p})
	}
	ovs := b.overrides[o.ID]
	modelPath := b.basePath(o, from, to)
	price, _ := b.overridden(o, from)
	i := 0 // next override after from
	for i < len(ovs) && !ovs[i].At.After(from) {
		i++
	}
	m := 0 // model point in force
	for m+1 < len(modelPath) && !modelPath[m+1].At.After(from) {
		m++
	}
	current := func() float64 {
		if price != nil {
			return *price
		}
		return modelPath[m].Price
	}
	emit(from, current())
	for {
		nextModel, nextOv := to, to
		if m+1 < len(modelPath) {
			nextModel = modelPath[m+1].At
		}
		if i < len(ovs) {
			nextOv = ovs[i].At
		}
		at := nextModel
		if nextOv.Before(at) {
			at = nextOv
		}
		if !at.Before(to) {
			return path
		}
		for m+1 < len(modelPath) && !modelPath[m+1].At.After(at) {
			m++
		}
		for i < len(ovs) && !ovs[i].At.After(at) {
			if ovs[i].Reset {
				price = nil
			}
			if ovs[i].Price != nil {
				price = ovs[i].Price
			}
			i++
		}
		emit(at, current())
	}
}

// Advice is what DescribeSpotAdvice says of a pool over a window: the spot
// price's average share of pay-as-you-go, and how often a spot instance
// there would have been interrupted.
type Advice struct {
	// AverageDiscount is the average spot price over the window as a
	// percentage of the pay-as-you-go price (30: 30% of it, "3折").
	AverageDiscount int
	// InterruptionRate is the share of the window's hours in which the pool
	// had no stock: an instance running then was released at its next
	// check. The model alone never runs out; traces and overrides do.
	InterruptionRate float64
}

// Advice samples pool o hourly over [from, to).
func (b *Book) Advice(o *catalog.Offering, from, to time.Time) Advice {
	var sum float64
	hours, empty := 0, 0
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		q := b.Quote(o, t)
		sum += q.Price
		if q.Stock <= 0 {
			empty++
		}
		hours++
	}
	if hours == 0 || o.OnDemand <= 0 {
		return Advice{}
	}
	return Advice{AverageDiscount: int(math.Round(100 * sum / float64(hours) / o.OnDemand)), InterruptionRate: float64(empty) / float64(hours)}
}
