package plot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Bars is a bar chart of one value per label, e.g. the cost of each policy.
type Bars struct {
	Title, YLabel string
	Labels        []string
	Values        []float64
}

// SVG writes the chart.
func (c Bars) SVG(w io.Writer) error {
	if len(c.Labels) == 0 || len(c.Labels) != len(c.Values) {
		return fmt.Errorf("plot: %d labels for %d values", len(c.Labels), len(c.Values))
	}
	vmax := 0.0
	for _, v := range c.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf("plot: bar value %v", v)
		}
		vmax = math.Max(vmax, v)
	}
	if vmax == 0 {
		vmax = 1
	}
	vmax *= 1.1
	plotW := float64(width - left - 40)
	y := func(v float64) float64 { return height - bottom - v/vmax*(height-top-bottom) }
	slot := plotW / float64(len(c.Values))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16">%s</text>`+"\n", left, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%.1f" stroke="black" fill="none"/>`+"\n", left, top, height-bottom, left+plotW)
	for i := 0; i <= 4; i++ {
		v := vmax * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.3g</text>`+"\n", left-6, y(v)+4, v)
		fmt.Fprintf(&b, `<path d="M%d %.1f H%.1f" stroke="#ddd"/>`+"\n", left, y(v), left+plotW)
	}
	fmt.Fprintf(&b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>`+"\n", height/2, height/2, html.EscapeString(c.YLabel))
	for i, v := range c.Values {
		x := left + slot*float64(i) + slot*0.15
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(v), slot*0.7, y(0)-y(v), palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.4g</text>`+"\n", x+slot*0.35, y(v)-4, v)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x+slot*0.35, height-bottom+18, html.EscapeString(c.Labels[i]))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
