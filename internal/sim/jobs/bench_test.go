package jobs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
	"github.com/spoteci/spoteci/internal/sim/simtest"
)

// benchZones are three zones of cn-beijing that sell 209 types in common.
var benchZones = []string{"cn-beijing-f", "cn-beijing-i", "cn-beijing-l"}

// benchTypes are the 20 cheapest CPU types sold in all benchZones.
func benchTypes(cat *catalog.Catalog) []string {
	price := map[string]float64{}
	count := map[string]int{}
	for _, o := range cat.Offerings() {
		if slices.Contains(benchZones, o.Zone) && o.Type.GPU == 0 && o.Type.Arch == "amd64" {
			count[o.Type.Name]++
			price[o.Type.Name] = max(price[o.Type.Name], o.Spot)
		}
	}
	var types []string
	for t, n := range count {
		if n == len(benchZones) {
			types = append(types, t)
		}
	}
	slices.SortFunc(types, func(a, b string) int { return cmp.Or(cmp.Compare(price[a], price[b]), cmp.Compare(a, b)) })
	return types[:20]
}

// benchWorkload is 10,000 Jobs of 10 pods over 30 days: 20 kinds, one per
// type, each bidding 10% over its snapshot price (so the model's moves
// reclaim some), with checkpoints.
func benchWorkload(cat *catalog.Catalog) *Workload {
	w := &Workload{Zones: benchZones, Horizon: 30 * 24 * time.Hour}
	const jobs = 10_000
	types := benchTypes(cat)
	arrivalGap := (28 * 24 * time.Hour) / jobs
	for k, typ := range types {
		snapshot := 0.0
		for _, z := range benchZones {
			o, _ := cat.Offering(z, typ)
			snapshot = max(snapshot, o.Spot)
		}
		w.Jobs = append(w.Jobs, JobSpec{
			Name: typ, Count: jobs / len(types), Arrival: time.Duration(k) * arrivalGap, Interval: time.Duration(len(types)) * arrivalGap,
			Completions: 10, Parallelism: 10, Work: 2 * time.Hour, RestartOverhead: 2 * time.Minute,
			CheckpointInterval: 30 * time.Minute, CheckpointCost: time.Minute, CheckpointAtNotice: true,
			Annotations: map[string]string{
				annotation.AnnotationUseSpecs:   typ,
				annotation.AnnotationStrategy:   "SpotWithPriceLimit",
				annotation.AnnotationPriceLimit: fmt.Sprintf("%.3f", snapshot*1.1),
			},
		})
	}
	return w
}

// BenchmarkMonth100kPods simulates 30 days of the price model over 3 zones and
// 20 types with 10,000 Jobs of 10 pods each (target: under 10 s).
func BenchmarkMonth100kPods(b *testing.B) {
	cat := catalog.Default()
	var s Summary
	cpu := simtest.StartCPUTimer(b)
	for b.Loop() {
		source := prices.NewBook(prices.Config{Seed: 1})
		res, err := Simulate(context.Background(), benchWorkload(cat), Config{Catalog: cat, Prices: source, Rules: sim.ECI(0), NextChange: source.NextChange})
		if err != nil {
			b.Fatal(err)
		}
		s = res[0].Summary
	}
	cpu.Stop()
	b.ReportMetric(float64(s.Pods), "instances")
	b.ReportMetric(float64(s.Reclaims), "reclaims")
	b.ReportMetric(float64(s.JobsFinished), "jobs_done")
}
