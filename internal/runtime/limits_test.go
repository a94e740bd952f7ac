package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPodPidsLimit(t *testing.T) {
	for _, tc := range []struct {
		fixed  int64
		cpu    float64
		pidMax int64
		want   int64
	}{
		{0, 2, 32768, 2048},      // 1,024 a vCPU
		{0, 1.5, 32768, 1536},    // scaled, not rounded to whole vCPUs
		{0, 3.0001, 32768, 3073}, // rounded up
		{0, 0.5, 32768, 1024},    // at least 1,024
		{0, 0, 32768, 1024},      // an instance of no size
		{0, 16, 32768, 8192},     // a quarter of pid_max, exactly
		{0, 64, 32768, 8192},     // never over it
		{0, 64, 4194304, 65536},  // a host with room
		{0, 2, 4096, 1024},       // a small pid_max
		{0, 2, 0, 2048},          // pid_max unknown: no ceiling
		{300, 8, 32768, 300},     // --pod-max-pids
		{7, 0, 32768, 7},         // however small
		{100000, 8, 32768, 8192}, // bounded too
		{-1, 2, 32768, 2048},     // negative is the default
	} {
		if got := podPidsLimit(tc.fixed, tc.cpu, tc.pidMax); got != tc.want {
			t.Errorf("podPidsLimit(%d, %v, %d) = %d, want %d", tc.fixed, tc.cpu, tc.pidMax, got, tc.want)
		}
	}
}

func TestQuantity(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1Gi", 500 << 20: "500Mi", 1e9: "1G", 1500e6: "1500M", 30 << 30: "30Gi", 1536 << 20: "1536Mi"} {
		if got := quantity(n); got != want {
			t.Errorf("quantity(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestEvictionMessage: the kubelet's words, in its order: emptyDir volumes,
// the pod's total, each container; then the instance's capacity.
func TestEvictionMessage(t *testing.T) {
	spec := Instance{EphemeralStorage: 30 << 30,
		Containers: []Container{{Name: "a", EphemeralStorage: 1 << 30}, {Name: "b", EphemeralStorage: 1 << 30}, {Name: "c"}},
		Volumes: []Volume{{Name: "data", SizeLimit: 1 << 30}, {Name: "mem", Memory: true, SizeLimit: 1 << 20}, {Name: "other"},
			{Name: "conf", Files: []File{{Path: "x"}}, SizeLimit: 1}}}
	l := limitsOf(spec)
	if l.pod != 2<<30 || len(l.volumes) != 1 || l.capacity != 30<<30 || l.ceiling() != 30<<30+1 {
		t.Fatalf("limits %+v, ceiling %d", l, l.ceiling())
	}
	usage := func(a, b, c, data, other int64) storageUsage {
		return storageUsage{containers: map[string]int64{"a": a, "b": b, "c": c}, volumes: map[string]int64{"data": data, "other": other}}
	}
	for _, tc := range []struct {
		u    storageUsage
		want string
	}{
		{usage(1<<30, 1<<30, 0, 0, 0), ""}, // at a limit is not over it
		{usage(1<<29, 1<<29, 0, 1<<30+1, 0), `Usage of EmptyDir volume "data" exceeds the limit "1Gi". `},
		{usage(1<<30+1, 0, 0, 2<<30, 0), `Usage of EmptyDir volume "data" exceeds the limit "1Gi". `},
		{usage(1<<30, 1<<30, 1, 0, 0), "Pod ephemeral local storage usage exceeds the total limit of containers 2Gi. "},
		{usage(0, 0, 0, 1<<30, 1<<30+1), "Pod ephemeral local storage usage exceeds the total limit of containers 2Gi. "},
		{usage(0, 1<<30+1, 0, 0, 0), `Container b exceeded its local ephemeral storage limit "1Gi". `},
		{usage(0, 0, 5<<30, 0, 0), "Pod ephemeral local storage usage exceeds the total limit of containers 2Gi. "},
	} {
		if got := l.eviction(spec, tc.u); got != tc.want {
			t.Errorf("eviction(%v) = %q, want %q", tc.u, got, tc.want)
		}
	}
	// Without container limits, the instance's temporary storage bounds the whole.
	plain := Instance{EphemeralStorage: 30 << 30, Containers: []Container{{Name: "main"}}, Volumes: []Volume{{Name: "data"}}}
	pl := limitsOf(plain)
	over := storageUsage{containers: map[string]int64{"main": 20 << 30}, volumes: map[string]int64{"data": 10<<30 + 1}}
	if got, want := pl.eviction(plain, over), "The node was low on resource: ephemeral-storage. The instance's usage exceeds its temporary storage of 30Gi. "; got != want {
		t.Errorf("over the capacity: %q, want %q", got, want)
	}
	if !limitsOf(Instance{Containers: []Container{{Name: "x"}}}).none() {
		t.Error("an instance without limits has some")
	}
}

// TestDiskUsage counts allocated blocks, a hard-linked file once, and stops
// once past its limit.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	if got, err := diskUsage(filepath.Join(dir, "none"), 1<<30); got != 0 || err != nil {
		t.Fatalf("missing folder: %d, %v", got, err)
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = 1
	}
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	for _, f := range []string{"a", "sub/b"} {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "sub", "a-again")); err != nil {
		t.Fatal(err)
	}
	// A sparse file takes no blocks for its hole.
	if f, err := os.Create(filepath.Join(dir, "sparse")); err == nil {
		f.Truncate(1 << 30)
		f.Close()
	}
	got, err := diskUsage(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got < 2<<20 || got > 2<<20+64<<10 {
		t.Errorf("usage %d, want 2 MiB and the folders' blocks", got)
	}
	capped, err := diskUsage(dir, 512<<10)
	if err != nil || capped <= 512<<10 || capped > got {
		t.Errorf("capped at 512 KiB: %d, %v; want past the cap, at most %d", capped, err, got)
	}
}

// limitsRuntime is a runtime that measures storage every 100 ms.
func limitsRuntime(t *testing.T, edit func(*Config)) *Containerd {
	return openRuntimeWith(t, t.TempDir(), func(c *Config) {
		c.StorageCheckEvery = 100 * time.Millisecond
		edit(c)
	})
}

// pidsFile reads a file of the pids controller of a cgroup.
func pidsFile(t *testing.T, cgroup, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pidsRoot, cgroup, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// bomb forks for good: every process it makes forks again and again until
// a fork fails (which ends a busybox shell), so that it holds every process
// it can get for as long as it runs. The first process is a sleep, which
// needs no fork to live on.
const bomb = `exec 2>/dev/null; bomb() { while :; do bomb & done; }; bomb & exec sleep 3600`

// TestForkBombBounded: a fork bomb fills its instance's pids limit and no
// more, while another instance starts and runs a command.
func TestForkBombBounded(t *testing.T) {
	const limit = 100
	r := limitsRuntime(t, func(c *Config) { c.PodPidsLimit = limit })
	ctx := context.Background()
	start(t, r, Instance{ID: "limits-bomb", CPU: 0.5, Memory: 256 << 20, Containers: []Container{
		busybox("bomb", bomb),
	}})
	waitState(t, r, "limits-bomb", "bomb", StateRunning)
	if got := pidsFile(t, instanceCgroupPath("limits-bomb"), "pids.max"); got != strconv.Itoa(limit) {
		t.Fatalf("pids.max = %s, want %d", got, limit)
	}
	peak := 0
	waitFor(t, 60*time.Second, "the bomb to fill its pids limit", func() bool {
		n, _ := strconv.Atoi(pidsFile(t, instanceCgroupPath("limits-bomb"), "pids.current"))
		peak = max(peak, n)
		if n > limit {
			t.Fatalf("pids.current = %d, over the limit %d", n, limit)
		}
		// (v1 counts the refused forks where they were tried.)
		return n >= limit-5 && strings.TrimPrefix(pidsFile(t, containerCgroup("limits-bomb", "bomb"), "pids.events"), "max ") != "0"
	})
	// Meanwhile the host forks: another instance starts and runs a command.
	start(t, r, Instance{ID: "limits-other", CPU: 0.5, Memory: 128 << 20, Containers: []Container{busybox("main", "sleep 3600")}})
	waitState(t, r, "limits-other", "main", StateRunning)
	var out buffer
	code, err := r.Exec(ctx, "limits-other", "main", []string{"sh", "-c", "echo $(echo forked)"}, ExecIO{Stdout: &out})
	if err != nil || code != 0 || out.String() != "forked\n" {
		t.Errorf("exec beside the bomb = %d, %v, %q; want 0 and forked", code, err, out.String())
	}
	if n, _ := strconv.Atoi(pidsFile(t, instanceCgroupPath("limits-bomb"), "pids.current")); n > limit || n < limit-5 {
		t.Errorf("pids.current = %d after the exec, want the bomb still at its limit %d", n, limit)
	}
	r.Stop(ctx, "limits-bomb", 0)
	cs := waitState(t, r, "limits-bomb", "bomb", StateTerminated)
	if cs.ExitCode != 137 {
		t.Errorf("the bomb ended %d %s, want 137", cs.ExitCode, cs.Reason)
	}
	t.Logf("peak %d processes under a limit of %d", peak, limit)
}

// TestPidsLimitKept: a runtime restarted with another sizing leaves an
// adopted instance its limit; an instance from a runtime that set none gets
// one when adopted.
func TestPidsLimitKept(t *testing.T) {
	dir := t.TempDir()
	r1, err := New(context.Background(), Config{Dir: dir, Address: env.Daemon.Address, Namespace: "spoteci-test",
		Registries: Registries{Mirrors: map[string][]string{"*": {"http://" + env.Registry.Addr()}}}, PodPidsLimit: 300})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r1, Instance{ID: "limits-kept", CPU: 2, Containers: []Container{busybox("main", "sleep 3600")}})
	start(t, r1, Instance{ID: "limits-legacy", CPU: 2, Containers: []Container{busybox("main", "sleep 3600")}})
	waitState(t, r1, "limits-kept", "main", StateRunning)
	waitState(t, r1, "limits-legacy", "main", StateRunning)
	r1.Close()
	// As a runtime before pids limits left it: no limit, none in spec.json.
	specPath := filepath.Join(dir, instancesDir, "limits-legacy", specFile)
	var spec map[string]any
	b, _ := os.ReadFile(specPath)
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	delete(spec, "PidsLimit")
	b, _ = json.Marshal(spec)
	os.WriteFile(specPath, b, 0o600)
	os.WriteFile(filepath.Join(pidsRoot, instanceCgroupPath("limits-legacy"), "pids.max"), []byte("max"), 0o644)

	r2 := openRuntime(t, dir) // default sizing: 2,048 for 2 vCPUs
	if got := pidsFile(t, instanceCgroupPath("limits-kept"), "pids.max"); got != "300" {
		t.Errorf("adopted instance's pids.max = %s, want the 300 it was started with", got)
	}
	if got := pidsFile(t, instanceCgroupPath("limits-legacy"), "pids.max"); got != "2048" {
		t.Errorf("adopted instance without a limit has pids.max %s, want 2048", got)
	}
	if st, _ := r2.Status("limits-kept"); st.Containers[0].State != StateRunning {
		t.Errorf("limits-kept is %s after the restart", st.Containers[0].State)
	}
	if got := pidsFile(t, instanceCgroupPath(""), "pids.max"); got != strconv.FormatInt(hostPidMax()-hostPidMax()/8, 10) {
		t.Errorf("the instances together may have %s processes, want pid_max less an eighth", got)
	}
}

// evicted waits for instance id's eviction and returns its status.
func evicted(t *testing.T, r *Containerd, id string) Status {
	t.Helper()
	var st Status
	waitFor(t, 60*time.Second, id+" evicted", func() bool {
		st, _ = r.Status(id)
		for _, c := range st.Containers {
			if c.State != StateTerminated {
				return false
			}
		}
		return st.Reason == ReasonEvicted
	})
	return st
}

func evictedEvent(st Status) (Event, bool) {
	for _, e := range st.Events {
		if e.Reason == ReasonEvicted {
			return e, true
		}
	}
	return Event{}, false
}

// TestEvictedForWritableLayer: a container that writes past its
// ephemeral-storage limit in its root file system is evicted with the
// kubelet's message, and stays so after a restart of the runtime. (Alone
// in its pod, the pod's total would be over first, as with a kubelet:
// a sidecar's limit leaves room in the total.)
func TestEvictedForWritableLayer(t *testing.T) {
	dir := t.TempDir()
	r := openRuntimeWith(t, dir, func(c *Config) { c.StorageCheckEvery = 100 * time.Millisecond })
	shared := []Mount{{Volume: "shared", Path: "/shared"}}
	start(t, r, Instance{ID: "limits-rootfs", EphemeralStorage: 1 << 30, Volumes: []Volume{{Name: "shared"}}, Containers: []Container{
		{Name: "main", Image: "busybox", EphemeralStorage: 8 << 20, Mounts: shared, // writes once the sidecar runs
			Command: []string{"sh", "-c", "while [ ! -e /shared/up ]; do sleep 0.1; done; dd if=/dev/zero of=/fill bs=1048576 count=16; sleep 3600"}},
		{Name: "sidecar", Image: "busybox", EphemeralStorage: 64 << 20, Mounts: shared, Command: []string{"sh", "-c", "touch /shared/up; sleep 3600"}},
	}})
	st := evicted(t, r, "limits-rootfs")
	want := `Container main exceeded its local ephemeral storage limit "8Mi". `
	if st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
	if e, ok := evictedEvent(st); !ok || e.Type != "Warning" || e.Message != want || e.Container != "" {
		t.Errorf("eviction event %+v (found %v), want Warning Evicted %q", e, ok, want)
	}
	for _, c := range st.Containers {
		if c.Reason != ReasonEvicted {
			t.Errorf("container %s ended %d %s %q, want Evicted", c.Name, c.ExitCode, c.Reason, c.Message)
		}
	}
	if ids, _ := r.Exits(); !strings.Contains(strings.Join(ids, ","), "limits-rootfs") {
		t.Errorf("Exits() = %v, want limits-rootfs", ids)
	}
	r.Close()
	again := openRuntime(t, dir)
	if st, _ := again.Status("limits-rootfs"); st.Reason != ReasonEvicted || st.Message != want {
		t.Errorf("after a restart: %q %q, want Evicted %q", st.Reason, st.Message, want)
	}
}

// TestEvictionSurvivesACrash: an eviction recorded, then a crash before its
// stop was written: the next runtime on the folder stops the instance.
func TestEvictionSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	r := openRuntime(t, dir)
	start(t, r, Instance{ID: "evict-crash", Containers: []Container{busybox("main", "sleep 3600")}})
	waitState(t, r, "evict-crash", "main", StateRunning)
	in, _ := r.table.get("evict-crash")
	if !in.setEvicted("test eviction") { // what evict does before its Stop
		t.Fatal("setEvicted refused")
	}
	r.Close()
	again := openRuntime(t, dir)
	st := waitState(t, again, "evict-crash", "main", StateTerminated)
	if st.Reason != ReasonEvicted {
		t.Errorf("the container ended %s %q, want Evicted", st.Reason, st.Message)
	}
}

// TestEvictedForEmptyDir: a disk emptyDir used past its sizeLimit evicts
// its instance with the kubelet's message.
func TestEvictedForEmptyDir(t *testing.T) {
	r := limitsRuntime(t, func(*Config) {})
	start(t, r, Instance{ID: "limits-emptydir", EphemeralStorage: 1 << 30, Volumes: []Volume{{Name: "data", SizeLimit: 8 << 20}},
		Containers: []Container{{Name: "main", Image: "busybox", Mounts: []Mount{{Volume: "data", Path: "/data"}},
			Command: []string{"sh", "-c", "dd if=/dev/zero of=/data/fill bs=1048576 count=16; echo written; sleep 3600"}}},
	})
	st := evicted(t, r, "limits-emptydir")
	if want := `Usage of EmptyDir volume "data" exceeds the limit "8Mi". `; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
}

// TestEvictedForEtcFiles: /etc/hosts, /etc/hostname and /etc/resolv.conf
// are files of the instance's folder that its containers may write; what
// they hold counts against the pod's limit.
func TestEvictedForEtcFiles(t *testing.T) {
	r := limitsRuntime(t, func(*Config) {})
	start(t, r, Instance{ID: "limits-etc", EphemeralStorage: 1 << 30, Containers: []Container{
		{Name: "main", Image: "busybox", EphemeralStorage: 8 << 20,
			Command: []string{"sh", "-c", "dd if=/dev/zero of=/etc/hosts bs=1048576 count=8; dd if=/dev/zero of=/etc/hostname bs=1048576 count=8; sleep 3600"}},
	}})
	st := evicted(t, r, "limits-etc")
	if want := `Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. `; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
}

// TestUnderLimitUntouched: an instance within its limits runs on, however
// many times it is measured; a memory volume is a tmpfs of its sizeLimit.
func TestUnderLimitUntouched(t *testing.T) {
	r := limitsRuntime(t, func(*Config) {})
	start(t, r, Instance{ID: "limits-under", EphemeralStorage: 1 << 30,
		Volumes: []Volume{{Name: "data", SizeLimit: 64 << 20}, {Name: "mem", Memory: true, SizeLimit: 16 << 20}},
		Containers: []Container{{Name: "main", Image: "busybox", EphemeralStorage: 64 << 20,
			Mounts: []Mount{{Volume: "data", Path: "/data"}, {Volume: "mem", Path: "/mem"}},
			Command: []string{"sh", "-c", `dd if=/dev/zero of=/fill bs=1048576 count=4; dd if=/dev/zero of=/data/fill bs=1048576 count=4
dd if=/dev/zero of=/mem/fill bs=1048576 count=32 2>&1; echo written; sleep 3600`}}},
	})
	waitFor(t, 60*time.Second, "the writes", func() bool { return strings.Contains(readLog(t, r, "limits-under", "main"), "written") })
	if log := readLog(t, r, "limits-under", "main"); !strings.Contains(log, "No space left on device") {
		t.Errorf("32 MiB fit in a memory volume of 16 MiB:\n%s", log)
	}
	rounds := r.storage.rounds.Load()
	waitFor(t, 30*time.Second, "three more measuring rounds", func() bool { return r.storage.rounds.Load() >= rounds+3 })
	st, _ := r.Status("limits-under")
	if st.Reason != "" || st.Containers[0].State != StateRunning {
		t.Errorf("an instance under its limits: %q %q, container %s", st.Reason, st.Message, st.Containers[0].State)
	}
	in, _ := r.table.get("limits-under")
	u, err := r.storage.measure(r.ctx, in, limitsOf(in.spec).ceiling())
	if err != nil {
		t.Fatal(err)
	}
	if c, v := u.containers["main"], u.volumes["data"]; c < 4<<20 || c > 8<<20 || v < 4<<20 || v > 5<<20 {
		t.Errorf("measured the container at %d and the volume at %d, want about 4 MiB each", c, v)
	}
	if _, ok := u.volumes["mem"]; ok {
		t.Error("a memory volume was counted as disk")
	}
	// The writable layer found from the container's process is the one
	// containerd names.
	c := in.containers[0]
	mounts, err := r.client.SnapshotService(snapshotter).Mounts(r.ctx, c.cid)
	if err != nil {
		t.Fatal(err)
	}
	if got := upperOfProcess(c.runningPID()); got == "" || !slices.Contains(mounts[0].Options, "upperdir="+got) {
		t.Errorf("upper folder %q from the process, containerd mounts %+v", got, mounts)
	}
}

// TestStorageMeasuredAfterRestart: a restarted runtime measures the
// instances it adopted, their writable layers too (read from containerd,
// the first process being unknown), and evicts one that goes over.
func TestStorageMeasuredAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) { c.StorageCheckEvery = 100 * time.Millisecond }
	r1 := openRuntimeWith(t, dir, cfg)
	start(t, r1, Instance{ID: "limits-adopted", EphemeralStorage: 1 << 30, Volumes: []Volume{{Name: "data"}},
		Containers: []Container{{Name: "main", Image: "busybox", EphemeralStorage: 8 << 20, Mounts: []Mount{{Volume: "data", Path: "/data"}},
			Command: []string{"sh", "-c", "while [ ! -e /data/go ]; do sleep 0.1; done; dd if=/dev/zero of=/fill bs=1048576 count=16; sleep 3600"}}},
	})
	waitState(t, r1, "limits-adopted", "main", StateRunning)
	r1.Close()
	r2 := openRuntimeWith(t, dir, cfg)
	// Written into the instance's emptyDir from outside: the container starts filling.
	if err := os.WriteFile(filepath.Join(dir, instancesDir, "limits-adopted", volumesDir, "data", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := evicted(t, r2, "limits-adopted")
	if want := "Pod ephemeral local storage usage exceeds the total limit of containers 8Mi. "; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
}
