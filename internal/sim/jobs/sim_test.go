package jobs

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files of testdata/")

const (
	c5Spot = 0.056 // ecs.c5.large in cn-hangzhou-i, the snapshot
	c5PAYG = 0.622
)

// hangzhouC5 is a market of one pool, ecs.c5.large in cn-hangzhou-i, at its
// snapshot prices, whose stock follows an hourly trace.
func hangzhouC5(trace ...bool) (Config, *prices.Book) {
	var traces []*prices.Trace
	if len(trace) > 0 {
		traces = append(traces, &prices.Trace{Gap: time.Hour, Start: Epoch, Data: trace, Zone: "cn-hangzhou-i", Type: "ecs.c5.large"})
	}
	src := prices.NewBook(prices.Config{Fixed: true})
	for _, tr := range traces {
		src.AddTrace(tr)
	}
	return Config{Catalog: catalog.Default(), Prices: src, Rules: sim.ECI(0), NextChange: src.NextChange, Record: 1}, src
}

func oneJob(j JobSpec) *Workload {
	j.Name = "j"
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations[annotation.AnnotationUseSpecs] = "ecs.c5.large"
	return &Workload{Zones: []string{"cn-hangzhou-i"}, Horizon: 48 * time.Hour, Jobs: []JobSpec{j}}
}

var asPriceGo = map[string]string{annotation.AnnotationStrategy: "SpotAsPriceGo"}

func simulate(t *testing.T, w *Workload, cfg Config) PolicyResult {
	t.Helper()
	res, err := Simulate(context.Background(), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 {
		t.Fatalf("%d results, want one", len(res))
	}
	return res[0]
}

func hours(h, m int) float64 { return float64(h) + float64(m)/60 }

// Runs worked out by hand. The trace: stock for 2 hours, none for the third,
// stock again from 3h. A spot pod bought at 0 is protected until 1h, checked
// every 5 minutes, noticed at 2h and released at 2h05.
func TestJobScenarios(t *testing.T) {
	gapAt2h := []bool{true, true, false} // then stock again, to the horizon
	for range 48 {
		gapAt2h = append(gapAt2h, true)
	}
	m := time.Minute
	cases := map[string]struct {
		trace []bool
		rules sim.Rules
		job   JobSpec
		want  Summary // the fields compared below
		lives int
	}{
		"pay-as-you-go pods one after the other": {
			job:  JobSpec{Completions: 2, Parallelism: 1, Work: time.Hour, RestartOverhead: 6 * m},
			want: Summary{ODHoursMean: 2.2, CostMean: 2.2 * c5PAYG, CompletionHoursP50: 2.2, Pods: 2}, lives: 2,
		},
		"a wave of two, then one": {
			job:  JobSpec{Completions: 3, Parallelism: 2, Work: time.Hour},
			want: Summary{ODHoursMean: 3, CostMean: 3 * c5PAYG, CompletionHoursP50: 2, Pods: 3}, lives: 3,
		},
		// Reclaimed at 2h05 with 1h59 of work, all lost; the replacement
		// waits for stock until 3h and needs 3h06.
		"reclaimed without checkpoints": {
			trace: gapAt2h, job: JobSpec{Work: 3 * time.Hour, RestartOverhead: 6 * m, Annotations: asPriceGo},
			want: Summary{SpotHoursMean: hours(5, 11), CostMean: hours(5, 11) * c5Spot, CompletionHoursP50: hours(6, 6), Pods: 2,
				Reclaims: 1, PreemptionsMean: 1, WorkLostHoursMean: hours(1, 59), WaitHoursMean: hours(0, 55)}, lives: 2,
		},
		// Checkpoints of 1m every 30m: 90m saved, 26m lost; 98m left to run.
		"reclaimed with checkpoints": {
			trace: gapAt2h, job: JobSpec{Work: 3 * time.Hour, RestartOverhead: 6 * m, CheckpointInterval: 30 * m, CheckpointCost: m, Annotations: asPriceGo},
			want: Summary{SpotHoursMean: hours(3, 43), CostMean: hours(3, 43) * c5Spot, CompletionHoursP50: hours(4, 38), Pods: 2,
				Reclaims: 1, PreemptionsMean: 1, WorkLostHoursMean: hours(0, 26), WaitHoursMean: hours(0, 55)}, lives: 2,
		},
		// A checkpoint at the notice (2h) saves the 114 minutes done.
		"checkpoint at the notice": {
			trace: gapAt2h, job: JobSpec{Work: 3 * time.Hour, RestartOverhead: 6 * m, CheckpointCost: m, CheckpointAtNotice: true, Annotations: asPriceGo},
			want: Summary{SpotHoursMean: hours(3, 17), CostMean: hours(3, 17) * c5Spot, CompletionHoursP50: hours(4, 12), Pods: 2,
				Reclaims: 1, PreemptionsMean: 1, WaitHoursMean: hours(0, 55)}, lives: 2,
		},
		// aws rules: released at 2h itself, no notice: nothing saved.
		"aws rules: no notice to checkpoint in": {
			trace: gapAt2h, rules: sim.AWS(time.Hour, Epoch), job: JobSpec{Work: 3 * time.Hour, RestartOverhead: 6 * m, CheckpointCost: m, CheckpointAtNotice: true, Annotations: asPriceGo},
			want: Summary{SpotHoursMean: hours(5, 6), CostMean: hours(5, 6) * c5Spot, CompletionHoursP50: hours(6, 6), Pods: 2,
				Reclaims: 1, PreemptionsMean: 1, WorkLostHoursMean: hours(1, 54), WaitHoursMean: 1}, lives: 2,
		},
		"fallback when there is no stock": {
			trace: []bool{false}, job: JobSpec{Work: 3 * time.Hour, RestartOverhead: 6 * m,
				Annotations: map[string]string{annotation.AnnotationStrategy: "SpotAsPriceGo", annotation.AnnotationFallback: "true"}},
			want: Summary{ODHoursMean: hours(3, 6), CostMean: hours(3, 6) * c5PAYG, CompletionHoursP50: hours(3, 6), Pods: 1, Degraded: 1}, lives: 1,
		},
		"no stock, no fallback: never runs": {
			trace: []bool{false}, job: JobSpec{Work: 3 * time.Hour, Annotations: asPriceGo},
			want: Summary{WaitHoursMean: 48}, lives: 0,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, _ := hangzhouC5(tc.trace...)
			if tc.rules.Name != "" {
				cfg.Rules = tc.rules
			}
			res := simulate(t, oneJob(tc.job), cfg)
			got := res.Summary
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"od hours", got.ODHoursMean, tc.want.ODHoursMean},
				{"spot hours", got.SpotHoursMean, tc.want.SpotHoursMean},
				{"cost", got.CostMean, tc.want.CostMean},
				{"completion p50", got.CompletionHoursP50, tc.want.CompletionHoursP50},
				{"pods", float64(got.Pods), float64(tc.want.Pods)},
				{"reclaims", float64(got.Reclaims), float64(tc.want.Reclaims)},
				{"preemptions", got.PreemptionsMean, tc.want.PreemptionsMean},
				{"work lost", got.WorkLostHoursMean, tc.want.WorkLostHoursMean},
				{"wait", got.WaitHoursMean, tc.want.WaitHoursMean},
				{"degraded", float64(got.Degraded), float64(tc.want.Degraded)},
				{"recorded instances", float64(len(res.Lives)), float64(tc.lives)},
			} {
				if math.Abs(f.got-f.want) > 1e-9 {
					t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
				}
			}
			if finished := got.CompletionHoursP50 > 0; finished != (got.JobsFinished == 1) || got.DeadlineMetFraction != float64(got.JobsFinished) {
				t.Errorf("finished %d, met %v", got.JobsFinished, got.DeadlineMetFraction)
			}
		})
	}
}

func TestDeadlineMet(t *testing.T) {
	cfg, _ := hangzhouC5()
	w := oneJob(JobSpec{Count: 2, Completions: 2, Parallelism: 1, Work: time.Hour, Deadline: 90 * time.Minute})
	w.Jobs[0].Interval = time.Hour
	if got := simulate(t, w, cfg).Summary; got.DeadlineMetFraction != 0 || got.JobsFinished != 2 || got.CompletionHoursP95 != 2 {
		t.Errorf("%+v: want both Jobs done in 2h, after their deadline", got)
	}
}

// A price limit below the market: pods wait for the model to come down, are
// reclaimed when it rises again. The same seed gives the same bytes; the
// golden file pins them (go test -rewrite to update, then read the diff).
func TestSimulateIsDeterministic(t *testing.T) {
	w := func() *Workload {
		w, err := ParseWorkload([]byte(`
zones: [cn-hangzhou-i, cn-hangzhou-j]
horizon: 72h
jobs:
- name: sweep
  count: 40
  interval: 45m
  completions: 6
  parallelism: 3
  work: 2h
  restartOverhead: 2m
  checkpointInterval: 20m
  checkpointCost: 30s
  deadline: 8h
  annotations: {k8s.aliyun.com/eci-use-specs: "ecs.c5.large,2-4Gi"}
policies:
- {name: payg, annotations: {}}
- {name: as-price-go, annotations: {k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo}}
- {name: limit-0.06, annotations: {k8s.aliyun.com/eci-spot-strategy: SpotWithPriceLimit, k8s.aliyun.com/eci-spot-price-limit: "0.06"}}
- {name: limit-0.06-no-protection, annotations: {k8s.aliyun.com/eci-spot-strategy: SpotWithPriceLimit, k8s.aliyun.com/eci-spot-price-limit: "0.06", k8s.aliyun.com/eci-spot-duration: "0"}}
`))
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	run := func() []byte {
		src := prices.NewBook(prices.Config{Seed: 3})
		res, err := Simulate(context.Background(), w(), Config{Catalog: catalog.Default(), Prices: src, Rules: sim.ECI(0), NextChange: src.NextChange})
		if err != nil {
			t.Fatal(err)
		}
		var sums []Summary
		for _, r := range res {
			sums = append(sums, r.Summary)
		}
		out, err := json.MarshalIndent(sums, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return append(out, '\n')
	}
	a, b := run(), run()
	if string(a) != string(b) {
		t.Fatal("two runs differ")
	}
	var sums []Summary
	json.Unmarshal(a, &sums)
	if sums[2].Reclaims == 0 || sums[1].Reclaims != 0 || sums[0].SpotHoursMean != 0 {
		t.Errorf("want reclaims only under the tight limit: %+v", sums)
	}
	golden := filepath.Join("testdata", "policies.json")
	if *rewrite {
		if err := os.WriteFile(golden, a, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(want) {
		t.Errorf("the simulation differs from %s; if intended, run go test -rewrite and read the diff", golden)
	}
}
