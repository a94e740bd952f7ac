// Package clock gives market time: wall time scaled by a factor from an
// anchor, so that an hour of protection and 5-minute checks can be watched in
// a minute. Components take a Clock; only this package reads the wall clock.
package clock

import (
	"fmt"
	"time"
)

// Scaled is market time running Scale times faster than the wall clock from
// an anchor: at wall time AnchorWall the market time was AnchorMarket.
type Scaled struct {
	AnchorWall, AnchorMarket time.Time
	Scale                    float64
	// Wall reads the wall clock; nil means time.Now.
	Wall func() time.Time `json:"-"`
	// Before is the clock that was in force until AnchorWall, when the scale
	// changed: times from then convert as they did then.
	Before *Scaled `json:",omitempty"`
}

// NewScaled anchors market time at the wall clock now.
func NewScaled(scale float64) (Scaled, error) {
	if !(scale >= 1) || scale > 1e6 {
		return Scaled{}, fmt.Errorf("time scale %v: want a factor from 1 to 1000000", scale)
	}
	now := time.Now().UTC().Truncate(time.Second)
	return Scaled{AnchorWall: now, AnchorMarket: now, Scale: scale}, nil
}

func (c Scaled) wall() time.Time {
	if c.Wall != nil {
		return c.Wall()
	}
	return time.Now()
}

// Now is the market time now.
func (c Scaled) Now() time.Time { return c.MarketAt(c.wall()) }

// MarketAt converts a wall time to market time.
func (c Scaled) MarketAt(wall time.Time) time.Time {
	if c.Before != nil && wall.Before(c.AnchorWall) {
		return c.Before.MarketAt(wall)
	}
	return c.AnchorMarket.Add(time.Duration(float64(wall.Sub(c.AnchorWall)) * c.Scale)).UTC()
}

// WallAt converts a market time to wall time.
func (c Scaled) WallAt(market time.Time) time.Time {
	if c.Before != nil && market.Before(c.AnchorMarket) {
		return c.Before.WallAt(market)
	}
	return c.AnchorWall.Add(time.Duration(float64(market.Sub(c.AnchorMarket)) / c.Scale))
}

// WallUntil is the wall time until market time t comes; 0 if it has come.
func (c Scaled) WallUntil(t time.Time) time.Duration {
	d := time.Duration(float64(t.Sub(c.Now())) / c.Scale)
	return max(d, 0)
}

// Rescaled keeps market time continuous across a change of scale: the new
// clock starts, at the wall time now, from the market time the old one shows.
func (c Scaled) Rescaled(scale float64) Scaled {
	now := c.wall()
	old := c
	old.Wall = nil
	return Scaled{AnchorWall: now, AnchorMarket: c.MarketAt(now), Scale: scale, Wall: c.Wall, Before: &old}
}
