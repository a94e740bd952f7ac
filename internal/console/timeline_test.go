package console

import (
	"fmt"
	"strings"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestTimeline draws the timelines of made-up groups: the checks of a spot
// instance collapsed between protection and its notice (or now), none for
// pay-as-you-go.
func TestTimeline(t *testing.T) {
	const step = 5 * time.Minute
	t0 := time.Date(2026, 4, 8, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ptr := func(t time.Time) *time.Time { return &t }
	created := eciapi.Event{Type: "Normal", Reason: "Created", Timestamp: t0}
	spot := func(protection int) eciapi.ContainerGroup {
		return eciapi.ContainerGroup{SpotStrategy: eciapi.SpotWithPriceLimit, SpotDuration: protection, CreationTime: t0,
			ProtectionEnd: at(time.Duration(protection) * time.Hour), Events: []eciapi.Event{created}}
	}
	// show is a timeline as lines "minutes kind title".
	show := func(ms []moment) string {
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%v %s %s\n", m.Time.Sub(t0), m.Kind, m.Title)
		}
		return b.String()
	}

	running := spot(1)
	noticed := spot(1)
	noticed.NoticeTime, noticed.ExpiredTime = ptr(at(time.Hour+15*time.Minute)), ptr(at(time.Hour+20*time.Minute))
	noticed.Events = append(noticed.Events, eciapi.Event{Type: "Warning", Reason: "SpotToBeReleased", Timestamp: *noticed.NoticeTime})
	degraded := spot(1)
	degraded.Degraded = true
	payg := eciapi.ContainerGroup{SpotStrategy: eciapi.NoSpot, CreationTime: t0, Events: []eciapi.Event{created}}
	for _, c := range []struct {
		name string
		g    eciapi.ContainerGroup
		now  time.Time
		want string
	}{
		{"in protection", running, at(30 * time.Minute), "0s Normal Created\n1h0m0s Planned Protection ends\n1h0m0s Planned Next check\n"},
		{"long-lived, collapsed", running, at(3 * time.Hour),
			"0s Normal Created\n1h0m0s Normal Protection ends\n1h0m0s Normal Check passed\n1h5m0s Normal … 22 checks passed\n" +
				"2h55m0s Normal Check passed\n3h5m0s Planned Next check\n"},
		{"noticed: each check up to the notice's own", noticed, at(time.Hour + 17*time.Minute),
			"0s Normal Created\n1h0m0s Normal Protection ends\n1h0m0s Normal Check passed\n1h5m0s Normal Check passed\n" +
				"1h10m0s Normal Check passed\n1h15m0s Warning SpotToBeReleased\n1h20m0s Planned Release\n"},
		{"no protection", spot(0), at(12 * time.Minute), "0s Normal Created\n5m0s Normal Check passed\n10m0s Normal Check passed\n15m0s Planned Next check\n"},
		{"degraded: no checks", degraded, at(3 * time.Hour), "0s Normal Created\n"},
		{"pay-as-you-go: no checks", payg, at(3 * time.Hour), "0s Normal Created\n"},
	} {
		if got := show(timeline(c.g, c.now, step)); got != c.want {
			t.Errorf("%s:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
	collapsed := timeline(running, at(3*time.Hour), step)[3]
	if want := "every 5 minutes, from 2026-04-08 09:05:00 to 2026-04-08 10:50:00"; collapsed.Detail != want {
		t.Errorf("collapsed checks: %q, want %q", collapsed.Detail, want)
	}
}
