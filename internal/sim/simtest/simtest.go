// Package simtest has helpers for the simulator's tests and benchmarks.
package simtest

import (
	"testing"
	"time"
)

// CPUTimer reports the CPU time of the process per benchmark iteration as
// cpu-ns/op beside the wall time: on a shared, noisy machine the CPU time
// moves much less when other processes take the cores.
type CPUTimer struct {
	b     *testing.B
	start time.Duration
}

// StartCPUTimer starts measuring; call Stop after the benchmark loop.
func StartCPUTimer(b *testing.B) *CPUTimer { return &CPUTimer{b: b, start: cpuTime()} }

// Stop reports the CPU time per iteration, if the platform tells it.
func (t *CPUTimer) Stop() {
	end := cpuTime()
	if end > 0 && t.b.N > 0 {
		t.b.ReportMetric(float64(end-t.start)/float64(t.b.N), "cpu-ns/op")
	}
}
