package deadline

import (
	"context"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/sim"
)

var (
	tracesFlag = flag.String("traces", "", "folder of the Can't Be Late traces of 2022-10-26 (default $SPOTECI_TRACES, else ../shared/data/traces/availability/1-node/aws-10-26-2022 beside the repository)")
	rewrite    = flag.Bool("rewrite", false, "rewrite the golden files of testdata/")
)

func testSweep(t testing.TB, rules string, workers int) *Sweep {
	rng := rand.New(rand.NewPCG(5, 6))
	// The policies of the golden files, written before protected-progress.
	policies := []string{PolicyOnDemand, PolicyGreedy, PolicyUniformProgress, PolicyOptimal}
	s := &Sweep{Job: Job{Work: 8 * time.Hour, Deadline: 11 * time.Hour, Changeover: 12 * time.Minute}, Policies: policies, Starts: 20, Seed: 1, Workers: workers}
	for range 3 {
		s.Markets = append(s.Markets, testMarket(t, rules, randomTrace(rng, 400)))
	}
	return s
}

// The same seed gives the same bytes, whatever the number of workers; the
// golden file pins them (go test -rewrite to update, then read the diff).
func TestSweepIsDeterministic(t *testing.T) {
	for _, rules := range []string{sim.RulesAWS, sim.RulesECI} {
		var outputs [][]byte
		for _, workers := range []int{1, 3} {
			rep, err := testSweep(t, rules, workers).Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			outputs = append(outputs, append(out, '\n'))
		}
		if string(outputs[0]) != string(outputs[1]) {
			t.Fatalf("%s rules: 1 and 3 workers differ", rules)
		}
		golden := filepath.Join("testdata", "sweep-"+rules+".json")
		if *rewrite {
			if err := os.WriteFile(golden, outputs[0], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(outputs[0]) != string(want) {
			t.Errorf("%s rules: the sweep differs from %s; if intended, run go test -rewrite and read the diff", rules, golden)
		}
	}
}

func TestStartTicks(t *testing.T) {
	s := testSweep(t, sim.RulesAWS, 1)
	a, err := s.StartTicks(0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.StartTicks(0)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed drew other starts")
	}
	span := s.Markets[0].Ticks() - 66 + 1 // 11 hours are 66 ticks
	for k, start := range a {
		if lo, hi := k*span/len(a), (k+1)*span/len(a); start < lo || start >= hi {
			t.Errorf("start %d = %d, outside its stratum [%d, %d)", k, start, lo, hi)
		}
	}
	s.Seed = 2
	if c, _ := s.StartTicks(0); reflect.DeepEqual(a, c) {
		t.Error("another seed drew the same starts")
	}
	s.Job.Deadline = 400 * time.Hour
	if _, err := s.StartTicks(0); err == nil {
		t.Error("a deadline past the end of the trace: no error")
	}
}

func TestSweepStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testSweep(t, sim.RulesAWS, 2).Run(ctx); err != context.Canceled {
		t.Errorf("a cancelled sweep returned %v", err)
	}
}

// tracesDir is where the Table 3 traces are, or "" when they are absent.
func tracesDir() string {
	dir := *tracesFlag
	if dir == "" {
		dir = os.Getenv("SPOTECI_TRACES")
	}
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "shared", "data", "traces", "availability", "1-node", "aws-10-26-2022")
	}
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func table3Sweep(t testing.TB, rules string, policies []string) *Sweep {
	dir := tracesDir()
	if dir == "" {
		t.Skip("the traces of Table 3 are absent: give their folder with -traces or $SPOTECI_TRACES (../shared/data/traces/availability/1-node/aws-10-26-2022)")
	}
	traces, err := sim.LoadTraces(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sweep{Job: table3Job, Policies: policies, Starts: 300, Seed: 1}
	for _, tr := range traces {
		m, err := NewMarket(MarketConfig{Name: tr.Name, Trace: tr.Trace, Rules: rules, OnDemand: 3.06, SpotPrice: 0.9731, Protection: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s.Markets = append(s.Markets, m)
	}
	return s
}

// Table 3 of Wu et al. (NSDI 2024): mean hours on demand and on spot per job
// of 48 h due in 60 h, d = 0.2 h, 8 traces x 300 starts, aws rules.
func TestTable3(t *testing.T) {
	if testing.Short() {
		t.Skip("the Table 3 sweep takes seconds")
	}
	s := table3Sweep(t, sim.RulesAWS, Policies())
	if len(s.Markets) != 8 {
		t.Fatalf("%d traces, want the 8 of aws-10-26-2022", len(s.Markets))
	}
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Summary{}
	for _, p := range rep.Policies {
		by[p.Policy] = p
		t.Logf("%-16s od %5.2f h  spot %5.2f h  cost %6.2f  savings %4.1f%%  preemptions %5.2f",
			p.Policy, p.ODHoursMean, p.SpotHoursMean, p.CostMean, 100*p.SavingsVsOnDemand, p.PreemptionsMean)
		if p.Runs != 2400 || p.DeadlineMetFraction != 1 {
			t.Errorf("%s: %d runs, %.4f met the deadline, want 2400 and all", p.Policy, p.Runs, p.DeadlineMetFraction)
		}
	}
	paper := map[string][2]float64{PolicyGreedy: {30.8, 17.2}, PolicyUniformProgress: {25.1, 22.9}}
	for name, want := range paper {
		got := by[name]
		if math.Abs(got.ODHoursMean-want[0]) > 1.5 || math.Abs(got.SpotHoursMean-want[1]) > 1.5 {
			t.Errorf("%s: %.2f h on demand, %.2f h on spot; the paper has %.1f and %.1f (tolerance 1.5 h)", name, got.ODHoursMean, got.SpotHoursMean, want[0], want[1])
		}
	}
	od, g, up, opt := by[PolicyOnDemand].CostMean, by[PolicyGreedy].CostMean, by[PolicyUniformProgress].CostMean, by[PolicyOptimal].CostMean
	if !(up < g && g < od) {
		t.Errorf("costs: uniform-progress %.2f, greedy %.2f, on-demand %.2f: want that order", up, g, od)
	}
	if !(opt < up && opt < g) {
		t.Errorf("optimal costs %.2f, not below uniform-progress %.2f and greedy %.2f", opt, up, g)
	}
}

func TestParsePolicies(t *testing.T) {
	got, err := ParsePolicies("greedy, optimal")
	if err != nil || len(got) != 2 || got[0] != PolicyGreedy || got[1] != PolicyOptimal {
		t.Errorf("ParsePolicies = %v, %v", got, err)
	}
	for _, bad := range []string{"", "greedy,greedy", "lazy"} {
		if _, err := ParsePolicies(bad); err == nil {
			t.Errorf("ParsePolicies(%q): no error", bad)
		}
	}
}

// table3Job is the job of the paper's Table 3.
var table3Job = Job{Work: 48 * time.Hour, Deadline: 60 * time.Hour, Changeover: 12 * time.Minute}
