package plot

import (
	"bytes"
	"strings"
	"testing"
)

func TestLogLog(t *testing.T) {
	c := LogLog{Title: "Time to all Running", XLabel: "pods", YLabel: "seconds", Curves: []Curve{
		{Name: "kwok", Points: []XY{{100, 1.2}, {1000, 8.9}, {10000, 152}}},
		{Name: "model & <co>", Points: []XY{{100, 2}, {1000, 13.7}, {10000, 180}}},
	}}
	var out, again bytes.Buffer
	if err := c.SVG(&out); err != nil {
		t.Fatal(err)
	}
	c.SVG(&again)
	svg := out.String()
	if svg != again.String() {
		t.Error("two drawings differ")
	}
	// Decades on both axes: 100 to 10,000 pods, 1 to 1,000 seconds.
	for _, want := range []string{">100<", ">1000<", ">10000<", ">1<", ">10<", ">1000<", "model &amp; &lt;co&gt;", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<circle"); n != 6 {
		t.Errorf("%d points drawn, want 6", n)
	}
	for _, bad := range []LogLog{{}, {Curves: []Curve{{Name: "zero", Points: []XY{{0, 1}}}}}} {
		if err := bad.SVG(&out); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
