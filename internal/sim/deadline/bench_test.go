package deadline

import (
	"context"
	"testing"

	"github.com/spoteci/spoteci/internal/sim"
	"github.com/spoteci/spoteci/internal/sim/simtest"
)

// BenchmarkTable3Sweep is the sweep of Table 3 without optimal: 8 traces x 300
// starts x on-demand, greedy and uniform-progress, aws rules, one worker
// (target: under 0.2 s on one core; run with -cpu 1).
func BenchmarkTable3Sweep(b *testing.B) {
	s := table3Sweep(b, sim.RulesAWS, []string{PolicyOnDemand, PolicyGreedy, PolicyUniformProgress})
	s.Workers = 1
	cpu := simtest.StartCPUTimer(b)
	for b.Loop() {
		if _, err := s.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Stop()
}

// BenchmarkTable3SweepECI is the same sweep under eci rules.
func BenchmarkTable3SweepECI(b *testing.B) {
	s := table3Sweep(b, sim.RulesECI, []string{PolicyOnDemand, PolicyGreedy, PolicyUniformProgress})
	s.Workers = 1
	cpu := simtest.StartCPUTimer(b)
	for b.Loop() {
		if _, err := s.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Stop()
}

// BenchmarkOptimalRun is one run of the optimal policy of Table 3: the dynamic
// program over 360 ticks and its schedule played through the market (target:
// under 100 ms). The spot lifetimes of the trace, probed once per trace and
// kept, are computed before the timer starts.
func BenchmarkOptimalRun(b *testing.B) {
	s := table3Sweep(b, sim.RulesAWS, nil)
	starts, err := s.StartTicks(0)
	if err != nil {
		b.Fatal(err)
	}
	m := s.Markets[0]
	m.lifetimes(s.Job.Deadline)
	i := 0
	cpu := simtest.StartCPUTimer(b)
	defer cpu.Stop()
	for b.Loop() {
		start := starts[i%len(starts)]
		i++
		p, err := Optimal(m, s.Job, start)
		if err != nil {
			b.Fatal(err)
		}
		m.Run(s.Job, p, start, RunOptions{})
	}
}

// BenchmarkSpotLifetimes probes, through the core, how long a spot instance
// created at each of the 3,895 ticks of a trace lives: once per trace and
// rules, before optimal's first run.
func BenchmarkSpotLifetimes(b *testing.B) {
	s := table3Sweep(b, sim.RulesAWS, nil)
	for b.Loop() {
		m, err := NewMarket(MarketConfig{Name: "x", Trace: s.Markets[0].Trace, Rules: sim.RulesAWS, OnDemand: 3.06, SpotPrice: 0.9731})
		if err != nil {
			b.Fatal(err)
		}
		m.lifetimes(s.Job.Deadline)
	}
}
