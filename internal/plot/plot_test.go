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
