package plot

import (
	"strings"
	"testing"
	"time"
)

// TestElapsedAxis: an Elapsed chart labels its time axis from its start.
func TestElapsedAxis(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	c := Chart{Title: "storm", Step: true, Series: []Series{{Name: "n", Points: []Point{{T: t0, V: 0}, {T: t0.Add(8 * time.Minute), V: 10}}}}}
	var dated, elapsed strings.Builder
	if err := c.SVG(&dated); err != nil {
		t.Fatal(err)
	}
	c.Elapsed = true
	if err := c.SVG(&elapsed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dated.String(), ">11-28 03:00<") {
		t.Errorf("dated axis lacks its start's date")
	}
	for _, want := range []string{">0s<", ">2m0s<", ">8m0s<"} {
		if !strings.Contains(elapsed.String(), want) {
			t.Errorf("elapsed axis lacks %s", want)
		}
	}
}

// TestCountsAxis: a chart of counts has whole-number ticks from 0.
func TestCountsAxis(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		max  float64
		want []string
	}{
		{2, []string{">0<", ">1<", ">2<", ">3<"}},
		{1000, []string{">0<", ">200<", ">1000<", ">1200<"}},
	} {
		chart := Chart{Counts: true, Step: true, Series: []Series{{Name: "n", Points: []Point{{T: t0, V: 0}, {T: t0.Add(time.Minute), V: c.max}}}}}
		var b strings.Builder
		if err := chart.SVG(&b); err != nil {
			t.Fatal(err)
		}
		for _, want := range c.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("counts to %v: the axis lacks %s", c.max, want)
			}
		}
	}
}
