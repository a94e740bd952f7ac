// Package markettest has a scripted price source and pools for tests of code
// that drives the market.
package markettest

import (
	"cmp"
	"slices"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// Pool returns an offering for tests: a type of 2 vCPU and 4 GiB in zone.
func Pool(id int, zone, typ string, onDemand, spot float64) *catalog.Offering {
	return &catalog.Offering{ID: id, Zone: zone, Region: "test", OnDemand: onDemand, Spot: spot,
		Type: &catalog.InstanceType{Name: typ, VCPU: 2, MemoryGiB: 4}}
}

// Prices is a scripted market.Prices: each pool starts at its snapshot spot
// price with Stock units, and changes only where a test says so.
type Prices struct {
	Stock int
	steps map[int][]step
}

type step struct {
	at    time.Time
	price *float64
	stock *int
}

var _ market.Prices = (*Prices)(nil)

// New returns a script where every pool has stock units.
func New(stock int) *Prices { return &Prices{Stock: stock, steps: map[int][]step{}} }

// SetPrice makes the spot price of o p from at on.
func (s *Prices) SetPrice(o *catalog.Offering, at time.Time, p float64) {
	s.add(o, step{at: at, price: &p})
}

// SetStock makes the stock of o n from at on.
func (s *Prices) SetStock(o *catalog.Offering, at time.Time, n int) {
	s.add(o, step{at: at, stock: &n})
}

func (s *Prices) add(o *catalog.Offering, st step) {
	list := append(s.steps[o.ID], st)
	slices.SortStableFunc(list, func(a, b step) int { return cmp.Compare(a.at.UnixNano(), b.at.UnixNano()) })
	s.steps[o.ID] = list
}

// Quote implements market.Prices.
func (s *Prices) Quote(o *catalog.Offering, t time.Time) market.Quote {
	q := market.Quote{Price: o.Spot, Stock: s.Stock}
	for _, st := range s.steps[o.ID] {
		if st.at.After(t) {
			break
		}
		if st.price != nil {
			q.Price = *st.price
		}
		if st.stock != nil {
			q.Stock = *st.stock
		}
	}
	return q
}

// Path implements market.Prices.
func (s *Prices) Path(o *catalog.Offering, from, to time.Time) []market.PricePoint {
	path := []market.PricePoint{{At: from, Price: s.Quote(o, from).Price}}
	for _, st := range s.steps[o.ID] {
		if st.price == nil || !st.at.After(from) || !st.at.Before(to) {
			continue
		}
		if *st.price != path[len(path)-1].Price {
			path = append(path, market.PricePoint{At: st.at, Price: *st.price})
		}
	}
	return path
}
