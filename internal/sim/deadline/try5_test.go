package deadline

import (
	"reflect"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/sim"
)

func TestTry5(t *testing.T) {
	traces, _ := sim.LoadTraces("/work/shared/data/traces/availability/1-node/aws-10-26-2022")
	job := Job{48 * time.Hour, 60 * time.Hour, 12 * time.Minute}
	for _, rules := range []string{"aws", "eci"} {
		for _, tr := range traces[:3] {
			m, _ := NewMarket(MarketConfig{Name: tr.Name, Trace: tr.Trace, Rules: rules, OnDemand: 3.06, SpotPrice: 0.9731, Protection: time.Hour})
			for s := 0; s < 3500; s += 97 {
				for _, pol := range Policies() {
					p1, err := NewPolicy(pol, m, job, s)
					if err != nil {
						t.Fatal(err)
					}
					p2, _ := NewPolicy(pol, m, job, s)
					a := m.Run(job, p1, s, RunOptions{})
					b := m.Run(job, p2, s, RunOptions{EveryTick: true})
					if !reflect.DeepEqual(a, b) {
						t.Errorf("%s %s %s %d: %+v != %+v", rules, tr.Name, pol, s, a, b)
					}
					if rules == "aws" && pol == "optimal" {
						_, cost, _ := m.Plan(job, s)
						if d := cost - a.Cost; d > 1e-6 || d < -1e-6 {
							t.Errorf("plan cost %v run cost %v", cost, a.Cost)
						}
					}
				}
			}
		}
	}
}
