package prices

import (
	"hash/fnv"
	"math"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// The model's parameters. The log price follows an AR(1) process stepped every
// hour: it reverts to the snapshot price with a half-life of about 10 hours and
// wanders about 10% around it, so bids a little above the snapshot usually
// hold and tight ones get reclaimed now and then.
const (
	ModelStep = time.Hour
	phi       = 0.933 // hourly persistence; half-life ln(.5)/ln(phi) ≈ 10 h
	sigma     = 0.036 // hourly shock; stationary sd sigma/sqrt(1-phi²) ≈ 0.1
	window    = 64    // shocks kept: phi^64 ≈ 0.012 of the oldest remains
)

// Model is the seeded price model. The price of a pool in step k depends only
// on the seed, the pool and k: a truncated AR(1) sum of hashed shocks, so any
// moment can be priced without replaying from the beginning, and history is
// the same whenever it is asked for.
type Model struct {
	seed uint64
	pow  [window]float64 // pow[j] = sigma * phi^j
}

// NewModel returns the model for a seed.
func NewModel(seed int64) Model {
	m := Model{seed: uint64(seed)}
	f := sigma
	for j := range m.pow {
		m.pow[j] = f
		f *= phi
	}
	return m
}

// Anchor is the price the model reverts to: the snapshot spot price.
func Anchor(o *catalog.Offering) float64 {
	if o.Spot > 0 {
		return o.Spot
	}
	return o.OnDemand
}

// Floor is the lowest price of o: a tenth of pay-as-you-go, or the snapshot
// price where the real snapshot sits lower (ecs.c5.large in cn-hangzhou-i).
func Floor(o *catalog.Offering) float64 { return min(0.1*o.OnDemand, Anchor(o)) }

// Price is the model's spot price of o at t.
func (m Model) Price(o *catalog.Offering, t time.Time) float64 {
	return m.stepPrice(o, m.poolKey(o), stepOf(t))
}

// Path is the model's price of o over [from, to), one point per change.
func (m Model) Path(o *catalog.Offering, from, to time.Time) []market.PricePoint {
	key := m.poolKey(o)
	k := stepOf(from)
	path := []market.PricePoint{{At: from, Price: m.stepPrice(o, key, k)}}
	for k++; ; k++ {
		at := stepStart(k)
		if !at.Before(to) {
			return path
		}
		if p := m.stepPrice(o, key, k); p != path[len(path)-1].Price {
			path = append(path, market.PricePoint{At: at, Price: p})
		}
	}
}

// stepPrice sums the shocks afresh for every step (no running sum) so that a
// price is the same bits whether it is asked for alone or along a path.
func (m Model) stepPrice(o *catalog.Offering, key uint64, k int64) float64 {
	var x float64
	for j := range window {
		x += m.pow[j] * shock(key, k-int64(j))
	}
	return m.price(o, x)
}

func (m Model) price(o *catalog.Offering, x float64) float64 {
	p := Anchor(o) * math.Exp(x)
	p = math.Min(math.Max(p, Floor(o)), o.OnDemand)
	return math.Round(p*1000) / 1000 // ECS spot prices have 3 decimals
}

func (m Model) poolKey(o *catalog.Offering) uint64 {
	h := fnv.New64a()
	h.Write([]byte(o.Zone))
	h.Write([]byte{0})
	h.Write([]byte(o.Type.Name))
	return h.Sum64() ^ splitmix(m.seed)
}

// stepStart is when model step k begins.
func stepStart(k int64) time.Time { return time.Unix(k*int64(ModelStep/time.Second), 0).UTC() }

func stepOf(t time.Time) int64 {
	s := t.Unix()
	step := int64(ModelStep / time.Second)
	if s < 0 && s%step != 0 {
		return s/step - 1
	}
	return s / step
}

// shock is a standard normal deviate for pool key and step k (Box-Muller on
// two hashed uniforms).
func shock(key uint64, k int64) float64 {
	a := splitmix(key ^ uint64(k)*0x9E3779B97F4A7C15)
	b := splitmix(a)
	u1 := (float64(a>>11) + 0.5) / (1 << 53)
	u2 := float64(b>>11) / (1 << 53)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}
