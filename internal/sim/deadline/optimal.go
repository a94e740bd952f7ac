package deadline

import (
	"fmt"
	"math"
	"time"

	"github.com/spoteci/spoteci/internal/market"
)

// maxStates bounds the dynamic program: ticks to the deadline times the
// steps of slack.
const maxStates = 1 << 23

// Optimal returns the omniscient policy of a run from tick start: the
// cheapest schedule that meets the deadline with the whole trace known, found
// by dynamic programming and then played through the market like any policy.
//
// The program decides at the trace's ticks. How long a spot instance created
// at a tick lives is asked of the market core itself (a probe instance per
// tick, under the same rules), so the schedule knows the rules without a copy
// of them. Its states are (tick, waste), waste being the time so far not
// spent on progress (idle, changeovers); the job meets its deadline exactly
// when its waste stays within the slack R - C. A spot run lasts until its
// instance is reclaimed or the work is done: stopping spot earlier, for idle
// or on demand, never costs less at fixed prices. Under aws rules the result
// is the exact optimum; under eci rules, where a release may fall inside a
// tick, the job waits for the next tick and the waste of that partial tick is
// rounded up to the program's step, so it is the optimum among schedules
// that change only at ticks.
func Optimal(m *Market, job Job, start int) (Policy, error) {
	plan, _, err := m.Plan(job, start)
	if err != nil {
		return nil, err
	}
	return &planned{plan: plan}, nil
}

// planned follows a schedule fixed in advance, one mode per tick.
type planned struct{ plan []Mode }

func (p *planned) Decide(s *State) Mode {
	if s.Tick >= len(p.plan) {
		return OnDemand
	}
	want := p.plan[s.Tick]
	if want == Spot && !s.SpotAvailable() {
		return Idle // reclaimed inside a tick (eci rules): wait for the next one
	}
	return want
}

func (p *planned) Hold(s *State) int {
	if s.Tick >= len(p.plan) {
		return math.MaxInt
	}
	k := s.Tick + 1
	if s.Mode != p.plan[s.Tick] {
		return k // off the plan (spot was short): look again at the next tick
	}
	for k < len(p.plan) && p.plan[k] == p.plan[s.Tick] {
		k++
	}
	return k
}

// Plan computes the optimal schedule of a run from tick start: a mode per
// tick to the deadline, and its cost.
func (m *Market) Plan(job Job, start int) ([]Mode, float64, error) {
	if err := job.Validate(); err != nil {
		return nil, 0, err
	}
	G, R, C, d := int64(m.Gap()), int64(job.Deadline), int64(job.Work), int64(job.Changeover)
	N := int((R + G - 1) / G)
	if start < 0 || start+N > m.Ticks() {
		return nil, 0, fmt.Errorf("optimal: ticks %d to %d are not all in trace %s", start, start+N, m.Name)
	}
	q := gcd(G, d)
	S := int((R - C) / q) // the slack, in steps of q
	if N*(S+1) > maxStates {
		return nil, 0, fmt.Errorf("optimal: %d ticks of %v by %d steps of %v of slack exceed %d states: try a changeover that is a multiple of a larger part of the tick",
			N, m.Gap(), S+1, time.Duration(q), maxStates)
	}
	if job.LosesProgress {
		return m.planOnce(job, start, N)
	}
	life := m.lifetimes(job.Deadline)[start : start+N]
	rcap := int((d + G - 1) / G) // an on-demand run older than this has no changeover left
	od := m.Pool.OnDemand / float64(time.Hour)
	sp := m.Pool.Spot / float64(time.Hour)
	inf := math.Inf(1)
	W := S + 1

	// F[n*W+w]: the least cost to finish, free at tick n with waste w·q.
	// odNext/odCur[r*W+w]: the same, on an on-demand instance r ticks old.
	F := make([]float64, (N+1)*W)
	for w := range W {
		F[N*W+w] = inf
	}
	odNext := make([]float64, (rcap+1)*W)
	odCur := make([]float64, (rcap+1)*W)
	for i := range odNext {
		odNext[i] = inf
	}
	freeChoice := make([]Mode, N*W)
	odStay := make([]bool, N*(rcap+1)*W)
	for n := N - 1; n >= 0; n-- {
		t := int64(n) * G
		for r := rcap; r >= 0; r-- {
			o := min(max(d-int64(r)*G, 0), G) // changeover in this tick
			next := min(r+1, rcap)
			for w := range W {
				p := t - int64(w)*q // progress
				i := r*W + w
				if p+G-o >= C {
					odCur[i] = inf
					if t+o+C-p <= R {
						odCur[i] = od * float64(o+C-p)
					}
					continue
				}
				w2 := w + int(o/q)
				if w2 > S {
					odCur[i] = inf
					continue
				}
				stop, stay := F[(n+1)*W+w2], odNext[next*W+w2]
				odStay[(n*(rcap+1)+r)*W+w] = stay < stop
				odCur[i] = float64(od*float64(G)) + min(stop, stay) // no fused multiply-add: the same bits everywhere
			}
		}
		for w := range W {
			p := t - int64(w)*q
			best, choice := inf, Idle
			if L := int64(life[n]); L > 0 {
				var cost float64
				if p+L-d >= C {
					cost = inf
					if t+d+C-p <= R {
						cost = sp * float64(d+C-p)
					}
				} else {
					end := t + L
					n2 := int((end + G - 1) / G)
					waste := int64(n2)*G - t - max(L-d, 0)
					w2 := w + int((waste+q-1)/q)
					cost = inf
					if n2 <= N && w2 <= S {
						cost = float64(sp*float64(L)) + F[n2*W+w2]
					}
				}
				best, choice = cost, Spot
			}
			if w2 := w + int(G/q); w2 <= S && F[(n+1)*W+w2] < best {
				best, choice = F[(n+1)*W+w2], Idle
			}
			if v := odCur[w]; v < best {
				best, choice = v, OnDemand
			}
			F[n*W+w] = best
			freeChoice[n*W+w] = choice
		}
		odNext, odCur = odCur, odNext
	}
	if math.IsInf(F[0], 1) {
		return nil, 0, fmt.Errorf("optimal: no schedule from tick %d of %s meets the deadline", start, m.Name)
	}

	plan := make([]Mode, N)
	n, w := 0, 0
	for n < N {
		t := int64(n) * G
		p := t - int64(w)*q
		switch freeChoice[n*W+w] {
		case Idle:
			n, w = n+1, w+int(G/q)
		case Spot:
			L := int64(life[n])
			if p+L-d >= C {
				fill(plan[n:], Spot, int((d+C-p+G-1)/G))
				return plan, F[0], nil
			}
			n2 := int((t + L + G - 1) / G)
			fill(plan[n:], Spot, n2-n)
			w += int((int64(n2)*G - t - max(L-d, 0) + q - 1) / q)
			n = n2
		case OnDemand:
			for r := 0; n < N; r = min(r+1, rcap) {
				plan[n] = OnDemand
				o := min(max(d-int64(r)*G, 0), G)
				p := int64(n)*G - int64(w)*q
				if p+G-o >= C {
					return plan, F[0], nil
				}
				stay := odStay[(n*(rcap+1)+r)*W+w]
				n, w = n+1, w+int(o/q)
				if !stay {
					break
				}
			}
		}
	}
	return plan, F[0], nil
}

// planOnce is the optimum of a job that loses its progress: any instance that
// ends before the work is done is paid for nothing, so the cheapest schedule
// is one instance, spot from the first tick whose spot instance lives through
// the changeover and the work and ends by the deadline, else on demand.
func (m *Market) planOnce(job Job, start, N int) ([]Mode, float64, error) {
	G, need := m.Gap(), job.Changeover+job.Work
	life := m.lifetimes(job.Deadline)[start : start+N]
	plan := make([]Mode, N)
	for n := range N {
		if t := time.Duration(n) * G; t+need <= job.Deadline && life[n] >= need {
			fill(plan[n:], Spot, N-n)
			return plan, m.Pool.Spot * need.Hours(), nil
		}
		plan[n] = Idle
	}
	fill(plan, OnDemand, N)
	return plan, m.Pool.OnDemand * need.Hours(), nil
}

func fill(plan []Mode, m Mode, n int) {
	for i := range min(n, len(plan)) {
		plan[i] = m
	}
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// lifetimes returns, for each tick k of the trace, how long a spot instance
// created at tick k lives in this market: 0 when the market would not create
// one, more than horizon when it outlives the horizon. Each is a probe through
// a fresh core under the market's rules; the answers are kept per horizon.
func (m *Market) lifetimes(horizon time.Duration) []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if life, ok := m.lives[horizon]; ok {
		return life
	}
	life := make([]time.Duration, m.Ticks())
	for k := range life {
		core := m.core()
		t := m.At(k)
		in, err := core.Create(t, m.spot)
		if err != nil {
			continue
		}
		life[k] = horizon + 1
		for {
			due := core.NextDue()
			if due.IsZero() || due.Sub(t) > horizon {
				break
			}
			core.Advance(due)
			if in.State == market.Released {
				life[k] = in.Ended.Sub(t)
				break
			}
		}
	}
	m.lives[horizon] = life
	return life
}
