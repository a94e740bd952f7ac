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
	key := func(it eciapi.BillItem) string {
		ns := eciapi.TagValue(it.Tags, eciapi.TagNamespace)
		switch {
		case ns == "":
		case by == ByNamespace:
			return ns
		case by == ByPod && eciapi.TagValue(it.Tags, eciapi.TagPod) != "":
			return ns + "/" + eciapi.TagValue(it.Tags, eciapi.TagPod)
		case by == ByJob && eciapi.TagValue(it.Tags, eciapi.TagJob) != "":
			return ns + "/" + eciapi.TagValue(it.Tags, eciapi.TagJob)
		}
		return "-"
	}
	var judge func(r *Row, it eciapi.BillItem)
	if by == ByJob {
		judge = func(r *Row, it eciapi.BillItem) {
			if r.Key == "-" {
				return
			}
			if d, err := time.Parse(time.RFC3339, eciapi.TagValue(it.Tags, eciapi.TagDeadline)); err == nil && r.Deadline == nil {
				r.Deadline = &d
			}
			switch {
			case it.EndTime == nil:
				r.running = true
			case wallAt(*it.EndTime).After(r.lastEnd):
				r.lastEnd = wallAt(*it.EndTime)
			}
		}
	}
	rows := sum(resp.Items, key, judge)
	for i := range rows {
		if r := &rows[i]; r.Deadline != nil {
			r.Met = deadlineMet(*r.Deadline, r.running, r.lastEnd, wallAt(resp.Time))
		}
	}
	return rows
}

// Sum sums items per key(item), in key order: how any view of a bill
// groups it (a Job's pools, say) without adding it up again.
func Sum(items []eciapi.BillItem, key func(eciapi.BillItem) string) []Row {
	return sum(items, key, nil)
}

// sum is Sum that also shows each item to also (if not nil) with its row.
func sum(items []eciapi.BillItem, key func(eciapi.BillItem) string, also func(*Row, eciapi.BillItem)) []Row {
	index := map[string]int{}
	var rows []Row
	for _, it := range items {
		k := key(it)
		i, ok := index[k]
		if !ok {
			i = len(rows)
			index[k] = i
			rows = append(rows, Row{Key: k})
		}
		r := &rows[i]
		r.Instances++
		r.Seconds += it.Seconds
		r.Amount += it.Amount
		r.OnDemandAmount += it.OnDemandAmount
		if also != nil {
			also(r, it)
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
