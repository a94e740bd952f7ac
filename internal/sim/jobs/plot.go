package jobs

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/plot"
	"github.com/spoteci/spoteci/internal/prices"
)

// maxPlotPools bounds the price lines of a timeline.
const maxPlotPools = 6

// Timeline draws the instances of the recorded Jobs of res as bands over the
// spot price of the pools they ran in.
func Timeline(res PolicyResult, prices market.Prices, title string) (plot.Chart, error) {
	if len(res.Lives) == 0 {
		return plot.Chart{}, errors.New("timeline: no recorded instance")
	}
	from, to := res.Lives[0].From, res.Lives[0].To
	var pools []*catalog.Offering
	for _, l := range res.Lives {
		from, to = minTime(from, l.From), maxTime(to, l.To)
		if !slices.Contains(pools, l.Offering) {
			pools = append(pools, l.Offering)
		}
	}
	slices.SortFunc(pools, func(a, b *catalog.Offering) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.Type.Name, b.Type.Name))
	})
	c := plot.Chart{Title: title, YLabel: "spot price per hour", Step: true, End: to}
	for _, o := range pools[:min(len(pools), maxPlotPools)] {
		s := plot.Series{Name: o.Zone + " " + o.Type.Name}
		for _, p := range prices.Path(o, from, to) {
			s.Points = append(s.Points, plot.Point{T: p.At, V: p.Price})
		}
		c.Series = append(c.Series, s)
	}
	for _, l := range res.Lives {
		kind := "payg"
		if l.Spot {
			kind = "spot"
		}
		label := fmt.Sprintf("job %d pod %d %s", l.Job, l.Pod, kind)
		if l.Released {
			label += " (reclaimed)"
		}
		c.Bands = append(c.Bands, plot.Band{From: l.From, To: l.To, Label: label})
	}
	return c, nil
}

// CostChart draws the mean cost per Job of each policy.
func CostChart(results []PolicyResult, title string) plot.Bars {
	b := plot.Bars{Title: title, YLabel: "mean cost per Job"}
	for _, r := range results {
		b.Labels = append(b.Labels, r.Summary.Policy)
		b.Values = append(b.Values, r.Summary.CostMean)
	}
	return b
}

// StockChart draws the spot stock of the pools the recorded Jobs of res ran
// in, with their instances as bands; false when no pool's stock changes over
// that time (no trace covers them).
func StockChart(res PolicyResult, src *prices.Book, title string) (plot.Chart, bool) {
	if len(res.Lives) == 0 {
		return plot.Chart{}, false
	}
	chart, err := Timeline(res, src, title)
	if err != nil {
		return plot.Chart{}, false
	}
	from, to := res.Lives[0].From, chart.End
	for _, l := range res.Lives {
		from = minTime(from, l.From)
	}
	changes := false
	chart.YLabel = "spot stock"
	for i, s := range chart.Series {
		var o *catalog.Offering
		for _, l := range res.Lives {
			if l.Offering.Zone+" "+l.Offering.Type.Name == s.Name {
				o = l.Offering
			}
		}
		s.Points = s.Points[:0:0]
		for t := from; t.Before(to); {
			v := float64(src.Quote(o, t).Stock)
			if n := len(s.Points); n == 0 || s.Points[n-1].V != v {
				s.Points = append(s.Points, plot.Point{T: t, V: v})
				changes = changes || n > 0
			}
			next := src.NextChange(t)
			if next.IsZero() {
				break
			}
			t = next
		}
		chart.Series[i] = s
	}
	return chart, changes
}
