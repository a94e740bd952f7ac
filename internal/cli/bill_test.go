package cli

import (
	"testing"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func TestBillBy(t *testing.T) {
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
	for by, want := range map[string][]billRow{
		"job": {{Key: "-", Instances: 2, Seconds: 65, Amount: 0.012, OnDemandAmount: 0.024},
			{Key: "a/pi", Instances: 2, Seconds: 5400, Amount: 0.08, OnDemandAmount: 0.9},
			{Key: "b/pi", Instances: 1, Seconds: 10, Amount: 0.001, OnDemandAmount: 0.002}},
		"namespace": {{Key: "-", Instances: 1, Seconds: 5, Amount: 0.002, OnDemandAmount: 0.004},
			{Key: "a", Instances: 3, Seconds: 5460, Amount: 0.09, OnDemandAmount: 0.92},
			{Key: "b", Instances: 1, Seconds: 10, Amount: 0.001, OnDemandAmount: 0.002}},
		"pod": {{Key: "-"}, {Key: "a/pi-1"}, {Key: "a/pi-2"}, {Key: "a/web"}, {Key: "b/pi-1"}},
	} {
		got := billBy(resp, by)
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
