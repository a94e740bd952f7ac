package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"k8s.io/apimachinery/pkg/api/resource"
)

// An instance's limits besides its vCPUs and memory: the processes it may
// have (pids) and the disk it may fill (ephemeral storage). See doc.go.

// Pids: a fixed number per vCPU, as a kubelet's podPidsLimit is set per
// node size, with a floor for the smallest instances and a ceiling that
// keeps any one instance from holding more than a quarter of the host's
// pid_max; the instances together are held under pid_max less a reserve
// for the host (its shims, containerd, spoteci), as a kubelet's
// system-reserved pids.
const (
	pidsPerCPU = 1024
	minPodPids = 1024
	// hostPidsShare is the part of pid_max one instance may hold at most.
	hostPidsShare = 4
	// hostPidsReserve is the part of pid_max kept from all instances.
	hostPidsReserve = 8
)

// pidsRoot is the pids controller's hierarchy (cgroup v1).
const pidsRoot = "/sys/fs/cgroup/pids"

// podPidsLimit is the pids limit of an instance of cpu vCPUs: fixed if
// positive (--pod-max-pids), else pidsPerCPU a vCPU and at least
// minPodPids; never more than pidMax/hostPidsShare.
func podPidsLimit(fixed int64, cpu float64, pidMax int64) int64 {
	n := fixed
	if n <= 0 {
		n = max(minPodPids, int64(math.Ceil(cpu*pidsPerCPU)))
	}
	if ceiling := pidMax / hostPidsShare; ceiling > 0 {
		n = min(n, ceiling)
	}
	return max(n, 1)
}

// hostPidMax is the kernel's pid_max (32768 if unreadable, its default).
func hostPidMax() int64 {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 32768
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}

// podPids is the pids limit the runtime gives an instance of cpu vCPUs.
func (r *Containerd) podPids(cpu float64) int64 {
	return podPidsLimit(r.cfg.PodPidsLimit, cpu, r.pidMax)
}

// limitAllPids holds every instance together under pid_max less the
// host's reserve: pids.max of the root cgroup /spoteci.
func limitAllPids(pidMax int64) error {
	dir := filepath.Join(pidsRoot, cgroupRoot)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pids cgroup %s: %w", cgroupRoot, err)
	}
	n := pidMax - pidMax/hostPidsReserve
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.FormatInt(n, 10)), 0o644); err != nil {
		return fmt.Errorf("pids limit of %s: %w", cgroupRoot, err)
	}
	return nil
}

// setPidsMax sets the pids limit of instance id's cgroup, if it has one:
// for instances adopted from a runtime that did not set it.
func setPidsMax(id string, n int64) error {
	p := filepath.Join(pidsRoot, instanceCgroupPath(id), "pids.max")
	err := os.WriteFile(p, []byte(strconv.FormatInt(n, 10)), 0o644)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pids limit of %s: %w", id, err)
	}
	return nil
}

// Ephemeral storage, measured as a kubelet's eviction manager measures it:
// each container's writable layer (its overlayfs snapshot's upper folder)
// and logs, and the instance's disk volumes (a tmpfs counts as memory).
// Every StorageCheckEvery the instances that run are measured one after
// the other, off the launch path; one over a limit is evicted.

// storageCheckEvery is the default Config.StorageCheckEvery: a kubelet's
// eviction monitoring period.
const storageCheckEvery = 10 * time.Second

// evictionGrace is the grace of an evicted instance's containers, a
// kubelet's for local storage evictions (immediateEvictionGracePeriodSeconds).
const evictionGrace = time.Second

// storageLimits are the ephemeral storage limits of an instance, in bytes;
// zero is none.
type storageLimits struct {
	capacity   int64            // the instance's temporary storage
	pod        int64            // the sum of its containers' limits, as a kubelet's pod limit
	containers map[string]int64 // by container
	volumes    map[string]int64 // disk emptyDirs with a sizeLimit
}

func limitsOf(spec Instance) storageLimits {
	l := storageLimits{capacity: spec.EphemeralStorage, containers: map[string]int64{}, volumes: map[string]int64{}}
	for _, c := range spec.Containers {
		if c.EphemeralStorage > 0 {
			l.containers[c.Name] = c.EphemeralStorage
			l.pod += c.EphemeralStorage
		}
	}
	for _, v := range spec.Volumes {
		if v.SizeLimit > 0 && !v.Memory && len(v.Files) == 0 {
			l.volumes[v.Name] = v.SizeLimit
		}
	}
	return l
}

func (l storageLimits) none() bool {
	return l.capacity <= 0 && l.pod <= 0 && len(l.volumes) == 0
}

// ceiling is one byte over the largest limit: a part measured past it is
// over every limit it counts against, so its walk may stop there.
func (l storageLimits) ceiling() int64 {
	n := max(l.capacity, l.pod)
	for _, v := range l.volumes {
		n = max(n, v)
	}
	return n + 1
}

// storageUsage is what an instance uses, in bytes, each part measured up to
// the limits' ceiling.
type storageUsage struct {
	containers map[string]int64 // writable layer and logs
	volumes    map[string]int64 // disk volumes
	// etc is the instance's /etc/hosts, /etc/hostname and /etc/resolv.conf:
	// files of its folder that its containers may write (bind mounts), as a
	// kubelet counts a pod's etc-hosts.
	etc int64
}

func (u storageUsage) total() int64 {
	n := u.etc
	for _, v := range u.containers {
		n += v
	}
	for _, v := range u.volumes {
		n += v
	}
	return n
}

// The kubelet's eviction messages (pkg/kubelet/eviction/helpers.go), their
// trailing space included.
const (
	emptyDirMessageFmt                  = "Usage of EmptyDir volume %q exceeds the limit %q. "
	podEphemeralStorageMessageFmt       = "Pod ephemeral local storage usage exceeds the total limit of containers %s. "
	containerEphemeralStorageMessageFmt = "Container %s exceeded its local ephemeral storage limit %q. "
	// The instance's own disk is its node's: full, it is the kubelet's
	// node-pressure eviction, whose message begins so.
	capacityMessageFmt = "The node was low on resource: ephemeral-storage. The instance's usage exceeds its temporary storage of %s. "
)

// eviction is the message of the first limit u is over, in the kubelet's
// order (emptyDir volumes, the pod, each container), then the instance's
// capacity; "" if none.
func (l storageLimits) eviction(spec Instance, u storageUsage) string {
	for _, v := range spec.Volumes {
		if lim, ok := l.volumes[v.Name]; ok && u.volumes[v.Name] > lim {
			return fmt.Sprintf(emptyDirMessageFmt, v.Name, quantity(lim))
		}
	}
	total := u.total()
	if l.pod > 0 && total > l.pod {
		return fmt.Sprintf(podEphemeralStorageMessageFmt, quantity(l.pod))
	}
	for _, c := range spec.Containers {
		if lim, ok := l.containers[c.Name]; ok && u.containers[c.Name] > lim {
			return fmt.Sprintf(containerEphemeralStorageMessageFmt, c.Name, quantity(lim))
		}
	}
	if l.capacity > 0 && total > l.capacity {
		return fmt.Sprintf(capacityMessageFmt, quantity(l.capacity))
	}
	return ""
}

// quantity says n bytes as Kubernetes does: 1Gi, 500Mi, or 1G when n is
// no multiple of 1024.
func quantity(n int64) string {
	format := resource.BinarySI
	if n%1024 != 0 {
		format = resource.DecimalSI
	}
	return resource.NewQuantity(n, format).String()
}

// diskUsage is the disk the tree at root takes, as du counts it (allocated
// blocks, each inode once), or a number over limit once it is known to be
// over: the walk stops there. A missing root takes none.
func diskUsage(root string, limit int64) (int64, error) {
	var total int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			total += info.Size()
		} else {
			if st.Nlink > 1 && !info.IsDir() {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if seen[key] {
					return nil
				}
				seen[key] = true
			}
			total += st.Blocks * 512
		}
		if total > limit {
			return filepath.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return total, err
}

// upperDir is a running container's writable layer: the upper folder of its
// overlayfs snapshot, asked of containerd once per run of the container.
type upperDir struct {
	started time.Time
	path    string
}

// storageWatcher measures, every StorageCheckEvery, the ephemeral storage of
// the running instances that have limits, and evicts those over one.
type storageWatcher struct {
	base
	table   *table
	stopper *stopper // stops an evicted instance
	// uppers are the writable layers of running containers; rounds counts
	// the measuring rounds done (for tests).
	uppers map[string]upperDir
	rounds atomic.Int64
}

// upper returns the upper folder of c's snapshot, from the cache while the
// run that it was read for goes on; else from the root mount of its first
// process, which costs containerd nothing in a storm of launches; else,
// for a container adopted after a restart, from containerd.
func (w *storageWatcher) upper(ctx context.Context, c *container, started time.Time) (string, error) {
	if u, ok := w.uppers[c.cid]; ok && u.started.Equal(started) {
		return u.path, nil
	}
	if dir := upperOfProcess(c.runningPID()); dir != "" {
		w.uppers[c.cid] = upperDir{started: started, path: dir}
		return dir, nil
	}
	mounts, err := w.client.SnapshotService(snapshotter).Mounts(ctx, c.cid)
	if err != nil {
		return "", fmt.Errorf("mounts of the snapshot of %s: %w", c.cid, err)
	}
	dir := ""
	for _, m := range mounts {
		switch m.Type {
		case "bind": // an image of no layer: the snapshot is the folder itself
			dir = m.Source
		case "overlay":
			for _, o := range m.Options {
				if v, ok := strings.CutPrefix(o, "upperdir="); ok {
					dir = v
				}
			}
		}
	}
	if dir == "" {
		return "", fmt.Errorf("the snapshot of %s has no upper folder", c.cid)
	}
	w.uppers[c.cid] = upperDir{started: started, path: dir}
	return dir, nil
}

// upperOfProcess is the upper folder of the overlay mounted at the root of
// process pid's mount namespace, "" if unknown.
func upperOfProcess(pid int) string {
	if pid <= 0 {
		return ""
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	roots, err := mountinfo.GetMountsFromReader(f, func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != "/" || m.FSType != "overlay", false
	})
	if err != nil {
		return ""
	}
	for _, m := range roots {
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return v
			}
		}
	}
	return ""
}

// logsUsage is the disk a container's logs take: the current one, its
// rotated files and the previous run's.
func logsUsage(c *container) int64 {
	files, _ := filepath.Glob(c.logPath() + "*")
	files = append(files, c.previousLogPath())
	var n int64
	for _, f := range files {
		var st syscall.Stat_t
		if syscall.Lstat(f, &st) == nil {
			n += st.Blocks * 512
		}
	}
	return n
}

// measure returns what instance in uses, each part up to ceiling.
func (w *storageWatcher) measure(ctx context.Context, in *instance, ceiling int64) (storageUsage, error) {
	u := storageUsage{containers: map[string]int64{}, volumes: map[string]int64{}}
	for _, c := range in.containers {
		st := c.status()
		n := logsUsage(c)
		if st.State == StateRunning {
			dir, err := w.upper(ctx, c, st.StartedAt)
			if err != nil {
				return u, err
			}
			layer, err := diskUsage(dir, ceiling)
			if err != nil {
				return u, fmt.Errorf("writable layer of %s: %w", c.cid, err)
			}
			n += layer
		}
		u.containers[c.name] = n
	}
	for _, name := range etcFiles {
		n, err := diskUsage(filepath.Join(in.dir, name), ceiling)
		if err != nil {
			return u, fmt.Errorf("/etc/%s of %s: %w", name, in.spec.ID, err)
		}
		u.etc += n
	}
	for _, v := range in.spec.Volumes {
		if v.Memory {
			continue // a tmpfs is memory, counted in the cgroup
		}
		n, err := diskUsage(filepath.Join(in.dir, volumesDir, v.Name), ceiling)
		if err != nil {
			return u, fmt.Errorf("volume %s of %s: %w", v.Name, in.spec.ID, err)
		}
		u.volumes[v.Name] = n
	}
	return u, nil
}

// run measures the running instances every StorageCheckEvery.
func (w *storageWatcher) run() {
	tick := time.NewTicker(w.cfg.StorageCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-tick.C:
			w.check(w.ctx)
			w.rounds.Add(1)
		}
	}
}

// check measures each instance that runs and has limits, and evicts
// those over one. The measures are spread over the period, so that a
// thousand instances cost the launches no burst.
func (w *storageWatcher) check(ctx context.Context) {
	all := w.table.all()
	var todo []*instance
	live := map[string]bool{}
	for _, in := range all {
		if !in.running() {
			continue // ended or stopping: its measuring is over
		}
		for _, c := range in.containers {
			live[c.cid] = true
		}
		if !limitsOf(in.spec).none() {
			todo = append(todo, in)
		}
	}
	for cid := range w.uppers {
		if !live[cid] {
			delete(w.uppers, cid)
		}
	}
	pace := w.cfg.StorageCheckEvery / time.Duration(len(todo)+1)
	for i, in := range todo {
		if i > 0 && !sleepCtx(ctx, pace) {
			return
		}
		if !in.running() {
			continue
		}
		l := limitsOf(in.spec)
		u, err := w.measure(ctx, in, l.ceiling())
		if err != nil {
			if ctx.Err() == nil && in.running() {
				w.log.Warn("measuring the ephemeral storage of an instance", "instance", in.spec.ID, "err", err)
			}
			continue
		}
		if msg := l.eviction(in.spec, u); msg != "" {
			w.evict(in, msg)
		}
	}
}

// sleepCtx waits d, false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// evict ends an instance over a limit as a kubelet's eviction manager does:
// a Warning Evicted event, the instance marked Evicted with the message, and
// its containers stopped with a grace of a second.
func (w *storageWatcher) evict(in *instance, msg string) {
	if !in.setEvicted(msg) {
		return
	}
	w.log.Info("evicting an instance over its ephemeral storage", "instance", in.spec.ID, "message", msg)
	in.event(Event{Type: "Warning", Reason: ReasonEvicted, Message: msg})
	if cur, ok := w.table.get(in.spec.ID); ok { // not removed meanwhile
		w.stopper.stop(cur, evictionGrace)
	}
}

// running reports whether the instance has a container running and is not
// being stopped.
func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop != nil || in.evicted != "" {
		return false
	}
	for _, c := range in.containers {
		if c.st.State == StateRunning {
			return true
		}
	}
	return false
}

// wasEvicted reports whether the runtime evicted the instance.
func (in *instance) wasEvicted() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.evicted != ""
}

// setEvicted records the eviction's message; false if the instance was
// evicted or stopping already.
func (in *instance) setEvicted(msg string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.evicted != "" || in.stop != nil {
		return false
	}
	in.evicted = msg
	in.save()
	return true
}
