package deadline

import (
	"testing"
	"time"
)

func TestPaced(t *testing.T) {
	h, m := time.Hour, time.Minute
	cases := map[string]struct {
		policy *paced
		s      *State
		want   Mode
	}{
		"a negative hysteresis leaves on demand for spot while behind": {
			&paced{Paced: Paced{Hysteresis: -5}}, state(OnDemand, true, 10*h, 7*h+30*m), Spot},
		"the hysteresis of uniform progress keeps on demand": {
			&paced{Paced: Paced{Hysteresis: 2}}, state(OnDemand, true, 10*h, 7*h+30*m), OnDemand},
		"a later schedule idles where uniform progress runs on demand": {
			&paced{Paced: Paced{Delay: 0.5}}, state(Idle, false, 5*h, 3*h), Idle},
		"release: on demand ahead of the schedule without spot stops": {
			&paced{Paced: Paced{Release: 1}}, state(OnDemand, false, 5*h, 5*h), Idle},
		"no release keeps on demand": {
			&paced{Paced: Paced{Release: -1}}, state(OnDemand, false, 5*h, 5*h), OnDemand},
		"past the safety net, a protected spot instance ends the job": {
			&paced{Paced: Paced{EndSpot: true}, fresh: h}, state(Idle, true, 59*h, 47*h+30*m), Spot},
		"past the safety net, too much work for the protection": {
			&paced{Paced: Paced{EndSpot: true}, fresh: h}, state(Idle, true, 59*h, 47*h), OnDemand},
		"past the safety net, nothing learnt of the protection": {
			&paced{Paced: Paced{EndSpot: true}}, state(Idle, true, 59*h, 47*h+30*m), OnDemand},
		"without checkpoints, too much work for the slack goes on demand": {
			&paced{Paced: Paced{LossyReach: 1, LossyWait: 1}}, lossy(Idle, true, 0, 0, 0), OnDemand},
		"without checkpoints, spot when a reclaim would leave time": {
			&paced{Paced: Paced{LossyReach: 3, LossyWait: 1}}, lossy(Idle, true, 0, 0, 0), Spot},
		"without checkpoints, no spot the protection would make leave at once": {
			&paced{Paced: Paced{LossyReach: 3, LossyWait: 1}, fresh: h}, lossy(Idle, true, 0, 0, 0), Idle},
		"without checkpoints, on demand once the wait is over": {
			&paced{Paced: Paced{LossyReach: 3, LossyWait: 0.5}}, lossy(Idle, false, 30*m, 0, 0), OnDemand},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.policy.spotFrom = -1
			if got := tc.policy.Decide(tc.s); got != tc.want {
				t.Errorf("Decide(%+v) = %v, want %v", *tc.s, got, tc.want)
			}
		})
	}
}

// The protection of a new spot instance is learnt from the first one.
func TestPacedLearnsTheProtection(t *testing.T) {
	p := Paced{}.New().(*paced)
	s := state(Idle, true, time.Hour, 2*time.Hour)
	if p.Decide(s) != Spot {
		t.Fatal("no spot")
	}
	s.Ask(time.Hour+20*time.Minute, 2*time.Hour+8*time.Minute, Spot, nil)
	s.Protected = 40 * time.Minute
	p.Decide(s)
	if p.fresh != time.Hour {
		t.Errorf("learnt a protection of %v, want 1h", p.fresh)
	}
}
