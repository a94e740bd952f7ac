package billing

import (
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func TestBy(t *testing.T) {
	tags := func(ns, pod, job string) []eciapi.Tag {
		out := []eciapi.Tag{{Key: eciapi.TagNamespace, Value: ns}, {Key: eciapi.TagPod, Value: pod}}
		if job != "" {
			out = append(out, eciapi.Tag{Key: eciapi.TagJob, Value: job})
		}
		return out
	}
	resp := eciapi.DescribeBillResponse{Items: []eciapi.BillItem{
		{Tags: tags("a", "pi-1", "pi"), Seconds: 3600, Amount: 0.05, OnDemandAmount: 0.6},
		{Tags: tags("a", "pi-2", "pi"), Seconds: 1800, Amount: 0.03, OnDemandAmount: 0.3},
		{Tags: tags("a", "web", ""), Seconds: 60, Amount: 0.01, OnDemandAmount: 0.02},
		{Tags: tags("b", "pi-1", "pi"), Seconds: 10, Amount: 0.001, OnDemandAmount: 0.002},
		{ContainerGroupName: "by-hand", Seconds: 5, Amount: 0.002, OnDemandAmount: 0.004},
	}}
	for by, want := range map[string][]Row{
		"job": {{Key: "-", Instances: 2, Seconds: 65, Amount: 0.012, OnDemandAmount: 0.024},
			{Key: "a/pi", Instances: 2, Seconds: 5400, Amount: 0.08, OnDemandAmount: 0.9},
			{Key: "b/pi", Instances: 1, Seconds: 10, Amount: 0.001, OnDemandAmount: 0.002}},
		"namespace": {{Key: "-", Instances: 1, Seconds: 5, Amount: 0.002, OnDemandAmount: 0.004},
			{Key: "a", Instances: 3, Seconds: 5460, Amount: 0.09, OnDemandAmount: 0.92},
			{Key: "b", Instances: 1, Seconds: 10, Amount: 0.001, OnDemandAmount: 0.002}},
		"pod": {{Key: "-"}, {Key: "a/pi-1"}, {Key: "a/pi-2"}, {Key: "a/web"}, {Key: "b/pi-1"}},
	} {
		got := By(resp, by)
		if len(got) != len(want) {
			t.Fatalf("by %s: %+v, want %d rows", by, got, len(want))
		}
		for i := range want {
			if got[i].Key != want[i].Key || (want[i].Instances != 0 && (got[i].Instances != want[i].Instances ||
				!near(got[i].Amount, want[i].Amount) || !near(got[i].OnDemandAmount, want[i].OnDemandAmount) || got[i].Seconds != want[i].Seconds)) {
				t.Errorf("by %s row %d: %+v, want %+v", by, i, got[i], want[i])
			}
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

// Per Job, a deadline Job's bill says whether the Job met its deadline (a
// wall time): the bill's market times are turned into wall times first.
func TestByDeadline(t *testing.T) {
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	market := wall.Add(100 * time.Hour) // the market runs ahead, 60 times faster
	// ended is an end time that the wall clock saw ago before now.
	ended := func(ago time.Duration) *time.Time {
		at := market.Add(-60 * ago)
		return &at
	}
	item := func(job, deadline string, end *time.Time) eciapi.BillItem {
		tags := []eciapi.Tag{{Key: eciapi.TagNamespace, Value: "a"}, {Key: eciapi.TagJob, Value: job}}
		if deadline != "" {
			tags = append(tags, eciapi.Tag{Key: eciapi.TagDeadline, Value: deadline})
		}
		return eciapi.BillItem{Tags: tags, Seconds: 60, Amount: 0.01, OnDemandAmount: 0.1, EndTime: end}
	}
	at := func(d time.Duration) string { return wall.Add(d).Format(time.RFC3339) }
	resp := eciapi.DescribeBillResponse{Time: market, WallTime: wall, TimeScale: 60, Items: []eciapi.BillItem{
		item("done", at(-30*time.Minute), ended(2*time.Hour)),
		item("done", at(-30*time.Minute), ended(time.Hour)),
		item("on-the-dot", at(-time.Hour), ended(time.Hour)),
		item("late", at(-90*time.Minute), ended(2*time.Hour)),
		item("late", at(-90*time.Minute), ended(time.Hour)),
		item("overdue", at(-time.Hour), ended(2*time.Hour)),
		item("overdue", at(-time.Hour), nil),
		item("ahead", at(time.Hour), ended(time.Hour)),
		item("ahead", at(time.Hour), nil),
		item("plain", "", nil),
		item("garbled", "tomorrow", ended(time.Hour)),
		{Seconds: 5, Amount: 0.002, OnDemandAmount: 0.004}, // not the node's
	}}
	want := map[string]struct {
		deadline string
		met      string
	}{
		"a/done":       {at(-30 * time.Minute), MetYes},
		"a/on-the-dot": {at(-time.Hour), MetYes},
		"a/late":       {at(-90 * time.Minute), MetNo},
		"a/overdue":    {at(-time.Hour), MetNo},
		"a/ahead":      {at(time.Hour), MetPending},
		"a/plain":      {},
		"a/garbled":    {},
		"-":            {},
	}
	rows := By(resp, "job")
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		w := want[r.Key]
		deadline := ""
		if r.Deadline != nil {
			deadline = r.Deadline.Format(time.RFC3339)
		}
		if deadline != w.deadline || r.Met != w.met {
			t.Errorf("%s: deadline %q met %q, want %q %q", r.Key, deadline, r.Met, w.deadline, w.met)
		}
	}
	// Per namespace, no deadline is judged.
	for _, r := range By(resp, "namespace") {
		if r.Deadline != nil || r.Met != "" {
			t.Errorf("by namespace %s: deadline %v met %q", r.Key, r.Deadline, r.Met)
		}
	}
}

// Sum groups by any key, here a pool, in key order.
func TestSum(t *testing.T) {
	items := []eciapi.BillItem{
		{ZoneId: "z-b", InstanceType: "t1", Seconds: 60, Amount: 0.01, OnDemandAmount: 0.1},
		{ZoneId: "z-a", InstanceType: "t1", Seconds: 30, Amount: 0.02, OnDemandAmount: 0.2},
		{ZoneId: "z-b", InstanceType: "t1", Seconds: 90, Amount: 0.03, OnDemandAmount: 0.3},
	}
	got := Sum(items, func(it eciapi.BillItem) string { return it.ZoneId + " " + it.InstanceType })
	if len(got) != 2 || got[0].Key != "z-a t1" || got[0].Instances != 1 ||
		got[1].Key != "z-b t1" || got[1].Instances != 2 || got[1].Seconds != 150 || !near(got[1].Amount, 0.04) || !near(got[1].OnDemandAmount, 0.4) {
		t.Errorf("Sum: %+v", got)
	}
}
