package deadline

import (
	"math"
	"strings"
	"testing"
	"time"
)

var table3Job = Job{Work: 48 * time.Hour, Deadline: 60 * time.Hour, Changeover: 12 * time.Minute}

func state(mode Mode, spot bool, elapsed, done time.Duration) *State {
	const gap = 10 * time.Minute
	s := &State{Job: table3Job, Gap: gap}
	s.Ask(elapsed, done, mode, func() bool { return spot })
	return s
}

// decision is a case of a policy's decision: in state s, it chooses want.
type decision struct {
	policy Policy
	s      *State
	want   Mode
}

func checkDecisions(t *testing.T, cases map[string]decision) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.policy.Decide(tc.s); got != tc.want {
				t.Errorf("Decide(%+v) = %v, want %v", *tc.s, got, tc.want)
			}
		})
	}
}

// The policies of the issue (and of Wu et al., section 4), one rule per case.
func TestDecide(t *testing.T) {
	h := time.Hour
	// With 48h of work left, the safety line is crossed once R-t-tick < 48h24m,
	// that is after 11h20m of idling.
	cases := map[string]decision{
		"greedy takes spot when available":            {&greedy{}, state(Idle, true, 0, 0), Spot},
		"greedy waits for spot":                       {&greedy{}, state(Idle, false, 5*h, 0), Idle},
		"greedy waits up to the safety line":          {&greedy{}, state(Idle, false, 11*h+20*time.Minute, 0), Idle},
		"greedy goes on demand at the safety line":    {&greedy{}, state(Idle, false, 11*h+30*time.Minute, 0), OnDemand},
		"greedy prefers on demand to spot at the end": {&greedy{}, state(Idle, true, 11*h+30*time.Minute, 0), OnDemand},
		"greedy stays on spot until reclaimed":        {&greedy{}, state(Spot, true, 11*h+30*time.Minute, 0), Spot},
		"greedy stays on demand till the end":         {&greedy{committed: true}, state(OnDemand, true, 30*h, 20*h), OnDemand},

		"uniform progress takes spot when available":         {&uniformProgress{}, state(Idle, true, 3*h, 0), Spot},
		"uniform progress catches up on demand":              {&uniformProgress{}, state(Idle, false, h, 0), OnDemand},
		"uniform progress idles when ahead":                  {&uniformProgress{}, state(Idle, false, h, 48*time.Minute), Idle},
		"uniform progress keeps on demand without spot":      {&uniformProgress{}, state(OnDemand, false, 2*h, 10*h), OnDemand},
		"uniform progress keeps on demand while behind":      {&uniformProgress{}, state(OnDemand, true, 10*h, 8*h+10*time.Minute), OnDemand},
		"uniform progress leaves on demand once ahead":       {&uniformProgress{}, state(OnDemand, true, 10*h, 8*h+20*time.Minute), Spot},
		"uniform progress stays on spot while behind":        {&uniformProgress{}, state(Spot, true, 10*h, 0), Spot},
		"uniform progress goes on demand at the safety line": {&uniformProgress{}, state(Idle, true, 11*h+30*time.Minute, 0), OnDemand},
		"on demand is on demand":                             {onDemand{}, state(Idle, true, 0, 0), OnDemand},
	}
	checkDecisions(t, cases)
}

// A job without checkpoints, 2h of work due in 3h, 5-minute changeovers: a
// reclaim makes the deadline impossible once R(t) - protection - 10m < 2h10m.
func lossy(mode Mode, spot bool, elapsed, done, protected time.Duration) *State {
	s := &State{Job: Job{Work: 2 * time.Hour, Deadline: 3 * time.Hour, Changeover: 5 * time.Minute, LosesProgress: true}, Gap: 10 * time.Minute}
	s.Ask(elapsed, done, mode, func() bool { return spot })
	s.Protected = protected
	return s
}

func TestLosesProgress(t *testing.T) {
	m := time.Minute
	cases := map[string]decision{
		"greedy stays on spot while a reclaim leaves time":        {&greedy{}, lossy(Spot, true, 40*m, 35*m, 0), Spot},
		"greedy leaves spot when a reclaim would be too late":     {&greedy{}, lossy(Spot, true, 41*m, 36*m, 0), OnDemand},
		"greedy counts the protection left as time lost":          {&greedy{}, lossy(Spot, true, 20*m, 15*m, 30*m), OnDemand},
		"greedy stays on a spot instance protected to the end":    {&greedy{}, lossy(Spot, true, 120*m, 110*m, 20*m), Spot},
		"uniform progress leaves spot when a reclaim is too late": {&uniformProgress{}, lossy(Spot, true, 45*m, 40*m, 0), OnDemand},
		"uniform progress stays on spot while protected enough":   {&uniformProgress{}, lossy(Spot, true, 10*m, 5*m, 20*m), Spot},
		"uniform progress never leaves on demand for spot":        {&uniformProgress{}, lossy(OnDemand, true, 30*m, 25*m, 0), OnDemand},
		"uniform progress takes spot when idle":                   {&uniformProgress{}, lossy(Idle, true, 20*m, 0, 0), Spot},
		"uniform progress goes on demand at the safety line":      {&uniformProgress{}, lossy(Idle, true, 41*m, 0, 0), OnDemand},
	}
	checkDecisions(t, cases)
	// With checkpoints, the same states keep spot: the work is not lost.
	s := lossy(Spot, true, 41*m, 36*m, 0)
	s.Job.LosesProgress = false
	if s.MustLeaveSpot() {
		t.Error("a job that checkpoints must leave spot")
	}
	if got := (&uniformProgress{}).Decide(lossy(OnDemand, true, 10*m, 5*m, 0)); got != OnDemand {
		t.Errorf("uniform progress ahead on demand: %v", got)
	}
	s = lossy(Idle, true, 0, 0, 0)
	s.Ask(time.Hour, 0, Idle, nil)
	if s.Protected != 0 {
		t.Error("Ask keeps the protection of the last decision")
	}
}

// Hold is exact: the decision an idle policy took stands at every tick before
// the one Hold names, and changes there.
func TestHoldIsTheNextChange(t *testing.T) {
	makers := map[string]func() Policy{
		PolicyGreedy:          func() Policy { return &greedy{} },
		PolicyUniformProgress: func() Policy { return &uniformProgress{} },
	}
	for name, newPolicy := range makers {
		for tick := 0; tick < 80; tick += 7 {
			for done := time.Duration(0); done < 12*time.Hour; done += 37 * time.Minute {
				s := state(Idle, false, time.Duration(tick)*10*time.Minute, done)
				p := newPolicy()
				if p.Decide(s) != Idle {
					continue
				}
				hold := p.(Holder).Hold(s)
				for k := tick + 1; k <= min(hold, 400); k++ {
					got := newPolicy().Decide(state(Idle, false, time.Duration(k)*10*time.Minute, done))
					if k < hold && got != Idle {
						t.Fatalf("%s from tick %d, done %v: decides %v at tick %d, before the hold %d", name, tick, done, got, k, hold)
					}
					if k == hold && got == Idle {
						t.Fatalf("%s from tick %d, done %v: still idle at the hold %d", name, tick, done, hold)
					}
				}
			}
		}
	}
	if got := (&greedy{}).Hold(state(Spot, true, 0, 0)); got != math.MaxInt {
		t.Errorf("greedy on spot holds until %d, want for ever (until reclaimed)", got)
	}
}

func TestNew(t *testing.T) {
	for _, name := range Names() {
		if p, err := New(name); err != nil || p == nil {
			t.Errorf("New(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := New("lazy"); err == nil || !strings.Contains(err.Error(), PolicyUniformProgress) {
		t.Errorf("New(lazy): %v, want an error naming the policies", err)
	}
}

func TestJobValidate(t *testing.T) {
	if err := table3Job.Validate(); err != nil {
		t.Error(err)
	}
	for _, j := range []Job{{Work: 0, Deadline: time.Hour}, {Work: time.Hour, Deadline: time.Hour, Changeover: time.Minute}, {Work: time.Hour, Deadline: 2 * time.Hour, Changeover: -time.Minute}} {
		if err := j.Validate(); err == nil {
			t.Errorf("%+v: no error", j)
		}
	}
}
