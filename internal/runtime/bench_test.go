package runtime

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartToRunning starts instances of a cached image (busybox,
// IfNotPresent), one at a time, and reports the time from Start to the
// container Running: sandbox (network namespace, CNI, cgroup), snapshot,
// containerd container, runc task, logger. Target: p50 at most 150 ms.
func BenchmarkStartToRunning(b *testing.B) {
	r := newRuntime(b)
	ctx := context.Background()
	warm := Instance{ID: "warm", Hostname: "warm", Containers: []Container{{Name: "c", Image: "busybox", Command: []string{"true"}}}}
	start(b, r, warm) // pulls the image once
	waitState(b, r, "warm", "c", StateTerminated)
	var lat []float64
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("bench", i)
		began := time.Now()
		if err := r.Start(ctx, Instance{ID: id, Hostname: id, CPU: 2, Memory: 4 << 30, Containers: []Container{
			{Name: "c", Image: "busybox", PullPolicy: PullIfNotPresent, Command: []string{"sleep", "3600"}},
		}}); err != nil {
			b.Fatal(err)
		}
		for {
			st, _ := r.Status(id)
			if len(st.Containers) == 1 && st.Containers[0].State == StateRunning {
				break
			}
			if len(st.Containers) == 1 && st.Containers[0].State == StateTerminated {
				b.Fatalf("%s ended: %+v", id, st.Containers[0])
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, float64(time.Since(began).Microseconds())/1000)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "ms-start-to-running-p50")
	b.ReportMetric(lat[len(lat)*99/100], "ms-start-to-running-p99")
	for i := range b.N {
		r.Remove(ctx, fmt.Sprint("bench", i))
	}
}

// BenchmarkStartBurst starts b.N instances of a cached image at once and
// reports how many reach Running per second.
func BenchmarkStartBurst(b *testing.B) {
	r := newRuntime(b)
	ctx := context.Background()
	start(b, r, Instance{ID: "warm", Hostname: "warm", Containers: []Container{{Name: "c", Image: "busybox", Command: []string{"true"}}}})
	waitState(b, r, "warm", "c", StateTerminated)
	b.ResetTimer()
	began := time.Now()
	for i := range b.N {
		id := fmt.Sprint("burst", i)
		if err := r.Start(ctx, Instance{ID: id, Hostname: id, Containers: []Container{
			{Name: "c", Image: "busybox", PullPolicy: PullIfNotPresent, Command: []string{"sleep", "3600"}},
		}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		id := fmt.Sprint("burst", i)
		for {
			st, _ := r.Status(id)
			if st.Containers[0].State == StateRunning {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "running/s")
	b.StopTimer()
	for i := range b.N {
		r.Remove(ctx, fmt.Sprint("burst", i))
	}
}
