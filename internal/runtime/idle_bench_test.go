package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleInstances runs 400 idle instances and reports the CPU that
// containerd and the shims spend on them meanwhile, in percent of a core:
// what running instances cost while a storm starts others. Run with
// -benchtime 1x.
func BenchmarkIdleInstances(b *testing.B) {
	const n = 400
	r := newRuntime(b)
	for i := range n {
		start(b, r, Instance{ID: fmt.Sprint("idle", i), Containers: []Container{busybox("main", "sleep 3600")}})
	}
	for i := range n {
		waitState(b, r, fmt.Sprint("idle", i), "main", StateRunning)
	}
	time.Sleep(5 * time.Second) // the last starts' work done
	containerd := func(comm string) bool { return comm == "containerd" }
	shim := func(comm string) bool { return strings.HasPrefix(comm, "containerd-shim") }
	for b.Loop() {
		c0, s0, t0 := cpuTicks(containerd), cpuTicks(shim), time.Now()
		time.Sleep(30 * time.Second)
		c1, s1 := cpuTicks(containerd), cpuTicks(shim)
		secs := time.Since(t0).Seconds()
		// Clock ticks are hundredths of a second: ticks a second are percent.
		b.ReportMetric(float64(c1-c0)/secs, "containerd-%core")
		b.ReportMetric(float64(s1-s0)/secs, "shims-%core")
	}
}

// cpuTicks sums the user and system time, in clock ticks, of the processes
// whose command name matches.
func cpuTicks(match func(comm string) bool) int64 {
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.Index(s, "("), strings.LastIndex(s, ")")
		if open < 0 || end < open || !match(s[open+1:end]) {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return ticks
}
