package deadline

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
)

const gap = 10 * time.Minute

// traceOf reads "1110001..." as a trace of 10-minute ticks.
func traceOf(data string) *prices.Trace {
	tr := &prices.Trace{Gap: gap}
	for _, c := range strings.ReplaceAll(data, " ", "") {
		tr.Data = append(tr.Data, c == '1')
	}
	return tr
}

// testMarket is a pool at 1/h spot and 3/h on demand replaying data.
func testMarket(t testing.TB, rules, data string) *Market {
	t.Helper()
	m, err := NewMarket(MarketConfig{Name: "test", Trace: traceOf(data), Rules: rules, OnDemand: 3, SpotPrice: 1, Protection: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

type life struct {
	mode     Mode
	from, to time.Duration
	released bool
}

// Runs whose every number is worked out by hand from the rules (SPEC section
// 3 for eci; no protection or notice for aws).
func TestRunScenarios(t *testing.T) {
	ones := strings.Repeat("1", 60)
	zeros := strings.Repeat("0", 60)
	cases := map[string]struct {
		rules, trace, policy string
		job                  Job
		finish               time.Duration
		spotWork, odWork     time.Duration
		spotPaid, odPaid     time.Duration
		preemptions          int
		lives                []life
	}{
		"greedy on spot from start to end": {
			rules: "aws", trace: ones, policy: PolicyGreedy, job: Job{Work: 2 * time.Hour, Deadline: 4 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(2, 12), spotWork: 2 * time.Hour, spotPaid: hm(2, 12),
			lives: []life{{Spot, 0, hm(2, 12), false}},
		},
		// aws: reclaimed at the first tick without stock (1h), back on spot
		// when it returns (1h30), a new changeover.
		"greedy reclaimed under aws rules": {
			rules: "aws", trace: "111111 000" + ones, policy: PolicyGreedy, job: Job{Work: 2 * time.Hour, Deadline: 5 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(2, 54), spotWork: 2 * time.Hour, spotPaid: hm(2, 24), preemptions: 1,
			lives: []life{{Spot, 0, time.Hour, true}, {Spot, hm(1, 30), hm(2, 54), false}},
		},
		// eci: the check at 1h (protection over) finds no stock: notice at
		// 1h, release 5 minutes later; 53 minutes of work were done.
		"greedy reclaimed under eci rules": {
			rules: "eci", trace: "111111 000" + ones, policy: PolicyGreedy, job: Job{Work: 2 * time.Hour, Deadline: 5 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(2, 49), spotWork: 2 * time.Hour, spotPaid: hm(2, 24), preemptions: 1,
			lives: []life{{Spot, 0, hm(1, 5), true}, {Spot, hm(1, 30), hm(2, 49), false}},
		},
		"eci protection rides out a gap": {
			rules: "eci", trace: "111 0" + ones, policy: PolicyGreedy, job: Job{Work: time.Hour, Deadline: 3 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(1, 12), spotWork: time.Hour, spotPaid: hm(1, 12),
			lives: []life{{Spot, 0, hm(1, 12), false}},
		},
		"aws reclaims in the gap": {
			rules: "aws", trace: "111 0" + ones, policy: PolicyGreedy, job: Job{Work: time.Hour, Deadline: 3 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(1, 34), spotWork: time.Hour, spotPaid: hm(1, 24), preemptions: 1,
			lives: []life{{Spot, 0, 30 * time.Minute, true}, {Spot, 40 * time.Minute, hm(1, 34), false}},
		},
		// No spot: greedy idles until 4h-t-10m < 2h+24m, at t = 1h30.
		"greedy without spot waits for the safety line": {
			rules: "aws", trace: zeros, policy: PolicyGreedy, job: Job{Work: 2 * time.Hour, Deadline: 4 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(3, 42), odWork: 2 * time.Hour, odPaid: hm(2, 12),
			lives: []life{{OnDemand, hm(1, 30), hm(3, 42), false}},
		},
		// Uniform progress is behind from the first tick: on demand at 10m.
		"uniform progress without spot keeps pace on demand": {
			rules: "aws", trace: zeros, policy: PolicyUniformProgress, job: Job{Work: 2 * time.Hour, Deadline: 4 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(2, 22), odWork: 2 * time.Hour, odPaid: hm(2, 12),
			lives: []life{{OnDemand, 10 * time.Minute, hm(2, 22), false}},
		},
		// A job without checkpoints: the reclaim at 1h05 loses 53 minutes;
		// back on spot at 1h30 (1h of protection), it is moved on demand at
		// 3h30, when a reclaim would leave 2h20 for 2h of work, two
		// changeovers and a tick, and starts over there.
		"greedy without checkpoints starts over and is moved on demand": {
			rules: "eci", trace: "111111 000" + ones, policy: PolicyGreedy,
			job:    Job{Work: 2 * time.Hour, Deadline: 6 * time.Hour, Changeover: 12 * time.Minute, LosesProgress: true},
			finish: hm(5, 42), spotWork: hm(2, 41), odWork: 2 * time.Hour, spotPaid: hm(3, 5), odPaid: hm(2, 12), preemptions: 1,
			lives: []life{{Spot, 0, hm(1, 5), true}, {Spot, hm(1, 30), hm(3, 30), false}, {OnDemand, hm(3, 30), hm(5, 42), false}},
		},
		"a protected instance finishes a job without checkpoints": {
			rules: "eci", trace: "111 0" + ones, policy: PolicyUniformProgress,
			job:    Job{Work: 40 * time.Minute, Deadline: time.Hour, Changeover: 5 * time.Minute, LosesProgress: true},
			finish: 45 * time.Minute, spotWork: 40 * time.Minute, spotPaid: 45 * time.Minute,
			lives: []life{{Spot, 0, 45 * time.Minute, false}},
		},
		"on demand ignores spot": {
			rules: "eci", trace: ones, policy: PolicyOnDemand, job: Job{Work: 2 * time.Hour, Deadline: 4 * time.Hour, Changeover: 12 * time.Minute},
			finish: hm(2, 12), odWork: 2 * time.Hour, odPaid: hm(2, 12),
			lives: []life{{OnDemand, 0, hm(2, 12), false}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := testMarket(t, tc.rules, tc.trace)
			p, err := NewPolicy(tc.policy, m, tc.job, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := m.Run(tc.job, p, 0, RunOptions{Record: true})
			if !r.Finished || r.Finish != tc.finish || !r.Met(tc.job) {
				t.Errorf("finished %v at %v (met %v), want at %v", r.Finished, r.Finish, r.Met(tc.job), tc.finish)
			}
			if r.Work[Spot] != tc.spotWork || r.Work[OnDemand] != tc.odWork {
				t.Errorf("work spot %v on demand %v, want %v and %v", r.Work[Spot], r.Work[OnDemand], tc.spotWork, tc.odWork)
			}
			if r.Billed[Spot] != tc.spotPaid || r.Billed[OnDemand] != tc.odPaid {
				t.Errorf("paid spot %v on demand %v, want %v and %v", r.Billed[Spot], r.Billed[OnDemand], tc.spotPaid, tc.odPaid)
			}
			if want := tc.spotPaid.Hours()*1 + tc.odPaid.Hours()*3; math.Abs(r.Cost-want) > 1e-9 {
				t.Errorf("cost %v, want %v", r.Cost, want)
			}
			if r.Preemptions != tc.preemptions {
				t.Errorf("%d preemptions, want %d", r.Preemptions, tc.preemptions)
			}
			var lives []life
			for _, l := range r.Lives {
				lives = append(lives, life{l.Mode, l.From.Sub(m.At(0)), l.To.Sub(m.At(0)), l.Released})
			}
			if !reflect.DeepEqual(lives, tc.lives) {
				t.Errorf("instances %+v, want %+v", lives, tc.lives)
			}
		})
	}
}

// randomTrace has runs of availability of random lengths.
func randomTrace(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		c := "0"
		if rng.IntN(3) > 0 {
			c = "1"
		}
		b.WriteString(strings.Repeat(c, 1+rng.IntN(20)))
	}
	return b.String()[:n]
}

// Skipping the ticks a policy said its decision holds over changes nothing:
// each run equals the run that asks at every tick.
func TestSkippingTicksChangesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rules := range []string{sim.RulesAWS, sim.RulesECI} {
		for i := range 6 {
			job := Job{Work: 8 * time.Hour, Deadline: 11 * time.Hour, Changeover: 12 * time.Minute, LosesProgress: i%2 == 1}
			m := testMarket(t, rules, randomTrace(rng, 300))
			for start := 0; start < 200; start += 37 {
				for _, name := range Policies() {
					p1, err := NewPolicy(name, m, job, start)
					if err != nil {
						t.Fatal(err)
					}
					p2, _ := NewPolicy(name, m, job, start)
					a := m.Run(job, p1, start, RunOptions{Record: true})
					b := m.Run(job, p2, start, RunOptions{Record: true, EveryTick: true})
					a.Progress, b.Progress = nil, nil // sampled at different events
					if !reflect.DeepEqual(a, b) {
						t.Fatalf("%s rules, %s from %d:\nskipping   %+v\nevery tick %+v", rules, name, start, a, b)
					}
				}
			}
		}
	}
}

// Under aws rules the dynamic program is exact: its cost is the cost of its
// schedule played through the market, and no policy does better.
func TestOptimalIsALowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, rules := range []string{sim.RulesAWS, sim.RulesECI} {
		for i := range 8 {
			job := Job{Work: 8 * time.Hour, Deadline: 11 * time.Hour, Changeover: 12 * time.Minute, LosesProgress: i%2 == 1}
			m := testMarket(t, rules, randomTrace(rng, 300))
			for start := 0; start < 200; start += 23 {
				plan, cost, err := m.Plan(job, start)
				if err != nil {
					t.Fatal(err)
				}
				r := m.Run(job, &planned{plan: plan}, start, RunOptions{})
				if !r.Met(job) {
					t.Fatalf("%s rules from %d: the optimal schedule misses the deadline: %+v", rules, start, r)
				}
				if rules != sim.RulesAWS {
					continue
				}
				if math.Abs(r.Cost-cost) > 1e-9 {
					t.Fatalf("from %d: plan costs %v, played %v", start, cost, r.Cost)
				}
				for _, name := range []string{PolicyOnDemand, PolicyGreedy, PolicyUniformProgress} {
					p, _ := NewPolicy(name, m, job, start)
					if other := m.Run(job, p, start, RunOptions{}); other.Cost < r.Cost-1e-9 {
						t.Fatalf("from %d: %s costs %v, less than optimal %v", start, name, other.Cost, r.Cost)
					}
				}
			}
		}
	}
}

func TestPlanErrors(t *testing.T) {
	m := testMarket(t, sim.RulesAWS, strings.Repeat("1", 30))
	if _, _, err := m.Plan(Job{Work: 2 * time.Hour, Deadline: 4 * time.Hour, Changeover: 12 * time.Minute}, 10); err == nil {
		t.Error("a window past the end of the trace: no error")
	}
	odd := testMarket(t, sim.RulesAWS, strings.Repeat("1", 3000))
	if _, _, err := odd.Plan(Job{Work: 48 * time.Hour, Deadline: 400 * time.Hour, Changeover: 7 * time.Second}, 0); err == nil || !strings.Contains(err.Error(), "states") {
		t.Errorf("too fine a program: %v", err)
	}
}

func TestNewMarketErrors(t *testing.T) {
	for _, cfg := range []MarketConfig{
		{Name: "x", Rules: "aws", OnDemand: 3, SpotPrice: 1},
		{Name: "x", Trace: traceOf("1"), Rules: "aws", OnDemand: 1, SpotPrice: 3},
		{Name: "x", Trace: traceOf("1"), Rules: "gcp", OnDemand: 3, SpotPrice: 1},
		{Name: "x", Trace: traceOf("1"), Rules: "eci", OnDemand: 3, SpotPrice: 1, Protection: 7 * time.Hour},
	} {
		if _, err := NewMarket(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
