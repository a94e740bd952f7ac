// Package deadline decides, for a job that must finish by a deadline, what
// it runs on next: spot, on demand (pay-as-you-go) or nothing, as in "Can't
// Be Late: Optimizing Spot Instance Savings under Deadlines" (Wu et al., NSDI
// 2024). It is the one implementation of the policies: the simulator
// (internal/sim/deadline) drives it over price traces, and the virtual node
// drives it for the pods of a live deadline Job. It is pure: the caller says
// the time, the progress and the mode, and answers whether spot is available
// only when the policy asks.
package deadline

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Job is the deadline job.
type Job struct {
	Work       time.Duration // C: the work to do
	Deadline   time.Duration // R: the time from the start to the deadline
	Changeover time.Duration // d: paid, without progress, at each (re)start on an instance
	// LosesProgress says the job does not checkpoint: each new instance
	// (after a reclaim, or a move the policy makes) starts the work over
	// from 0. The policies then never leave a running instance by choice,
	// except for the safety move of State.MustLeaveSpot.
	LosesProgress bool
}

// Validate reports whether the job can be simulated.
func (j Job) Validate() error {
	switch {
	case j.Work <= 0:
		return fmt.Errorf("deadline job: work %v must be positive", j.Work)
	case j.Deadline < j.Work+j.Changeover:
		return fmt.Errorf("deadline job: deadline %v is shorter than the work %v plus one changeover %v", j.Deadline, j.Work, j.Changeover)
	case j.Changeover < 0:
		return fmt.Errorf("deadline job: changeover %v must not be negative", j.Changeover)
	}
	return nil
}

// Mode is what the job runs on.
type Mode uint8

// The modes.
const (
	Idle Mode = iota
	Spot
	OnDemand
)

func (m Mode) String() string {
	switch m {
	case Idle:
		return "idle"
	case Spot:
		return "spot"
	case OnDemand:
		return "on-demand"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// State is what a policy knows when it decides.
type State struct {
	Job  Job
	Gap  time.Duration // the tick of the trace
	Tick int           // ticks since the start (floor)
	// Elapsed is t, the time since the start.
	Elapsed time.Duration
	// Done is cp(t), the progress made.
	Done time.Duration
	// Mode is what the job runs on now: Idle after a reclaim.
	Mode Mode
	// Protected is, on spot, how much of the instance's protection period is
	// left: the market reclaims nothing before it ends (ECI's rules). It is 0
	// when not on spot or when the rules have no protection. Ask zeroes it;
	// the caller sets it after Ask, when on spot.
	Protected time.Duration

	// spot answers SpotAvailable: spotYes, spotNo, or unknown until probe
	// asks the market, which only happens if the policy wants to know.
	spot  int8
	probe func() bool
}

// Ask readies s for a decision at elapsed, with the progress done and the
// mode in force. probe says whether the market would give a spot instance
// now; it is called at most once, and only if the policy asks. On spot, spot
// is available. Protected is zeroed: set it after Ask when on spot.
func (s *State) Ask(elapsed, done time.Duration, mode Mode, probe func() bool) {
	s.Elapsed, s.Done, s.Mode, s.Protected = elapsed, done, mode, 0
	s.Tick = 0
	if s.Gap > 0 {
		s.Tick = int(elapsed / s.Gap)
	}
	s.spot, s.probe = spotUnknown, probe
	if mode == Spot {
		s.spot = spotYes
	}
}

const (
	spotUnknown int8 = iota
	spotYes
	spotNo
)

// SpotAvailable says whether the market would create a spot instance now (or
// the job is on one).
func (s *State) SpotAvailable() bool {
	if s.spot == spotUnknown {
		s.spot = spotNo
		if s.probe != nil && s.probe() {
			s.spot = spotYes
		}
	}
	return s.spot == spotYes
}

// Left is C(t), the work left.
func (s *State) Left() time.Duration { return s.Job.Work - s.Done }

// Remaining is R(t), the time left to the deadline.
func (s *State) Remaining() time.Duration { return s.Job.Deadline - s.Elapsed }

// Expected is ep(t) = C(0)·t/R(0), the progress of a job that advances
// uniformly to its deadline.
func (s *State) Expected(t time.Duration) time.Duration {
	return time.Duration(float64(s.Job.Work) * (float64(t) / float64(s.Job.Deadline)))
}

// MustGoOnDemand is the safety net of greedy and uniform-progress: with one
// more tick gone, the work left and two changeovers would no longer fit before
// the deadline.
func (s *State) MustGoOnDemand() bool {
	return s.Remaining()-s.Gap < s.Left()+2*s.Job.Changeover
}

// MustLeaveSpot is the safety move of a job that loses its progress: on spot,
// a reclaim at the first moment the rules allow it (when the protection ends;
// now, without protection) would leave too little time to do the whole work
// again on demand with one more tick gone, and the protection does not cover
// the work left and a changeover. The job then goes on demand before its
// deadline is lost. Without protection it is R(t) - gap < C + 2d.
func (s *State) MustLeaveSpot() bool {
	return s.Job.LosesProgress && s.Mode == Spot && s.Protected < s.Left()+s.Job.Changeover &&
		s.Remaining()-s.Protected-s.Gap < s.Job.Work+2*s.Job.Changeover
}

// Policy decides, at each tick and after each reclaim, what the job runs on
// until the next decision. A policy belongs to one run: it may keep state.
type Policy interface {
	Decide(s *State) Mode
}

// A Holder is a Policy that knows how long its decision holds. Given the
// state right after a decision (s.Mode the mode now in force), Hold returns
// the first tick after s.Tick at which Decide could answer otherwise if the
// mode and the spot availability stayed as they are; math.MaxInt for never.
// The runner skips the ticks in between (a reclaim or a change of
// availability still wakes it), which saves time and changes nothing.
type Holder interface {
	Hold(s *State) int
}

// firstTickAfter is the first tick k after now with k·gap > x.
func firstTickAfter(now int, x, gap time.Duration) int {
	k := int(x / gap)
	if x < 0 && x%gap != 0 {
		k-- // floor
	}
	return max(now+1, k+1)
}

// safetyTick is the first tick after s.Tick at which MustGoOnDemand holds
// with no progress made in between: R - k·gap - gap < C(t) + 2d.
func safetyTick(s *State) int {
	return firstTickAfter(s.Tick, s.Job.Deadline-s.Gap-s.Left()-2*s.Job.Changeover, s.Gap)
}

// The names of the policies that decide online, from what they know now.
const (
	PolicyOnDemand        = "on-demand"
	PolicyGreedy          = "greedy"
	PolicyUniformProgress = "uniform-progress"
	// PolicyProtectedProgress is ProtectedProgress, the Paced policy a search
	// over traces under ECI's rules found cheaper than uniform progress.
	PolicyProtectedProgress = "protected-progress"
)

// Names lists the online policies in the order results show them.
func Names() []string {
	return []string{PolicyOnDemand, PolicyGreedy, PolicyUniformProgress, PolicyProtectedProgress}
}

// New returns a fresh policy named name, for one job.
func New(name string) (Policy, error) {
	switch name {
	case PolicyOnDemand:
		return onDemand{}, nil
	case PolicyGreedy:
		return &greedy{}, nil
	case PolicyUniformProgress:
		return &uniformProgress{}, nil
	case PolicyProtectedProgress:
		return ProtectedProgress.New(), nil
	}
	return nil, fmt.Errorf("unknown deadline policy %q: want %s", name, strings.Join(Names(), ", "))
}

// onDemand runs on demand from start to end: the baseline of savings.
type onDemand struct{}

func (onDemand) Decide(*State) Mode { return OnDemand }

func (onDemand) Hold(*State) int { return math.MaxInt }

// greedy takes spot whenever it is available and stays on it until reclaimed
// (or, for a job that loses its progress, until MustLeaveSpot); it idles
// otherwise, until the safety net sends it on demand for good.
type greedy struct{ committed bool }

func (g *greedy) Decide(s *State) Mode {
	if s.Mode == Spot && !g.committed && !s.MustLeaveSpot() {
		return Spot
	}
	if g.committed || s.MustGoOnDemand() || s.MustLeaveSpot() {
		g.committed = true
		return OnDemand
	}
	if s.SpotAvailable() {
		return Spot
	}
	return Idle
}

func (g *greedy) Hold(s *State) int {
	switch {
	case s.Mode == Idle:
		return safetyTick(s)
	case s.Mode == Spot && s.Job.LosesProgress && !g.committed:
		return s.Tick + 1 // the safety move watches the protection and the progress
	}
	return math.MaxInt
}

// uniformProgress is greedy with a floor under its progress: when spot is
// unavailable and the job is behind the uniform schedule ep(t), it runs on
// demand, and keeps on demand while spot stays unavailable. It leaves on
// demand for spot only once ahead of ep(t+2d) (hysteresis), and never when
// the job would lose its progress.
type uniformProgress struct{ committed bool }

func (u *uniformProgress) Decide(s *State) Mode {
	if s.Mode == Spot && !u.committed && !s.MustLeaveSpot() {
		return Spot
	}
	if u.committed || (s.Mode == Idle && s.MustGoOnDemand()) || s.MustLeaveSpot() ||
		(s.Mode == OnDemand && s.Job.LosesProgress) {
		u.committed = true
		return OnDemand
	}
	if s.SpotAvailable() {
		if s.Mode == OnDemand && s.Done < s.Expected(s.Elapsed+2*s.Job.Changeover) {
			return OnDemand
		}
		return Spot
	}
	if s.Mode == OnDemand || s.Done < s.Expected(s.Elapsed) {
		return OnDemand
	}
	return Idle
}

func (u *uniformProgress) Hold(s *State) int {
	switch {
	case s.Mode == Spot && s.Job.LosesProgress && !u.committed:
		return s.Tick + 1 // the safety move watches the protection and the progress
	case u.committed || s.Mode == Spot:
		return math.MaxInt
	case s.Mode == OnDemand && s.SpotAvailable():
		return s.Tick + 1 // the hysteresis compares moving progress: look again each tick
	case s.Mode == OnDemand:
		return math.MaxInt // on demand until spot comes back
	}
	// Idle: until the safety net, or until the uniform schedule overtakes
	// the progress. Find the latter with Expected itself, so the tick is the
	// one Decide would see.
	k := s.Tick + 1
	if s.Job.Work > 0 {
		k = max(k, int(float64(s.Done)/float64(s.Job.Work)*float64(s.Job.Deadline)/float64(s.Gap))-1)
	}
	for s.Done >= s.Expected(time.Duration(k)*s.Gap) {
		k++
	}
	return min(k, safetyTick(s))
}
