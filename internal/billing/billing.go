// Package billing sums an ECI bill (DescribeBill) per pod, Job or
// namespace from the tags the virtual node puts on its groups, and judges a
// deadline Job by its deadline: what the CLI's "spoteci bill --by" and the
// web console show, from one implementation.
package billing

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/clock"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// The groupings By takes.
const (
	ByPod       = "pod"
	ByJob       = "job"
	ByNamespace = "namespace"
)

// Row is the bill of one pod, Job or namespace.
type Row struct {
	Key            string // namespace/pod, namespace/job, or namespace
	Instances      int
	Seconds        float64
	Amount         float64
	OnDemandAmount float64
	// Deadline is a Job's (its instances' eciapi.TagDeadline), a wall time;
	// Met says whether the Job met it (MetYes, MetNo, MetPending). Both by Job only.
	Deadline *time.Time `json:",omitempty"`
	Met      string     `json:",omitempty"`

	running bool      // an instance runs still
	lastEnd time.Time // the wall time the last ended instance ended
}

// The values of Row.Met.
const (
	MetYes     = "yes"     // every instance ended, the last at or before the deadline
	MetNo      = "no"      // one ended, or runs still, after the deadline
	MetPending = "pending" // an instance runs, and the deadline is still ahead
)

// By sums the bill's items per pod, Job or namespace (ByPod, ByJob,
// ByNamespace), from the tags the virtual node puts on its groups; a group
// without them is "-". Per Job it also says whether a deadline Job met its
// deadline.
func By(resp eciapi.DescribeBillResponse, by string) []Row {
	wallAt := func(t time.Time) time.Time { return t }
	if resp.TimeScale > 0 && !resp.WallTime.IsZero() {
		// The node writes the deadline on the wall clock; the bill's times
		// are the market's.
		wallAt = clock.Scaled{AnchorMarket: resp.Time, AnchorWall: resp.WallTime, Scale: resp.TimeScale}.WallAt
	}
	index := map[string]int{}
	var rows []Row
	for _, it := range resp.Items {
		tags := map[string]string{}
		for _, t := range it.Tags {
			tags[t.Key] = t.Value
		}
		ns, key := tags[eciapi.TagNamespace], "-"
		switch {
		case ns == "":
		case by == ByNamespace:
			key = ns
		case by == ByPod && tags[eciapi.TagPod] != "":
			key = ns + "/" + tags[eciapi.TagPod]
		case by == ByJob && tags[eciapi.TagJob] != "":
			key = ns + "/" + tags[eciapi.TagJob]
		}
		i, ok := index[key]
		if !ok {
			i = len(rows)
			index[key] = i
			rows = append(rows, Row{Key: key})
		}
		r := &rows[i]
		r.Instances++
		r.Seconds += it.Seconds
		r.Amount += it.Amount
		r.OnDemandAmount += it.OnDemandAmount
		if by != ByJob || key == "-" {
			continue
		}
		if d, err := time.Parse(time.RFC3339, tags[eciapi.TagDeadline]); err == nil && r.Deadline == nil {
			r.Deadline = &d
		}
		switch {
		case it.EndTime == nil:
			r.running = true
		case wallAt(*it.EndTime).After(r.lastEnd):
			r.lastEnd = wallAt(*it.EndTime)
		}
	}
	for i := range rows {
		if r := &rows[i]; r.Deadline != nil {
			r.Met = deadlineMet(*r.Deadline, r.running, r.lastEnd, wallAt(resp.Time))
		}
	}
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Key, b.Key) })
	return rows
}

// deadlineMet judges a Job by its deadline at now: whether an instance runs
// still, and when the last ended one ended (zero if none did).
func deadlineMet(deadline time.Time, running bool, lastEnd, now time.Time) string {
	switch {
	case lastEnd.After(deadline), running && now.After(deadline):
		return MetNo
	case running:
		return MetPending
	}
	return MetYes
}

// Saved is what amount saved against the pay-as-you-go payg, as a
// percentage ("-" without a pay-as-you-go cost).
func Saved(amount, payg float64) string {
	if payg == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*(1-amount/payg))
}
