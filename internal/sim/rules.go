package sim

import (
	"fmt"
	"time"

	"github.com/spoteci/spoteci/internal/market"
)

// Rules are the market rules a simulation runs under: the market.Config of the
// core and how bids and launches are adjusted. Both rule sets run on the same
// core; they differ only in these settings.
type Rules struct {
	Name string // "eci" or "aws"
	// CheckInterval and NoticeLead go to market.Config.
	CheckInterval, NoticeLead time.Duration
	// NoProtection drops the protection period of every spot bid.
	NoProtection bool
	// Grid, when positive, starts every instance at the next multiple of Grid
	// after Anchor. With CheckInterval equal to Grid, the checks of an instance
	// then fall on the grid too, so a change of availability on the grid is
	// seen at the moment it happens.
	Grid   time.Duration
	Anchor time.Time
}

// The names of the rule sets.
const (
	RulesECI = "eci"
	RulesAWS = "aws"
)

// ECI are the rules of SPEC section 3: the bid's protection period, a check
// every 5 minutes after it, and the notice lead (SpotToBeReleased) before the
// release. noticeLead 0 means market.DefaultNoticeLead.
func ECI(noticeLead time.Duration) Rules {
	if noticeLead == 0 {
		noticeLead = market.DefaultNoticeLead
	}
	return Rules{Name: RulesECI, CheckInterval: market.DefaultCheckInterval, NoticeLead: noticeLead}
}

// AWS are the rules the "Can't Be Late" traces were simulated under: no
// protection, no notice, and a spot instance is gone the moment availability
// drops. The market changes every gap from anchor (a trace's tick), so the
// instances start on that grid and are checked at every tick.
func AWS(gap time.Duration, anchor time.Time) Rules {
	return Rules{Name: RulesAWS, CheckInterval: gap, NoProtection: true, Grid: gap, Anchor: anchor}
}

// ParseRules returns the rules named name. gap and anchor are the grid on which
// the market changes (a trace's ticks), for the aws rules; noticeLead is the
// lead of the eci rules (0: the default).
func ParseRules(name string, gap time.Duration, anchor time.Time, noticeLead time.Duration) (Rules, error) {
	switch name {
	case RulesECI:
		return ECI(noticeLead), nil
	case RulesAWS:
		if gap <= 0 {
			return Rules{}, fmt.Errorf("rules aws: need the period of the market's changes, got %v", gap)
		}
		return AWS(gap, anchor), nil
	}
	return Rules{}, fmt.Errorf("unknown rules %q: want %s or %s", name, RulesECI, RulesAWS)
}

// Config is the core's configuration under these rules.
func (r Rules) Config(p market.Prices) market.Config {
	return market.Config{Prices: p, CheckInterval: r.CheckInterval, NoticeLead: r.NoticeLead}
}

// Bid adjusts a bid to the rules.
func (r Rules) Bid(b market.Bid) market.Bid {
	if r.NoProtection {
		b.Protection = 0
	}
	return b
}

// Launch is when an instance asked for at t starts: t itself, or the next
// point of the grid.
func (r Rules) Launch(t time.Time) time.Time {
	if r.Grid <= 0 {
		return t
	}
	d := t.Sub(r.Anchor)
	n := d / r.Grid
	if d%r.Grid != 0 && d > 0 {
		n++
	}
	return r.Anchor.Add(n * r.Grid)
}
