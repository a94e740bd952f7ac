package runtime

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/procstat"
)

// BenchmarkStartToRunning starts instances of a cached image (busybox,
// IfNotPresent), one at a time, and reports the time from Start to the
// container Running: sandbox (network namespace, CNI, cgroup), snapshot,
// containerd container, runc task. Target: p50 at most 150 ms.
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

// BenchmarkStop stops b.N running instances at once, each with a grace
// period its container ignores (a shell as PID 1 has no SIGTERM handler), as
// a reclaim storm's evictions do, and reports the machine's CPU per stop
// from the stop to the exit recorded. Their sandboxes are freed afterwards,
// as while replacements are waiting to launch, so that is not counted.
func BenchmarkStop(b *testing.B) {
	r := newRuntime(b)
	ctx := context.Background()
	start(b, r, Instance{ID: "warm", Hostname: "warm", Containers: []Container{{Name: "c", Image: "busybox", Command: []string{"true"}}}})
	waitState(b, r, "warm", "c", StateTerminated)
	for i := range b.N {
		start(b, r, Instance{ID: fmt.Sprint("stop", i), Containers: []Container{busybox("c", "sleep 3600")}})
	}
	for i := range b.N {
		waitState(b, r, fmt.Sprint("stop", i), "c", StateRunning)
	}
	r.launches.add(1) // a launch waiting: the sandboxes stay
	defer r.launches.add(-1)
	busy0, _, _ := procstat.Machine()
	began := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if err := r.Stop(ctx, fmt.Sprint("stop", i), 200*time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		waitState(b, r, fmt.Sprint("stop", i), "c", StateTerminated)
	}
	b.StopTimer()
	busy, _, _ := procstat.Machine()
	b.ReportMetric(float64((busy-busy0).Microseconds())/1000/float64(b.N), "cpu-ms/stop")
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "stops/s")
}
