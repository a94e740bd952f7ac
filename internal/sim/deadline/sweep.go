package deadline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/spoteci/spoteci/internal/deadline"
	"github.com/spoteci/spoteci/internal/sim"
)

// Sweep runs the job from random starts of every market under each policy, as
// Table 3 of the paper does: the same starts for every policy.
type Sweep struct {
	Markets []*Market
	Job     Job
	// Policies are reported in this order; on-demand is run anyway, as the
	// baseline of savings.
	Policies []string
	// Starts is the number of random starts per market; Seed draws them.
	Starts int
	Seed   int64
	// Workers run in parallel; 0 means GOMAXPROCS. The result does not
	// depend on it.
	Workers  int
	Progress sim.Progress
}

// Summary is the result of one policy, over every run or over one market's.
type Summary struct {
	Policy string `json:"policy"`
	Trace  string `json:"trace,omitempty"`
	Runs   int    `json:"runs"`
	// ODHoursMean and SpotHoursMean are the hours of work done on each, as
	// the paper's Table 3 counts them; the Billed ones are the instance hours
	// paid, changeovers included.
	ODHoursMean         float64 `json:"od_hours_mean"`
	SpotHoursMean       float64 `json:"spot_hours_mean"`
	ODBilledHoursMean   float64 `json:"od_billed_hours_mean"`
	SpotBilledHoursMean float64 `json:"spot_billed_hours_mean"`
	CostMean            float64 `json:"cost_mean"`
	// SavingsVsOnDemand is 1 - CostMean / the mean cost of running on demand
	// from start to end, over the same runs.
	SavingsVsOnDemand   float64 `json:"savings_vs_on_demand"`
	DeadlineMetFraction float64 `json:"deadline_met_fraction"`
	PreemptionsMean     float64 `json:"preemptions_mean"`
	FinishHoursMean     float64 `json:"finish_hours_mean"`
}

// Report is the result of a sweep.
type Report struct {
	Policies []Summary `json:"policies"`
	ByTrace  []Summary `json:"by_trace"`
}

// StartTicks draws the starts of market i: uniform over the ticks from which
// the whole window up to the deadline lies in the trace.
func (s *Sweep) StartTicks(i int) ([]int, error) {
	m := s.Markets[i]
	window := int((s.Job.Deadline + m.Gap() - 1) / m.Gap())
	span := m.Ticks() - window + 1
	if span <= 0 {
		return nil, fmt.Errorf("trace %s: %d ticks of %v are shorter than the deadline %v", m.Name, m.Ticks(), m.Gap(), s.Job.Deadline)
	}
	rng := rand.New(rand.NewPCG(uint64(s.Seed), uint64(i)))
	starts := make([]int, s.Starts)
	for k := range starts {
		// One start at random in each of Starts equal strata of the span.
		lo, hi := k*span/s.Starts, (k+1)*span/s.Starts
		starts[k] = lo
		if hi > lo {
			starts[k] += rng.IntN(hi - lo)
		}
	}
	return starts, nil
}

// NewPolicy returns a fresh policy named name for one run from start.
func NewPolicy(name string, m *Market, job Job, start int) (Policy, error) {
	if name == PolicyOptimal {
		return Optimal(m, job, start)
	}
	return deadline.New(name)
}

// Run runs the sweep. It stops early, with ctx's error, when ctx is done.
func (s *Sweep) Run(ctx context.Context) (*Report, error) {
	if err := s.Job.Validate(); err != nil {
		return nil, err
	}
	if s.Starts <= 0 {
		return nil, fmt.Errorf("sweep: starts %d must be positive", s.Starts)
	}
	if len(s.Markets) == 0 {
		return nil, fmt.Errorf("sweep: no trace")
	}
	// The on-demand policy is always run: it is the baseline of savings.
	policies := []string{PolicyOnDemand}
	for _, p := range s.Policies {
		if p != PolicyOnDemand {
			policies = append(policies, p)
		}
	}
	type task struct{ market, start, policy int }
	starts := make([][]int, len(s.Markets))
	var tasks []task
	for i := range s.Markets {
		var err error
		if starts[i], err = s.StartTicks(i); err != nil {
			return nil, err
		}
		for k := range starts[i] {
			for p := range policies {
				tasks = append(tasks, task{i, k, p})
			}
		}
	}
	results := make([]Result, len(tasks))
	progress := s.Progress
	if progress == nil {
		progress = sim.NoProgress{}
	}
	progress.Start(len(tasks))
	defer progress.Done()

	workers := s.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := tasks[i]
				m := s.Markets[t.market]
				p, err := NewPolicy(policies[t.policy], m, s.Job, starts[t.market][t.start])
				if err != nil {
					errs <- err
					return
				}
				results[i] = m.Run(s.Job, p, starts[t.market][t.start], RunOptions{})
				progress.Add(1)
			}
		}()
	}
	var err error
feed:
	for i := range tasks {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil && len(errs) > 0 {
		err = <-errs
	}
	if err != nil {
		return nil, err
	}

	// Aggregate in task order, so the sums, and so the bytes, never depend
	// on the workers.
	byPolicy := make([]acc, len(policies))
	byTrace := make([][]acc, len(s.Markets))
	for i := range byTrace {
		byTrace[i] = make([]acc, len(policies))
	}
	for i, t := range tasks {
		byPolicy[t.policy].add(&results[i], s.Job)
		byTrace[t.market][t.policy].add(&results[i], s.Job)
	}
	rep := &Report{}
	for _, name := range s.Policies {
		p := slices.Index(policies, name)
		rep.Policies = append(rep.Policies, byPolicy[p].summary(name, "", byPolicy[0].cost))
	}
	for i, m := range s.Markets {
		for _, name := range s.Policies {
			p := slices.Index(policies, name)
			rep.ByTrace = append(rep.ByTrace, byTrace[i][p].summary(name, m.Name, byTrace[i][0].cost))
		}
	}
	return rep, nil
}

// acc adds up results.
type acc struct {
	runs, met, preemptions int
	work, billed           [3]time.Duration
	finish                 time.Duration
	cost                   float64
}

func (a *acc) add(r *Result, j Job) {
	a.runs++
	if r.Met(j) {
		a.met++
	}
	a.preemptions += r.Preemptions
	for m := range a.work {
		a.work[m] += r.Work[m]
		a.billed[m] += r.Billed[m]
	}
	a.finish += r.Finish
	a.cost += r.Cost
}

func (a *acc) summary(policy, trace string, baseline float64) Summary {
	n := float64(a.runs)
	hours := func(d time.Duration) float64 { return d.Hours() / n }
	s := Summary{
		Policy: policy, Trace: trace, Runs: a.runs,
		ODHoursMean: hours(a.work[OnDemand]), SpotHoursMean: hours(a.work[Spot]),
		ODBilledHoursMean: hours(a.billed[OnDemand]), SpotBilledHoursMean: hours(a.billed[Spot]),
		CostMean:            a.cost / n,
		DeadlineMetFraction: float64(a.met) / n,
		PreemptionsMean:     float64(a.preemptions) / n,
		FinishHoursMean:     hours(a.finish),
	}
	if baseline > 0 {
		s.SavingsVsOnDemand = 1 - a.cost/baseline
	}
	return s
}
