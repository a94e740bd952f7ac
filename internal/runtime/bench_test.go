package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/spoteci/spoteci/internal/procstat"
)

// BenchmarkStartToRunning starts instances of a cached image (busybox,
// IfNotPresent), one at a time, and reports the time from Start to the
// container Running: sandbox (network namespace, CNI, cgroup), snapshot,
// containerd container, runc task; and the mean of each phase of a launch
// (ms-<phase>). Target: p50 at most 150 ms.
func BenchmarkStartToRunning(b *testing.B) {
	r := newRuntime(b)
	warmUp(b, r)
	b.ResetTimer()
	startOneByOne(b, r, "bench", b.N)
}

// BenchmarkStartBurst starts b.N instances of a cached image at once and
// reports how many reach Running per second.
func BenchmarkStartBurst(b *testing.B) {
	r := newRuntime(b)
	warmUp(b, r)
	b.ResetTimer()
	startBurst(b, r, "burst", b.N)
}

// BenchmarkStartBeside500 is BenchmarkStartToRunning and
// BenchmarkStartBurst beside 500 running instances, about what half of a
// 1,000-pod Job holds: whatever an instance costs every later start (the
// host's mounts that runc, the shim and containerd read, a lock or a file
// that grows with the instances) shows as the difference. It reports, too,
// the host's mounts that a running instance adds (host-mounts/instance)
// and the rate at which the 500 started (setup-running/s).
func BenchmarkStartBeside500(b *testing.B) {
	const n = 500
	r := newRuntime(b)
	warmUp(b, r)
	mounts0 := mountCount(b)
	began := time.Now()
	rate := startBurst(b, r, "idle", n)
	b.Logf("%d instances Running in %s (%.1f a second), %d host mounts more",
		n, time.Since(began).Round(time.Millisecond), rate, mountCount(b)-mounts0)
	perInstance := float64(mountCount(b)-mounts0) / n
	b.Run("one-by-one", func(b *testing.B) {
		b.ReportMetric(perInstance, "host-mounts/instance")
		r.launcher.phases.reset()
		startOneByOne(b, r, fmt.Sprint("one", b.N, "-"), b.N)
	})
	b.Run("burst", func(b *testing.B) {
		b.ReportMetric(rate, "setup-running/s")
		r.launcher.phases.reset()
		startBurst(b, r, fmt.Sprint("burst", b.N, "-"), b.N)
	})
}

// warmUp pulls busybox once and forgets that launch's phases.
func warmUp(b *testing.B, r *Containerd) {
	start(b, r, Instance{ID: "warm", Hostname: "warm", Containers: []Container{{Name: "c", Image: "busybox", Command: []string{"true"}}}})
	waitState(b, r, "warm", "c", StateTerminated)
	r.launcher.phases.reset()
}

// startOneByOne starts n instances one after the other, each once the last
// one runs, and reports the latency from Start to Running and the mean of
// each phase of a launch; it removes them at the end.
func startOneByOne(b *testing.B, r *Containerd, prefix string, n int) {
	ctx := context.Background()
	var lat []float64
	cpu := startStackCPU()
	for i := range n {
		id := fmt.Sprint(prefix, i)
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
	reportPhases(b, r)
	cpu.report(b, prefix, n)
	for i := range n {
		r.Remove(ctx, fmt.Sprint(prefix, i))
	}
}

// startBurst starts n instances at once, waits for all to run, reports how
// many reached Running a second and returns it; they are removed when the
// benchmark ends.
func startBurst(b *testing.B, r *Containerd, prefix string, n int) float64 {
	ctx := context.Background()
	cpu := startStackCPU()
	began := time.Now()
	for i := range n {
		id := fmt.Sprint(prefix, i)
		if err := r.Start(ctx, Instance{ID: id, Hostname: id, Containers: []Container{
			{Name: "c", Image: "busybox", PullPolicy: PullIfNotPresent, Command: []string{"sleep", "3600"}},
		}}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		id := fmt.Sprint(prefix, i)
		for {
			st, _ := r.Status(id)
			if st.Containers[0].State == StateRunning {
				break
			}
			if st.Containers[0].State == StateTerminated {
				b.Fatalf("%s ended: %+v", id, st.Containers[0])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	rate := float64(n) / time.Since(began).Seconds()
	b.ReportMetric(rate, "running/s")
	reportPhases(b, r)
	cpu.report(b, prefix, n)
	b.Cleanup(func() {
		for i := range n {
			r.Remove(ctx, fmt.Sprint(prefix, i))
		}
	})
	return rate
}

// reportPhases reports the mean time of each phase of the launches so far.
func reportPhases(b *testing.B, r *Containerd) {
	for name, d := range r.launcher.phases.means() {
		b.ReportMetric(float64(d.Microseconds())/1000, "ms-"+name)
	}
}

// stackCPU measures the CPU that starts cost the whole stack: this
// process and what it runs (containerd, the shims, runc, the CNI plugins),
// counted by the cpuacct cgroup it runs in, and each instance's cgroup,
// where runc init does its work. The machine is shared, so wall times
// vary with the others' load; this does not. Only when the benchmark runs
// in a cgroup of its own, e.g.
//
//	mkdir /sys/fs/cgroup/cpuacct/bench && echo $$ > /sys/fs/cgroup/cpuacct/bench/cgroup.procs
//
// before it starts (and its containerd with it): in the root cgroup it
// would count the machine's.
type stackCPU struct {
	own   string // the cpuacct cgroup, "" for the root
	start time.Duration
}

func startStackCPU() stackCPU {
	own := ""
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for line := range strings.Lines(string(b)) {
			f := strings.SplitN(strings.TrimSpace(line), ":", 3)
			if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "cpuacct") && f[2] != "/" {
				own = f[2]
			}
		}
	}
	return stackCPU{own: own, start: cgroupCPU(own)}
}

// report reports the CPU per start since startStackCPU, counting the
// cgroups of the n instances named prefix<i>, which must still run.
func (s stackCPU) report(b *testing.B, prefix string, n int) {
	if s.own == "" {
		return
	}
	used := cgroupCPU(s.own) - s.start
	for i := range n {
		used += cgroupCPU(instanceCgroupPath(fmt.Sprint(prefix, i)))
	}
	b.ReportMetric(float64(used.Microseconds())/1000/float64(n), "stack-cpu-ms/start")
}

// cgroupCPU is the CPU time cpuacct cgroup p has used, 0 if unknown.
func cgroupCPU(p string) time.Duration {
	if p == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", p, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	ns, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return time.Duration(ns)
}

// mountCount is the number of mounts in the host's (this process's) mount
// namespace.
func mountCount(b *testing.B) int {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		b.Fatal(err)
	}
	return len(mounts)
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
	r.launcher.launches.add(1) // a launch waiting: the sandboxes stay
	defer r.launcher.launches.add(-1)
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
