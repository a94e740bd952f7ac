package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
)

func TestParseWorkload(t *testing.T) {
	w, err := ParseWorkload([]byte(`
zones: [cn-hangzhou-i]
jobs:
- name: train
  count: 3
  interval: 1h
  completions: 4
  work: 90m
  checkpointInterval: 30m
  checkpointCost: 1m
  checkpointAtNotice: true
  annotations:
    k8s.aliyun.com/eci-use-specs: ecs.c5.large
    k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo
policies:
- name: payg
  annotations: {k8s.aliyun.com/eci-spot-strategy: ""}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.normalize(); err != nil {
		t.Fatal(err)
	}
	j := w.Jobs[0]
	if j.Count != 3 || j.Interval != time.Hour || j.Completions != 4 || j.Parallelism != 4 || j.Work != 90*time.Minute ||
		j.CheckpointInterval != 30*time.Minute || !j.CheckpointAtNotice || j.CPU != 2 || j.MemoryGiB != 4 {
		t.Errorf("job %+v", j)
	}
	if !w.Start.Equal(Epoch) || w.Horizon != DefaultHorizon {
		t.Errorf("start %v horizon %v, want the defaults", w.Start, w.Horizon)
	}
	cat := catalog.Default()
	own, err := w.compile(cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	if own[0].bid.Strategy != "SpotAsPriceGo" || own[0].bid.Protection != time.Hour || len(own[0].candidates[0]) != 1 {
		t.Errorf("compiled %+v", own[0])
	}
	payg, err := w.compile(cat, &w.Policies[0])
	if err != nil {
		t.Fatal(err)
	}
	if payg[0].bid.Strategy != "NoSpot" {
		t.Errorf("the payg policy bids %v", payg[0].bid)
	}
}

func TestWorkloadErrors(t *testing.T) {
	cat := catalog.Default()
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":     {"jobs: [{name: a, work: 1h, paralelism: 2}]", "paralelism"},
		"empty":             {"", "empty"},
		"no jobs":           {"region: cn-hangzhou", "no jobs"},
		"no work":           {"jobs: [{name: a}]", "work"},
		"same name":         {"jobs: [{name: a, work: 1h}, {name: a, work: 1h}]", "twice"},
		"negative":          {"jobs: [{name: a, work: 1h, interval: -1h}]", "negative"},
		"bad limit":         {"jobs: [{name: a, work: 1h, annotations: {k8s.aliyun.com/eci-spot-strategy: SpotWithPriceLimit, k8s.aliyun.com/eci-spot-price-limit: '0.0625'}}]", "k8s.aliyun.com/eci-spot-price-limit"},
		"unknown type":      {"jobs: [{name: a, work: 1h, annotations: {k8s.aliyun.com/eci-use-specs: ecs.nope}}]", "ecs.nope"},
		"unknown region":    {"region: mars-1\njobs: [{name: a, work: 1h}]", "mars-1"},
		"not sold there":    {"zones: [cn-hangzhou-e]\njobs: [{name: a, work: 1h, annotations: {k8s.aliyun.com/eci-use-specs: ecs.g6.xlarge}}]", "no instance type"},
		"policy name twice": {"jobs: [{name: a, work: 1h}]\npolicies: [{name: p, annotations: {}}, {name: p, annotations: {}}]", "twice"},
	} {
		t.Run(name, func(t *testing.T) {
			w, err := ParseWorkload([]byte(tc.yaml))
			if err == nil {
				if err = w.normalize(); err == nil {
					_, err = w.compile(cat, nil)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// The example of the README parses and runs.
func TestExampleWorkload(t *testing.T) {
	w, err := ReadWorkload("testdata/workload.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := hangzhouC5()
	res, err := Simulate(context.Background(), w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || res[0].Summary.Runs != 50 || res[0].Summary.JobsFinished != 50 {
		t.Errorf("results %+v", res)
	}
}

// The simulator sizes a pod as the service does (spot.Order): 4 vCPU and no
// memory is 4-4Gi in both, not an error in one of them.
func TestSizedAsTheService(t *testing.T) {
	w, err := ParseWorkload([]byte("zones: [cn-hangzhou-i]\njobs: [{name: big, work: 1h, cpu: 4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.normalize(); err != nil {
		t.Fatal(err)
	}
	kinds, err := w.compile(catalog.Default(), nil)
	if err != nil {
		t.Fatalf("cpu 4 without memory: %v", err)
	}
	for _, o := range kinds[0].candidates[0] {
		if o.Type.VCPU != 4 || o.Type.MemoryGiB < 4 {
			t.Errorf("candidate %s: %d vCPU %v GiB, want 4 vCPU and at least 4 GiB", o.Type.Name, o.Type.VCPU, o.Type.MemoryGiB)
		}
	}
}
