package plot

import (
	"bytes"
	"strings"
	"testing"
)

func TestBars(t *testing.T) {
	b := Bars{Title: "Cost <by> policy", YLabel: "cost", Labels: []string{"on-demand", "greedy"}, Values: []float64{147.5, 110.3}}
	var out, again bytes.Buffer
	if err := b.SVG(&out); err != nil {
		t.Fatal(err)
	}
	b.SVG(&again)
	svg := out.String()
	if svg != again.String() {
		t.Error("two drawings differ")
	}
	for _, want := range []string{"<svg", "Cost &lt;by&gt; policy", ">on-demand<", ">greedy<", ">147.5<", ">110.3<", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<rect"); n != 3 {
		t.Errorf("%d rects, want the background and two bars", n)
	}
	for _, bad := range []Bars{{}, {Labels: []string{"a"}}, {Labels: []string{"a"}, Values: []float64{-1}}} {
		if err := bad.SVG(&out); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
