package deadline

import (
	"math"
	"time"
)

// Paced is a family of policies around uniform progress, whose parameters a
// search over traces tunes (internal/sim/deadline's policy search). Like
// uniform progress it stays on spot until reclaimed, keeps pace with a
// schedule ep(t) on demand when spot is gone, and falls back on the same
// safety net; it differs in the schedule, the hysteresis, and in using the
// protection period of spot instances (ECI's rules) at the end of the job.
//
// S = R - C is the slack. With Delay and Margin 0, Hysteresis 2 and Release
// < 0 its schedule and hysteresis are uniform progress's; it is not
// uniform progress itself: it commits to on demand at the safety net from
// on demand too, and LossyReach 0 sends a job without checkpoints on demand
// at once.
type Paced struct {
	// Delay and Margin shape the schedule: it starts Delay·S after the start
	// and reaches C at Margin·S before the deadline:
	// ep(t) = C·clamp((t - Delay·S) / (R - (Delay+Margin)·S), 0, 1).
	Delay, Margin float64
	// Hysteresis: on demand, the job moves to spot only once ahead of
	// ep(t + Hysteresis·d) (uniform progress: 2). Negative values move while
	// behind.
	Hysteresis float64
	// Release: on demand while spot is unavailable, the job stops and waits
	// once ahead of ep(t + Release·d); negative never (uniform progress).
	Release float64
	// EndSpot takes spot past the safety net when a fresh instance's
	// protection covers a changeover and the work left, so no reclaim can
	// come before the end. The protection of a fresh instance is learnt from
	// State.Protected on the first spot instance.
	EndSpot bool
	// For a job that loses its progress (Job.LosesProgress), where the
	// schedule means nothing (a reclaim takes the progress to 0): it takes
	// spot only if its work is at most LossyReach times the slack (past
	// that, a reclaim loses more than the slack can try again), waits idle
	// for spot until LossyWait·S, and goes on demand after.
	LossyReach, LossyWait float64
}

// New returns a fresh policy with these parameters, for one job.
func (p Paced) New() Policy { return &paced{Paced: p, spotFrom: -1} }

type paced struct {
	Paced
	committed bool
	ending    bool // on the spot instance that surely ends the job
	// fresh is the protection period of a new spot instance, learnt;
	// spotFrom when the current one was asked for, -1 when not on spot.
	fresh, spotFrom time.Duration
}

// expected is the schedule ep(t).
func (p *paced) expected(s *State, t time.Duration) time.Duration {
	slack := float64(s.Job.Deadline - s.Job.Work)
	from := p.Delay * slack
	span := float64(s.Job.Deadline) - (p.Delay+p.Margin)*slack
	x := (float64(t) - from) / span
	return time.Duration(float64(s.Job.Work) * min(max(x, 0), 1))
}

// endOnSpot says a fresh spot instance would surely finish the job in time.
func (p *paced) endOnSpot(s *State) bool {
	need := s.Left() + s.Job.Changeover
	return p.EndSpot && p.fresh >= need && s.Remaining() >= need+s.Gap && s.SpotAvailable()
}

func (p *paced) Decide(s *State) Mode {
	want := p.decide(s)
	if want == Spot && s.Mode != Spot {
		p.spotFrom = s.Elapsed
	}
	return want
}

func (p *paced) decide(s *State) Mode {
	d := s.Job.Changeover
	if s.Mode == Spot {
		p.learn(s)
		if p.ending || (!p.committed && !s.MustLeaveSpot()) {
			return Spot
		}
	} else {
		p.spotFrom, p.ending = -1, false
	}
	if s.Mode == OnDemand && s.Job.LosesProgress {
		p.committed = true // leaving would lose the work
	}
	if s.Job.LosesProgress && !p.committed && s.Mode == Idle {
		if slack := float64(s.Job.Deadline - s.Job.Work); float64(s.Job.Work) > p.LossyReach*slack ||
			float64(s.Elapsed) >= p.LossyWait*slack {
			p.committed = true
		}
	}
	if p.committed || (s.Mode != Spot && s.MustGoOnDemand()) || s.MustLeaveSpot() {
		p.committed = true
		if s.Mode != Spot && !s.Job.LosesProgress && p.endOnSpot(s) {
			p.ending = true
			return Spot
		}
		return OnDemand
	}
	if s.Job.LosesProgress {
		// Idle: spot unless a reclaim when its protection ends would force
		// the safety move at once.
		need := s.Job.Work + s.Job.Changeover
		if s.SpotAvailable() && (p.fresh >= need || s.Remaining()-p.fresh-s.Gap >= need+s.Job.Changeover) {
			return Spot
		}
		return Idle
	}
	if s.SpotAvailable() {
		if s.Mode == OnDemand && s.Done < p.expected(s, s.Elapsed+time.Duration(p.Hysteresis*float64(d))) {
			return OnDemand
		}
		return Spot
	}
	if s.Mode == OnDemand {
		if p.Release >= 0 && s.Done >= p.expected(s, s.Elapsed+time.Duration(p.Release*float64(d))) {
			return Idle
		}
		return OnDemand
	}
	if s.Done < p.expected(s, s.Elapsed) {
		return OnDemand
	}
	return Idle
}

// learn keeps the protection period of a new spot instance: what is left of
// the current one's and the time since it was asked for, while some is left.
func (p *paced) learn(s *State) {
	if p.spotFrom >= 0 && s.Protected > 0 {
		p.fresh = max(p.fresh, s.Protected+s.Elapsed-p.spotFrom)
	}
}

func (p *paced) Hold(s *State) int {
	if s.Mode == Spot {
		p.learn(s)
	}
	switch {
	case s.Mode == Spot && (p.ending || !s.Job.LosesProgress && !p.committed):
		return math.MaxInt // until reclaimed
	case s.Mode == OnDemand && p.committed && (!p.EndSpot || s.Job.LosesProgress):
		return math.MaxInt
	case s.Mode == OnDemand && !s.SpotAvailable() && p.Release < 0:
		return math.MaxInt // on demand until spot comes back
	}
	return s.Tick + 1
}

// ProtectedProgress is the winner of the policy search (candidate 651 of
// 2,000, seed 1, rounded; BENCHMARKS.md, "A policy cheaper than uniform
// progress"): a schedule that starts after 38% of the slack, so the job
// waits longer for spot before paying on demand; on demand, it moves to spot
// as soon as spot is back, even 9.5 changeovers behind the schedule (a
// spot instance progresses as fast, and under ECI its first hour cannot be
// reclaimed); past the safety net, it ends on a spot instance whose
// protection covers the rest; and a job without checkpoints whose work
// exceeds 1.5 times its slack goes on demand at once.
var ProtectedProgress = Paced{Delay: 0.38, Hysteresis: -9.5, Release: -1, EndSpot: true, LossyReach: 1.5, LossyWait: 0.54}
