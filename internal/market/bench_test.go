package market_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/market/markettest"
)

// BenchmarkCheck100k measures one 5-minute check over 100,000 running spot
// instances in 20 pools (target: under 20 ms) and the memory an instance
// takes in the core (target: under 2 KB).
func BenchmarkCheck100k(b *testing.B) {
	const n = 100_000
	var pools []*catalog.Offering
	for i := range 20 {
		pools = append(pools, markettest.Pool(i, fmt.Sprint("zone-", i%4), fmt.Sprint("ecs.t", i), 0.6, 0.05))
	}
	prices := markettest.New(n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := market.New(market.Config{Prices: prices})
	bid := market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}
	for i := range n {
		// Creations spread over a minute: the checks of one round fall in 60 seconds.
		at := t0.Add(time.Duration(i%60) * time.Second)
		if _, err := c.Create(at, market.Order{ID: fmt.Sprintf("eci-%06d", i), Bid: bid, Candidates: [][]*catalog.Offering{{pools[i%len(pools)]}}}); err != nil {
			b.Fatal(err)
		}
	}
	c.Ready()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perInstance := float64(after.HeapAlloc-before.HeapAlloc) / n
	now := t0.Add(time.Hour + time.Minute) // the first round of checks is done
	c.Advance(now)
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(5 * time.Minute) // one round: every instance checked once
		c.Advance(now)
	}
	b.StopTimer()
	b.ReportMetric(perInstance, "B/instance")
	if rd := c.Ready(); len(rd.Events) != 0 {
		b.Fatalf("%d events: the benchmark should check, not release", len(rd.Events))
	}
	runtime.KeepAlive(c)
}
