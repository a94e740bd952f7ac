package plot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// XY is a value at x (a count, a size), for charts of how something grows.
type XY struct{ X, Y float64 }

// Curve is one line of a LogLog chart, its points in order of X.
type Curve struct {
	Name   string
	Points []XY
}

// LogLog is a chart of curves on logarithmic axes: how a time grows with a
// size, where a straight line is a power law and a doubling is a doubling
// wherever it is.
type LogLog struct {
	Title, XLabel, YLabel string
	Curves                []Curve
}

// SVG writes the chart. Every value must be positive.
func (c LogLog) SVG(w io.Writer) error {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, cv := range c.Curves {
		for _, p := range cv.Points {
			if !(p.X > 0 && p.Y > 0) || math.IsInf(p.X, 0) || math.IsInf(p.Y, 0) {
				return fmt.Errorf("plot: %s has a point (%v, %v) a log axis cannot show", cv.Name, p.X, p.Y)
			}
			xmin, xmax, ymin, ymax = math.Min(xmin, p.X), math.Max(xmax, p.X), math.Min(ymin, p.Y), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 0) {
		return fmt.Errorf("plot: nothing to draw")
	}
	// Whole decades, so that the ticks are 1, 10, 100...
	lx0, lx1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	lx1, ly1 = math.Max(lx1, lx0+1), math.Max(ly1, ly0+1)
	x := func(v float64) float64 { return left + (math.Log10(v)-lx0)/(lx1-lx0)*(width-left-right) }
	y := func(v float64) float64 { return height - bottom - (math.Log10(v)-ly0)/(ly1-ly0)*(height-top-bottom) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16">%s</text>`+"\n", left, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="black" fill="none"/>`+"\n", left, top, height-bottom, width-right)
	for e := lx0; e <= lx1; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<path d="M%.1f %d V%d" stroke="#ddd"/>`+"\n", x(v), top, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(v), height-bottom+18, v)
	}
	for e := ly0; e <= ly1; e++ {
		v := math.Pow(10, e)
		fmt.Fprintf(&b, `<path d="M%d %.1f H%d" stroke="#ddd"/>`+"\n", left, y(v), width-right)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (left+width-right)/2, height-10, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>`+"\n", height/2, height/2, html.EscapeString(c.YLabel))
	for i, cv := range c.Curves {
		if len(cv.Points) == 0 {
			continue
		}
		color := palette[i%len(palette)]
		var d strings.Builder
		for j, p := range cv.Points {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, x(p.X), y(p.Y))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %g, %.3g</title></circle>`+"\n",
				x(p.X), y(p.Y), color, html.EscapeString(cv.Name), p.X, p.Y)
		}
		fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="1.5" fill="none"/>`+"\n", strings.TrimSpace(d.String()), color)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="3" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			width-right+10, top+16*i+6, color, width-right+28, top+16*i+10, html.EscapeString(cv.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
