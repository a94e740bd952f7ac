package sim

import (
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
)

// Source is the price and stock of every pool in a simulation: the spot price
// from the seeded price model (prices.Model) or fixed at each offering's
// snapshot price, and the stock from availability traces (prices.Trace: a 0
// empties the pools a trace covers) over Stock units.
//
// A Source with the model caches one price per pool and model step, so it is
// not safe for concurrent use; give each goroutine its own.
type Source struct {
	model  *prices.Model
	traces []*prices.Trace
	stock  int
	cache  []cachedPrice // by offering ID
}

type cachedPrice struct {
	step  int64 // UnixNano of the start of the model step
	valid bool
	price float64
}

var _ market.Prices = (*Source)(nil)

// SourceConfig sets up a Source.
type SourceConfig struct {
	// Model prices the pools; nil keeps each offering's snapshot spot price.
	Model *prices.Model
	// Traces decide the stock of the pools they cover.
	Traces []*prices.Trace
	// Stock is the spot stock of a pool when its traces say available;
	// 0 means prices.DefaultStock.
	Stock int
}

// NewSource returns a Source.
func NewSource(cfg SourceConfig) *Source {
	if cfg.Stock == 0 {
		cfg.Stock = prices.DefaultStock
	}
	return &Source{model: cfg.Model, traces: cfg.Traces, stock: cfg.Stock}
}

// Quote implements market.Prices.
func (s *Source) Quote(o *catalog.Offering, t time.Time) market.Quote {
	return market.Quote{Price: s.price(o, t), Stock: s.Stock(o, t)}
}

// Stock is the spot stock of pool o at t.
func (s *Source) Stock(o *catalog.Offering, t time.Time) int {
	for _, tr := range s.traces {
		if avail, ok := tr.Available(o, t); ok && !avail {
			return 0
		}
	}
	return s.stock
}

func (s *Source) price(o *catalog.Offering, t time.Time) float64 {
	if s.model == nil {
		return o.Spot
	}
	// The model moves a price once per step, at multiples of the step.
	step := t.Truncate(prices.ModelStep).UnixNano()
	if o.ID >= len(s.cache) {
		s.cache = append(s.cache, make([]cachedPrice, o.ID+1-len(s.cache))...)
	}
	c := &s.cache[o.ID]
	if !c.valid || c.step != step {
		*c = cachedPrice{step: step, valid: true, price: s.model.Price(o, t)}
	}
	return c.price
}

// Path implements market.Prices.
func (s *Source) Path(o *catalog.Offering, from, to time.Time) []market.PricePoint {
	if !to.After(from) {
		return nil
	}
	if s.model == nil {
		return []market.PricePoint{{At: from, Price: o.Spot}}
	}
	return s.model.Path(o, from, to)
}

// NextChange is the first time after t at which a price or a stock may differ
// from its value at t: the next step of the model, the next tick of a trace.
// Zero when nothing ever changes (fixed prices, no trace).
func (s *Source) NextChange(t time.Time) time.Time {
	var next time.Time
	if s.model != nil {
		next = t.Truncate(prices.ModelStep).Add(prices.ModelStep)
	}
	for _, tr := range s.traces {
		d := t.Sub(tr.Start)
		k := d / tr.Gap
		if d < 0 && d%tr.Gap != 0 {
			k--
		}
		at := tr.Start.Add((k + 1) * tr.Gap)
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}
