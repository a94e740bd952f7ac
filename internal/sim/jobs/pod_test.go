package jobs

import (
	"testing"
	"time"
)

func TestAttempt(t *testing.T) {
	m := time.Minute
	a := attempt{overhead: 6 * m, interval: 30 * m, cost: m, todo: 180 * m}
	// Overhead, then cycles of 30m of work and 1m of checkpoint; none after the last.
	if got, want := a.duration(), 6*m+180*m+5*m; got != want {
		t.Errorf("duration %v, want %v", got, want)
	}
	for _, tc := range []struct{ at, progress, saved time.Duration }{
		{0, 0, 0},
		{6 * m, 0, 0},
		{20 * m, 14 * m, 0},
		{36 * m, 30 * m, 0},      // the first checkpoint starts
		{37 * m, 30 * m, 30 * m}, // and is done
		{6*m + 119*m, 116 * m, 90 * m},
		{a.duration(), 180 * m, 150 * m}, // done: the last stretch needs no checkpoint
		{10 * time.Hour, 180 * m, 180 * m},
	} {
		if p, s := a.progress(tc.at), a.saved(tc.at); p != tc.progress || s != tc.saved {
			t.Errorf("at %v: progress %v saved %v, want %v and %v", tc.at, p, s, tc.progress, tc.saved)
		}
	}
	plain := attempt{overhead: 6 * m, todo: 60 * m}
	if plain.duration() != 66*m || plain.progress(30*m) != 24*m || plain.saved(30*m) != 0 {
		t.Errorf("no checkpoints: duration %v, progress %v, saved %v", plain.duration(), plain.progress(30*m), plain.saved(30*m))
	}
	exact := attempt{interval: 30 * m, cost: m, todo: 60 * m}
	if exact.duration() != 61*m {
		t.Errorf("work of two whole intervals takes %v, want one checkpoint between them: 61m", exact.duration())
	}
}
