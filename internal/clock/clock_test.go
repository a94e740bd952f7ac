package clock

import (
	"testing"
	"time"
)

func TestScaled(t *testing.T) {
	wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Scaled{AnchorWall: wall, AnchorMarket: wall.Add(time.Hour), Scale: 60, Wall: func() time.Time { return wall }}
	wall = wall.Add(time.Minute)
	if got, want := c.Now(), wall.Add(time.Hour+59*time.Minute); !got.Equal(want) {
		t.Fatalf("one wall minute at x60: market %v, want %v", got, want)
	}
	if got := c.WallUntil(c.Now().Add(5 * time.Minute)); got != 5*time.Second {
		t.Errorf("5 market minutes at x60 = %v of wall time, want 5s", got)
	}
	if got := c.WallUntil(c.Now().Add(-time.Minute)); got != 0 {
		t.Errorf("a past market time is %v away, want 0", got)
	}
	before := c.Now()
	r := c.Rescaled(3600)
	if !r.Now().Equal(before) {
		t.Errorf("rescaling jumped market time from %v to %v", before, r.Now())
	}
	wall = wall.Add(time.Second)
	if got := r.Now().Sub(before); got != time.Hour {
		t.Errorf("one wall second at x3600 = %v of market time, want 1h", got)
	}
	// Times from before the change convert as they did then (a container
	// that ended while the server was down is billed to its real end).
	early := wall.Add(-2 * time.Second)
	if got, want := r.MarketAt(early), c.MarketAt(early); !got.Equal(want) {
		t.Errorf("a wall time before the rescale maps to %v, want %v as before", got, want)
	}
	if got := r.WallAt(c.MarketAt(early)); !got.Equal(early) {
		t.Errorf("WallAt(MarketAt(t)) = %v, want %v", got, early)
	}
	if _, err := NewScaled(0.5); err == nil {
		t.Error("scale 0.5 accepted")
	}
}
