package console

import (
	"fmt"
	"slices"
	"time"

	"github.com/spoteci/spoteci/internal/market"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// moment is one point of an instance's timeline.
type moment struct {
	Time          time.Time
	Kind          string // Normal, Warning, or Planned (still ahead)
	Title, Detail string
}

// timeline is what happened to g, and what is planned, in time order: its
// events as the service tells them (creation, pulls and starts, the notice,
// the release), the end of its protection, the checks it passed, and the
// next check or the release still ahead. step is the market's period of
// checks.
func timeline(g eciapi.ContainerGroup, now time.Time, step time.Duration) []moment {
	var out []moment
	spot := !g.ProtectionEnd.IsZero() && !g.Degraded
	if spot && g.SpotDuration > 0 {
		kind := "Normal"
		if g.ProtectionEnd.After(now) {
			kind = "Planned"
		}
		out = append(out, moment{Time: g.ProtectionEnd, Kind: kind, Title: "Protection ends",
			Detail: fmt.Sprintf("%dh at the purchase price; then a check every %s", g.SpotDuration, every(step))})
	}
	if spot && step > 0 {
		out = append(out, checks(g, now, step)...)
	}
	for _, e := range g.Events {
		title := e.Reason
		if e.Container != "" {
			title += " (" + e.Container + ")"
		}
		out = append(out, moment{Time: e.Timestamp, Kind: e.Type, Title: title, Detail: e.Message})
	}
	if g.ExpiredTime != nil && g.ExpiredTime.After(now) {
		out = append(out, moment{Time: *g.ExpiredTime, Kind: "Planned", Title: "Release", Detail: "after the notice"})
	}
	slices.SortStableFunc(out, func(a, b moment) int { return a.Time.Compare(b.Time) })
	return out
}

// checks is the checks a spot instance passed, collapsed so that a
// long-lived instance's timeline stays short: the first, a line for those
// between, the last; then the next one ahead while it runs. The check that
// gave the notice is the notice itself (an event of the service).
func checks(g eciapi.ContainerGroup, now time.Time, step time.Duration) []moment {
	protection := g.ProtectionEnd.Sub(g.CreationTime)
	end, running := now, true
	switch {
	case g.NoticeTime != nil:
		end, running = *g.NoticeTime, false
	case g.SucceededTime != nil:
		end, running = *g.SucceededTime, false
	case g.ExpiredTime != nil:
		end, running = *g.ExpiredTime, false
	}
	first, last, n := market.ChecksBefore(g.CreationTime, protection, step, end)
	passed := func(t time.Time, detail string) moment {
		return moment{Time: t, Kind: "Normal", Title: "Check passed", Detail: detail}
	}
	const why = "the price at or under the bid, stock in the pool"
	var out []moment
	switch {
	case n > 3:
		out = append(out, passed(first, why),
			moment{Time: first.Add(step), Kind: "Normal", Title: fmt.Sprintf("… %d checks passed", n-2),
				Detail: fmt.Sprintf("every %s, from %s to %s", every(step), when(first.Add(step)), when(last.Add(-step)))},
			passed(last, why))
	case n > 0:
		for t := first; !t.After(last); t = t.Add(step) {
			out = append(out, passed(t, why))
		}
	}
	if running {
		out = append(out, moment{Time: market.NextCheck(g.CreationTime, protection, step, now), Kind: "Planned", Title: "Next check",
			Detail: "a price above the bid, or no stock left, gives the notice"})
	}
	return out
}

// every says a period as people do: "5 minutes".
func every(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "minute"
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
