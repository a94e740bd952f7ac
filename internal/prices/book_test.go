package prices_test

import (
	"math"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/market/markettest"
	"github.com/spoteci/spoteci/internal/prices"
)

var t0 = time.Date(2026, 4, 8, 0, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestModelIsAnchoredAndBounded(t *testing.T) {
	pool := markettest.Pool(0, "cn-beijing-h", "ecs.c6.large", 0.39, 0.088)
	m := prices.NewModel(1)
	var sum float64
	var n int
	changes := 0
	prev := -1.0
	for h := range 30 * 24 {
		p := m.Price(pool, t0.Add(time.Duration(h)*time.Hour+17*time.Minute))
		if p < 0.039 || p > 0.39 {
			t.Fatalf("hour %d: price %v outside [0.1 x pay-as-you-go, pay-as-you-go]", h, p)
		}
		if p != math.Round(p*1000)/1000 {
			t.Fatalf("price %v has more than 3 decimals", p)
		}
		if p != prev {
			changes++
		}
		prev = p
		sum += p
		n++
	}
	if mean := sum / float64(n); math.Abs(mean-0.088)/0.088 > 0.1 {
		t.Errorf("30-day mean %v strays from the snapshot price 0.088", mean)
	}
	if changes < 100 {
		t.Errorf("only %d changes in 720 hours: the model barely moves", changes)
	}
	if other := prices.NewModel(2).Price(pool, t0); other == m.Price(pool, t0) && prices.NewModel(3).Price(pool, t0) == other {
		t.Errorf("seeds 1, 2 and 3 give the same price: the seed is ignored")
	}
	// The snapshot can sit below a tenth of pay-as-you-go; the floor follows it.
	c5 := markettest.Pool(1, "cn-hangzhou-i", "ecs.c5.large", 0.622, 0.056)
	if f := prices.Floor(c5); f != 0.056 {
		t.Errorf("floor of ecs.c5.large %v, want its snapshot 0.056", f)
	}
}

// Path and Quote must agree to the bit: billing uses one, checks the other.
func TestPathAgreesWithQuote(t *testing.T) {
	pool := markettest.Pool(0, "cn-beijing-h", "ecs.c6.large", 0.39, 0.088)
	b := prices.NewBook(prices.Config{Seed: 7})
	if err := b.Set(prices.Override{At: t0.Add(50 * time.Hour), Offering: pool, Price: ptr(0.3)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(prices.Override{At: t0.Add(60*time.Hour + 30*time.Second), Offering: pool, Reset: true}); err != nil {
		t.Fatal(err)
	}
	from, to := t0.Add(90*time.Second), t0.Add(100*time.Hour)
	path := b.Path(pool, from, to)
	if !path[0].At.Equal(from) {
		t.Fatalf("path starts at %v, want %v", path[0].At, from)
	}
	for i, p := range path {
		end := to
		if i+1 < len(path) {
			end = path[i+1].At
			if path[i+1].Price == p.Price {
				t.Errorf("point %d repeats the price %v", i+1, p.Price)
			}
		}
		for at := p.At; at.Before(end); at = at.Add(13 * time.Minute) {
			if q := b.Quote(pool, at).Price; q != p.Price {
				t.Fatalf("at %v: quote %v, path %v", at, q, p.Price)
			}
		}
	}
	if q := b.Quote(pool, t0.Add(55*time.Hour)).Price; q != 0.3 {
		t.Errorf("override: price %v, want 0.3", q)
	}
	if q, m := b.Quote(pool, t0.Add(61*time.Hour)).Price, prices.NewModel(7).Price(pool, t0.Add(61*time.Hour)); q != m {
		t.Errorf("after reset: price %v, want the model's %v", q, m)
	}
}

func TestStockFromOverridesAndTraces(t *testing.T) {
	pool := markettest.Pool(0, "cn-beijing-h", "ecs.c6.large", 0.39, 0.088)
	other := markettest.Pool(1, "cn-beijing-i", "ecs.c6.large", 0.39, 0.088)
	b := prices.NewBook(prices.Config{Seed: 1, DefaultStock: 50})
	tr, err := prices.ParseTrace([]byte(`{"metadata": {"gap_seconds": 600}, "data": [1, 1, 0, 1]}`))
	if err != nil {
		t.Fatal(err)
	}
	tr.Start, tr.Zone = t0, "cn-beijing-h"
	b.AddTrace(tr)
	for _, c := range []struct {
		at    time.Duration
		stock int
	}{{0, 50}, {19 * time.Minute, 50}, {20 * time.Minute, 0}, {29 * time.Minute, 0}, {30 * time.Minute, 50}, {40 * time.Minute, 50}, {60 * time.Minute, 0}, {70 * time.Minute, 50}} {
		if got := b.Quote(pool, t0.Add(c.at)).Stock; got != c.stock {
			t.Errorf("trace at +%v: stock %d, want %d", c.at, got, c.stock)
		}
	}
	if got := b.Quote(other, t0.Add(20*time.Minute)).Stock; got != 50 {
		t.Errorf("the trace covers only cn-beijing-h, yet cn-beijing-i has stock %d", got)
	}
	b.Set(prices.Override{At: t0.Add(2 * time.Hour), Offering: other, Stock: ptr(0)})
	if got := b.Quote(other, t0.Add(3*time.Hour)).Stock; got != 0 {
		t.Errorf("override: stock %d, want 0", got)
	}
	if err := b.Set(prices.Override{At: t0, Offering: other, Stock: ptr(-1)}); err == nil {
		t.Error("negative stock accepted")
	}
	if err := b.Set(prices.Override{At: t0, Offering: other, Price: ptr(0.0)}); err == nil {
		t.Error("zero price accepted")
	}
	for _, bad := range []string{`{"metadata": {"gap_seconds": 0}, "data": [1]}`, `{"metadata": {"gap_seconds": 60}, "data": [2]}`, `{"data": []}`, `nope`} {
		if _, err := prices.ParseTrace([]byte(bad)); err == nil {
			t.Errorf("trace %s accepted", bad)
		}
	}
}

func TestAdvice(t *testing.T) {
	pool := markettest.Pool(0, "cn-beijing-h", "ecs.c6.large", 0.39, 0.088)
	b := prices.NewBook(prices.Config{Seed: 1})
	to := t0.Add(100 * time.Hour)
	a := b.Advice(pool, t0, to)
	if a.InterruptionRate != 0 || a.AverageDiscount < 10 || a.AverageDiscount > 100 {
		t.Fatalf("model alone: %+v, want no interruption and a discount within [10, 100]", a)
	}
	if err := b.Set(prices.Override{Offering: pool, At: t0.Add(75 * time.Hour), Stock: ptr(0)}); err != nil {
		t.Fatal(err)
	}
	if got := b.Advice(pool, t0, to).InterruptionRate; got != 0.25 {
		t.Errorf("stock 0 for the last 25 of 100 hours: interruption rate %v, want 0.25", got)
	}
}

// TestFixedBookAndNextChange: the simulator's markets, fixed or modelled,
// with the stock of traces, and when they next change.
func TestFixedBookAndNextChange(t *testing.T) {
	pool := markettest.Pool(3, "cn-hangzhou-i", "ecs.c5.large", 0.622, 0.056)
	other := markettest.Pool(4, "cn-hangzhou-j", "ecs.c5.large", 0.622, 0.06)
	tr := &prices.Trace{Gap: time.Hour, Start: t0, Data: []bool{true, false}, Zone: "cn-hangzhou-i"}

	fixed := prices.NewBook(prices.Config{Fixed: true})
	fixed.AddTrace(tr)
	if q := fixed.Quote(pool, t0); q.Price != 0.056 || q.Stock != prices.DefaultStock {
		t.Errorf("fixed quote at t0 = %+v, want the snapshot price and the default stock", q)
	}
	if q := fixed.Quote(pool, t0.Add(90*time.Minute)); q.Stock != 0 {
		t.Errorf("stock when the trace says 0: %d", q.Stock)
	}
	if q := fixed.Quote(other, t0.Add(90*time.Minute)); q.Stock != prices.DefaultStock {
		t.Errorf("a pool the trace does not cover lost its stock: %+v", q)
	}
	if p := fixed.Path(pool, t0, t0.Add(48*time.Hour)); len(p) != 1 || p[0].Price != 0.056 {
		t.Errorf("fixed path %v, want one point", p)
	}
	if next := fixed.NextChange(t0.Add(90 * time.Minute)); !next.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("next change %v, want the next tick of the trace", next.Sub(t0))
	}
	if next := prices.NewBook(prices.Config{Fixed: true}).NextChange(t0); !next.IsZero() {
		t.Errorf("fixed prices without traces change at %v", next)
	}

	// The model's prices are the model's, cached or not; an override is a
	// change to come.
	price := 0.5
	if err := fixed.Set(prices.Override{At: t0.Add(30 * time.Minute), Offering: pool, Price: &price}); err != nil {
		t.Fatal(err)
	}
	if next := fixed.NextChange(t0); !next.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("next change %v, want the override at t0+30m", next.Sub(t0))
	}
	m := prices.NewModel(7)
	model := prices.NewBook(prices.Config{Seed: 7, DefaultStock: 3})
	for _, at := range []time.Duration{0, time.Minute, 59 * time.Minute, time.Hour, 25*time.Hour + time.Second} {
		if got, want := model.Quote(pool, t0.Add(at)), (market.Quote{Price: m.Price(pool, t0.Add(at)), Stock: 3}); got != want {
			t.Errorf("model quote at t0+%v = %+v, want %+v", at, got, want)
		}
	}
	if next := model.NextChange(t0.Add(90 * time.Minute)); !next.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("model's next change %v, want the next hour", next.Sub(t0))
	}
	path := model.Path(pool, t0, t0.Add(5*time.Hour))
	if want := m.Path(pool, t0, t0.Add(5*time.Hour)); len(path) != len(want) || path[0] != want[0] {
		t.Errorf("model path %v, want %v", path, want)
	}
}
