package deadline

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/deadline"
	"github.com/spoteci/spoteci/internal/sim"
)

var (
	searchFlag       = flag.Bool("search", false, "run the policy search of TestPolicySearch (minutes)")
	searchCandidates = flag.Int("candidates", 2000, "candidates of the policy search")
	searchSeed       = flag.Int64("search-seed", 1, "seed of the policy search's candidates")
	heldOutStarts    = flag.Int("heldout-starts", 20, "starts per held-out trace of TestProtectedProgressHeldOut (BENCHMARKS.md: 300, with optimal)")
)

// searchJobs are the jobs a policy is tuned and checked on: the paper's
// Table 3 job and a short one like a live Job's pod, each with and without
// checkpoints.
var searchJobs = []Job{
	table3Job,
	{Work: 2 * time.Hour, Deadline: 3 * time.Hour, Changeover: 5 * time.Minute},
	{Work: 48 * time.Hour, Deadline: 60 * time.Hour, Changeover: 12 * time.Minute, LosesProgress: true},
	{Work: 2 * time.Hour, Deadline: 3 * time.Hour, Changeover: 5 * time.Minute, LosesProgress: true},
}

func jobName(j Job) string {
	s := fmt.Sprintf("%gh in %gh, d %gm", j.Work.Hours(), j.Deadline.Hours(), j.Changeover.Minutes())
	if j.LosesProgress {
		s += ", no checkpoint"
	}
	return s
}

// splitMarkets loads every trace of the two Can't Be Late folders under eci
// rules and splits them, fixed before any search: in each folder in name
// order, the even files train and the odd ones are held out.
func splitMarkets(t testing.TB) (train, heldOut []*Market) {
	dir := tracesDir()
	if dir == "" {
		t.Skip("the Can't Be Late traces are absent: give the aws-10-26-2022 folder with -traces or $SPOTECI_TRACES")
	}
	for _, folder := range []string{"aws-10-26-2022", "aws-02-15-2023"} {
		traces, err := sim.LoadTraces(filepath.Join(filepath.Dir(dir), folder))
		if err != nil {
			t.Fatal(err)
		}
		for i, tr := range traces {
			m, err := NewMarket(MarketConfig{Name: tr.Name, Trace: tr.Trace, Rules: sim.RulesECI, OnDemand: 3.06, SpotPrice: 0.9731, Protection: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				train = append(train, m)
			} else {
				heldOut = append(heldOut, m)
			}
		}
	}
	return train, heldOut
}

// bench is a job on a set of markets from fixed starts.
type bench struct {
	job     Job
	markets []*Market
	starts  [][]int
}

func newBench(t testing.TB, job Job, markets []*Market, starts int, seed int64) bench {
	s := &Sweep{Markets: markets, Job: job, Starts: starts, Seed: seed}
	b := bench{job: job, markets: markets}
	for i := range markets {
		st, err := s.StartTicks(i)
		if err != nil {
			t.Fatal(err)
		}
		b.starts = append(b.starts, st)
	}
	return b
}

// score is the mean cost of a policy on a bench and the fraction of runs
// that met the deadline.
type score struct{ cost, met float64 }

// eval runs newPolicy from every start of b, on all cores.
func (b bench) eval(t testing.TB, newPolicy func(m *Market, start int) Policy) score {
	type run struct{ m, k int }
	var runs []run
	for i := range b.markets {
		for k := range b.starts[i] {
			runs = append(runs, run{i, k})
		}
	}
	costs := make([]float64, len(runs))
	met := make([]bool, len(runs))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(runs); i += workers {
				m, start := b.markets[runs[i].m], b.starts[runs[i].m][runs[i].k]
				r := m.Run(b.job, newPolicy(m, start), start, RunOptions{})
				costs[i], met[i] = r.Cost, r.Met(b.job)
			}
		}()
	}
	wg.Wait()
	var sc score
	for i := range runs { // in order: the same sum whatever the workers
		sc.cost += costs[i]
		if met[i] {
			sc.met++
		}
	}
	n := float64(len(runs))
	return score{sc.cost / n, sc.met / n}
}

func named(t testing.TB, name string) func(*Market, int) Policy {
	return func(m *Market, start int) Policy {
		p, err := NewPolicy(name, m, Job{}, start)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func pacedMaker(p deadline.Paced) func(*Market, int) Policy {
	return func(*Market, int) Policy { return p.New() }
}

// randomPaced draws a candidate of the Paced family.
func randomPaced(rng *rand.Rand) deadline.Paced {
	p := deadline.Paced{
		Delay:      rng.Float64() * 0.9,
		Margin:     rng.Float64() * 0.5,
		Hysteresis: -10 + 20*rng.Float64(),
		Release:    -1,
		EndSpot:    rng.IntN(2) == 0,
	}
	if rng.IntN(2) == 0 {
		p.Release = 10 * rng.Float64()
	}
	p.LossyReach, p.LossyWait = 6*rng.Float64(), rng.Float64()
	if rng.IntN(4) == 0 {
		p.Delay = 0
	}
	if rng.IntN(4) == 0 {
		p.Margin = 0
	}
	return p
}

// TestPolicySearch searches the Paced family for the policy cheapest on the
// training traces, relative to uniform progress and averaged over
// searchJobs, among those meeting every deadline; then scores the winner on
// the held-out traces. go test ./internal/sim/deadline/ -run PolicySearch
// -search -v -timeout 60m [-candidates N -search-seed S].
func TestPolicySearch(t *testing.T) {
	if !*searchFlag {
		t.Skip("the policy search takes minutes: run it with -search")
	}
	train, heldOut := splitMarkets(t)
	var trainBenches []bench
	var baseline []float64
	for _, job := range searchJobs {
		b := newBench(t, job, train, 100, 1)
		trainBenches = append(trainBenches, b)
		up := b.eval(t, named(t, PolicyUniformProgress))
		baseline = append(baseline, up.cost)
		od := b.eval(t, named(t, PolicyOnDemand))
		opt := b.eval(t, func(m *Market, start int) Policy {
			p, err := Optimal(m, job, start)
			if err != nil {
				t.Fatal(err)
			}
			return p
		})
		t.Logf("train %-34s on-demand %.3f uniform-progress %.3f (met %.4f) optimal %.3f", jobName(job), od.cost, up.cost, up.met, opt.cost)
	}
	rng := rand.New(rand.NewPCG(uint64(*searchSeed), 22))
	best, bestRatio := deadline.Paced{}, math.Inf(1)
	start := time.Now()
	for c := range *searchCandidates {
		cand := randomPaced(rng)
		ratio := 0.0
		for i, b := range trainBenches {
			sc := b.eval(t, pacedMaker(cand))
			if sc.met < 1 {
				ratio = math.Inf(1)
				break
			}
			ratio += sc.cost / baseline[i] / float64(len(trainBenches))
		}
		if ratio < bestRatio {
			best, bestRatio = cand, ratio
			t.Logf("candidate %d (%v): %+v costs %.4f of uniform progress", c, time.Since(start).Round(time.Second), best, ratio)
		}
		if c%100 == 99 {
			t.Logf("%d candidates in %v", c+1, time.Since(start).Round(time.Second))
		}
	}
	t.Logf("best: %+v, %.4f of uniform progress on the training traces", best, bestRatio)
	for _, job := range searchJobs {
		b := newBench(t, job, heldOut, 300, 2)
		up := b.eval(t, named(t, PolicyUniformProgress))
		win := b.eval(t, pacedMaker(best))
		t.Logf("held out %-30s uniform-progress %.3f  best %.3f (%+.1f%%, met %.4f)", jobName(job), up.cost, win.cost, 100*(win.cost/up.cost-1), win.met)
	}
}

// protected-progress, on a few starts of the held-out traces: every deadline
// met, and no dearer than uniform progress on any job. With -heldout-starts
// 300 it is the figure of BENCHMARKS.md, with optimal as the floor.
func TestProtectedProgressHeldOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the held-out traces")
	}
	_, heldOut := splitMarkets(t)
	for _, job := range searchJobs {
		b := newBench(t, job, heldOut, *heldOutStarts, 2)
		up := b.eval(t, named(t, PolicyUniformProgress))
		pp := b.eval(t, named(t, PolicyProtectedProgress))
		floor := ""
		if *heldOutStarts >= 100 {
			opt := b.eval(t, func(m *Market, start int) Policy {
				p, err := Optimal(m, job, start)
				if err != nil {
					t.Fatal(err)
				}
				return p
			})
			floor = fmt.Sprintf(", optimal %.3f (%+.1f%%), uniform progress met %.4f", opt.cost, 100*(opt.cost/up.cost-1), up.met)
		}
		t.Logf("%-34s uniform-progress %.3f protected-progress %.3f (%+.1f%%, met %.4f)%s", jobName(job), up.cost, pp.cost, 100*(pp.cost/up.cost-1), pp.met, floor)
		if pp.met != 1 || pp.cost > up.cost {
			t.Errorf("%s: protected-progress costs %.3f (uniform progress %.3f), met %.4f", jobName(job), pp.cost, up.cost, pp.met)
		}
	}
}
