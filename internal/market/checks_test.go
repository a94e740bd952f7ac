package market_test

import (
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/market"
)

// TestCheckGrid: checks fall on the grid anchored at creation, the first at
// the end of protection rounded up to the grid, never at creation itself.
func TestCheckGrid(t *testing.T) {
	const step = 5 * time.Minute
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, c := range []struct {
		protection, t, want time.Duration
	}{
		{0, 0, step},                      // no protection: not at creation, one step later
		{0, step, 2 * step},               // strictly after a check
		{0, step + time.Second, 2 * step}, // between two checks
		{time.Hour, 0, time.Hour},         // protection ends on the grid
		{time.Hour, time.Hour - time.Nanosecond, time.Hour},
		{time.Hour, time.Hour, time.Hour + step},
		{2*time.Minute + 30*time.Second, 0, step}, // rounded up to the grid
		{7 * time.Minute, 3 * time.Hour, 3*time.Hour + step},
	} {
		if got := market.NextCheck(t0, c.protection, step, at(c.t)); !got.Equal(at(c.want)) {
			t.Errorf("NextCheck(protection %v, after %v) = %v, want %v", c.protection, c.t, got.Sub(t0), c.want)
		}
	}
	for _, c := range []struct {
		protection, t, first, last time.Duration
		n                          int
	}{
		{time.Hour, time.Hour, 0, 0, 0}, // the first check is not before itself
		{time.Hour, time.Hour + time.Nanosecond, time.Hour, time.Hour, 1},
		{time.Hour, 2 * time.Hour, time.Hour, 2*time.Hour - step, 12},
		{time.Hour, 2*time.Hour + time.Second, time.Hour, 2 * time.Hour, 13},
		{0, 30 * time.Minute, step, 25 * time.Minute, 5},
	} {
		first, last, n := market.ChecksBefore(t0, c.protection, step, at(c.t))
		if n != c.n || n > 0 && (!first.Equal(at(c.first)) || !last.Equal(at(c.last))) || n == 0 && (!first.IsZero() || !last.IsZero()) {
			t.Errorf("ChecksBefore(protection %v, %v) = %v, %v, %d; want %v, %v, %d", c.protection, c.t, first.Sub(t0), last.Sub(t0), n, c.first, c.last, c.n)
		}
		// Each check counted is one NextCheck steps through.
		if n > 0 {
			k, tt := 0, t0
			for tt = market.NextCheck(t0, c.protection, step, tt); tt.Before(at(c.t)); tt = market.NextCheck(t0, c.protection, step, tt) {
				k++
			}
			if k != n {
				t.Errorf("protection %v, before %v: NextCheck steps %d checks, ChecksBefore counts %d", c.protection, c.t, k, n)
			}
		}
	}
}
