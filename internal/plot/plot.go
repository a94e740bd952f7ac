// Package plot draws small charts as SVG: time series (price history,
// simulated timelines), bars, and log-log curves of how a time grows with a
// size. No dependencies, deterministic output.
package plot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Point is a value at a time.
type Point struct {
	T time.Time
	V float64
}

// Series is one line.
type Series struct {
	Name   string
	Points []Point
}

// Band is a stretch of time drawn in a lane of its own under the chart, e.g.
// an instance's life; a Label ending in "(reclaimed)" is drawn in red.
type Band struct {
	From, To time.Time
	Label    string
}

// Chart is a time chart.
type Chart struct {
	Title, YLabel string
	// Step draws each value flat until the next point (prices that hold).
	Step   bool
	Series []Series
	Bands  []Band
	// End extends step lines to this time (default: the last point).
	End time.Time
	// Elapsed labels the time axis with the time since its start, for
	// charts of minutes rather than days.
	Elapsed bool
	// Counts says the values count things: the value axis starts at 0 and
	// its ticks are whole numbers.
	Counts bool
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	width, height            = 960, 420
	left, right, top, bottom = 70, 230, 40, 50
	laneHeight, maxLanes     = 12, 40
)

// wholeStep is the least of 1, 2, 5, 10, 20, 50, ... at or above x: a tick
// step of whole numbers (at most 6 ticks for x = max/6).
func wholeStep(x float64) float64 {
	for step := 1.0; ; step *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if m*step >= x {
				return m * step
			}
		}
	}
}

// SVG writes the chart.
func (c Chart) SVG(w io.Writer) error {
	tmin, tmax, vmin, vmax := c.bounds()
	if tmin.IsZero() {
		return fmt.Errorf("plot: nothing to draw")
	}
	if !tmax.After(tmin) {
		tmax = tmin.Add(time.Hour)
	}
	if vmax <= vmin {
		vmax, vmin = vmax+1, math.Max(vmin-1, 0)
	}
	pad := (vmax - vmin) * 0.08
	vmin, vmax = math.Max(vmin-pad, 0), vmax+pad
	ticks, step := 4, (vmax-vmin)/4
	if c.Counts {
		step = wholeStep(vmax / 6)
		ticks = int(math.Ceil(vmax / step))
		vmin, vmax = 0, float64(ticks)*step
	}
	x := func(t time.Time) float64 {
		return left + float64(t.Sub(tmin))/float64(tmax.Sub(tmin))*(width-left-right)
	}
	y := func(v float64) float64 { return height - bottom - (v-vmin)/(vmax-vmin)*(height-top-bottom) }

	// The bands go in lanes under the time axis, a Gantt strip that shares it;
	// past maxLanes the lanes are reused from the top.
	lanes := min(len(c.Bands), maxLanes)
	total := height + lanes*laneHeight
	if lanes > 0 {
		total += 10
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, total, width, total)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16">%s</text>`+"\n", left, html.EscapeString(c.Title))
	for i, band := range c.Bands {
		x0, x1 := x(band.From), x(band.To)
		y0 := height + (i%maxLanes)*laneHeight
		color := "#2ca02c"
		if strings.HasSuffix(band.Label, "(reclaimed)") {
			color = "#d62728"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.55"><title>%s</title></rect>`+"\n",
			x0, y0, math.Max(x1-x0, 1), laneHeight-2, color, html.EscapeString(band.Label))
		if band.Label != "" && i < maxLanes {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" fill="#444">%s</text>`+"\n", width-right+10, y0+laneHeight-3, html.EscapeString(band.Label))
		}
	}
	// Axes: 5 ticks of time, and of values unless they count.
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="black" fill="none"/>`+"\n", left, top, height-bottom, width-right)
	for i := 0; i <= ticks; i++ {
		v := vmin + step*float64(i)
		label := fmt.Sprintf("%.3g", v)
		if c.Counts {
			label = fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, label)
		fmt.Fprintf(&b, `<path d="M%d %.1f H%d" stroke="#ddd"/>`+"\n", left, y(v), width-right)
	}
	for i := 0; i <= 4; i++ {
		t := tmin.Add(time.Duration(float64(tmax.Sub(tmin)) * float64(i) / 4))
		label := t.UTC().Format("01-02 15:04")
		if c.Elapsed {
			label = t.Sub(tmin).Round(time.Second).String()
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), height-bottom+18, label)
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>`+"\n", height/2, height/2, html.EscapeString(c.YLabel))
	for i, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		color := palette[i%len(palette)]
		var d strings.Builder
		for j, p := range s.Points {
			switch {
			case j == 0:
				fmt.Fprintf(&d, "M%.1f %.1f", x(p.T), y(p.V))
			case c.Step:
				fmt.Fprintf(&d, " H%.1f V%.1f", x(p.T), y(p.V))
			default:
				fmt.Fprintf(&d, " L%.1f %.1f", x(p.T), y(p.V))
			}
		}
		if c.Step {
			fmt.Fprintf(&d, " H%.1f", x(tmax))
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="1.5" fill="none"/>`+"\n", d.String(), color)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			width-right+10, top+16*i+6, color, width-right+28, top+16*i+10, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (c Chart) bounds() (tmin, tmax time.Time, vmin, vmax float64) {
	vmin, vmax = math.Inf(1), math.Inf(-1)
	see := func(t time.Time) {
		if tmin.IsZero() || t.Before(tmin) {
			tmin = t
		}
		if t.After(tmax) {
			tmax = t
		}
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			see(p.T)
			vmin, vmax = math.Min(vmin, p.V), math.Max(vmax, p.V)
		}
	}
	for _, b := range c.Bands {
		see(b.From)
		see(b.To)
	}
	if !c.End.IsZero() {
		see(c.End)
	}
	if math.IsInf(vmin, 0) {
		vmin, vmax = 0, 1
	}
	return tmin, tmax, vmin, vmax
}
