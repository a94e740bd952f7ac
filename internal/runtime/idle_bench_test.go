package runtime

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/procstat"
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
		c0, s0, t0 := procstat.Sum(containerd), procstat.Sum(shim), time.Now()
		time.Sleep(30 * time.Second)
		c1, s1 := procstat.Sum(containerd), procstat.Sum(shim)
		elapsed := time.Since(t0).Seconds()
		b.ReportMetric(100*(c1-c0).Seconds()/elapsed, "containerd-%core")
		b.ReportMetric(100*(s1-s0).Seconds()/elapsed, "shims-%core")
	}
}
