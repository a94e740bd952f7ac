package deadline

import (
	"fmt"

	"github.com/spoteci/spoteci/internal/plot"
)

// Timeline draws run r of policy: whether the trace had spot stock over the
// window to the deadline (1 or 0), the fraction of the work done, and the
// life of each instance as a band.
func (m *Market) Timeline(job Job, policy string, r Result) plot.Chart {
	t0 := m.At(r.Start)
	end := t0.Add(job.Deadline)
	avail := plot.Series{Name: "spot stock"}
	ticks := int((job.Deadline + m.Gap() - 1) / m.Gap())
	for k := 0; k <= ticks && r.Start+k < m.Ticks(); k++ {
		v := 0.0
		if m.Trace.Data[r.Start+k] {
			v = 1
		}
		// Drawn as steps by hand: the progress beside it is a line.
		at := m.At(r.Start + k)
		if n := len(avail.Points); n == 0 {
			avail.Points = append(avail.Points, plot.Point{T: at, V: v})
		} else if avail.Points[n-1].V != v {
			avail.Points = append(avail.Points, plot.Point{T: at, V: avail.Points[n-1].V}, plot.Point{T: at, V: v})
		}
	}
	if n := len(avail.Points); n > 0 {
		avail.Points = append(avail.Points, plot.Point{T: end, V: avail.Points[n-1].V})
	}
	progress := plot.Series{Name: "work done"}
	for _, p := range r.Progress {
		progress.Points = append(progress.Points, plot.Point{T: p.At, V: float64(p.Done) / float64(job.Work)})
	}
	c := plot.Chart{
		Title:  fmt.Sprintf("%s on %s from tick %d (%s rules)", policy, m.Name, r.Start, m.Rules.Name),
		YLabel: "stock; fraction of work done",
		End:    end,
		Series: []plot.Series{avail, progress},
	}
	for _, l := range r.Lives {
		label := l.Mode.String()
		if l.Released {
			label += " (reclaimed)"
		}
		c.Bands = append(c.Bands, plot.Band{From: l.From, To: l.To, Label: label})
	}
	return c
}

// CostChart draws the mean cost of each policy.
func CostChart(rep *Report, title string) plot.Bars {
	b := plot.Bars{Title: title, YLabel: "mean cost per job"}
	for _, s := range rep.Policies {
		b.Labels = append(b.Labels, s.Policy)
		b.Values = append(b.Values, s.CostMean)
	}
	return b
}
