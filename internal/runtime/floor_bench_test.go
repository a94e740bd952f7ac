package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/spoteci/spoteci/internal/procstat"
)

// BenchmarkRuncFloor is the floor under every figure of container starts on
// this machine: runc alone (`runc run -d`, as the shim calls it) starting
// b.N `sleep` containers from a busybox root, with the hardening the runtime
// gives each container (its own namespaces, Docker's capabilities and
// seccomp profile, a cgroup with limits) but nothing else: no containerd, no
// shim, no network, no snapshot, no logger. It reports containers started a
// second and the CPU the machine spent per container. Run with -benchtime
// 1000x to compare with the 1,000-pod Job.
//
// The last case starts the same containers beside 2,000 more mounts on the
// host, about what 1,000 running instances hold (the pinned network
// namespace and the overlay root of each): runc, the shim and containerd
// read the host's mount table on every start, so each start costs more
// the more instances run.
func BenchmarkRuncFloor(b *testing.B) {
	b.Run("plain", func(b *testing.B) { runcFloor(b, false, 0) })
	b.Run("seccomp", func(b *testing.B) { runcFloor(b, true, 0) })
	b.Run("seccomp-2000-mounts", func(b *testing.B) { runcFloor(b, true, 2000) })
}

func runcFloor(b *testing.B, seccompProfile bool, mounts int) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		b.Skip("runc is not installed (make deps)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		b.Skip("busybox is not installed (make deps)")
	}
	dir := b.TempDir()
	bundle, state := filepath.Join(dir, "bundle"), filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs", "bin"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := exec.Command("cp", busybox, filepath.Join(bundle, "rootfs", "bin", "busybox")).Run(); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(bundle, "rootfs", "bin", "sleep")); err != nil {
		b.Fatal(err)
	}
	for i := range mounts {
		m := filepath.Join(dir, "mounts", strconv.Itoa(i))
		if err := os.MkdirAll(m, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", m, "tmpfs", 0, "size=4k"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { syscall.Unmount(m, syscall.MNT_DETACH) })
	}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("floor%d-%d", time.Now().UnixNano()%1e6, i)
	}
	var wg sync.WaitGroup
	cleanup := func() {
		for _, id := range ids {
			exec.Command(runc, "--root", state, "kill", id, "KILL").Run()
		}
		for _, id := range ids {
			for try := 0; try < 50; try++ {
				if exec.Command(runc, "--root", state, "delete", "--force", id).Run() == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		deleteCgroup("floor")
	}
	b.Cleanup(cleanup)
	// One bundle per container: runc reads config.json from it, and the
	// cgroup path differs.
	for _, id := range ids {
		if err := writeFloorBundle(filepath.Join(dir, id), filepath.Join(bundle, "rootfs"), id, seccompProfile); err != nil {
			b.Fatal(err)
		}
	}
	work := make(chan string)
	errs := make(chan error, b.N)
	busy0 := busyCPU(b)
	b.ResetTimer()
	began := time.Now()
	for range 2 * goruntime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				// The container keeps runc's stdio: a file, not a pipe
				// that would stay open for the container's life.
				stderr := filepath.Join(dir, id, "stderr")
				f, err := os.Create(stderr)
				if err != nil {
					errs <- err
					continue
				}
				cmd := exec.Command(runc, "--root", state, "run", "--detach", "--bundle", filepath.Join(dir, id), id)
				cmd.Stdout, cmd.Stderr = f, f
				err = cmd.Run()
				f.Close()
				if err != nil {
					out, _ := os.ReadFile(stderr)
					errs <- fmt.Errorf("runc run %s: %v: %s", id, err, out)
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "running/s")
	b.ReportMetric((busyCPU(b)-busy0).Seconds()*1000/float64(b.N), "ms-cpu/container")
}

// writeFloorBundle writes the OCI bundle of a floor container: the spec the
// runtime builds for a container (namespaces, capabilities, cgroup, limits,
// optionally Docker's seccomp profile), rooted at rootfs read-only.
func writeFloorBundle(dir, rootfs, id string, seccompProfile bool) error {
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(rootfs),
		oci.WithRootFSReadonly(),
		oci.WithProcessArgs("/bin/sleep", "3600"),
		oci.WithHostname(id),
		oci.WithCgroup(containerCgroup("floor", id)),
		withResources(1, 256<<20),
	}
	if seccompProfile {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	ctx := namespaces.WithNamespace(context.Background(), "floor")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: id}, opts...)
	if err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644)
}

// busyCPU is the CPU time the whole machine has spent so far, all cores,
// idle and I/O wait excluded.
func busyCPU(b *testing.B) time.Duration {
	busy, _, err := procstat.Machine()
	if err != nil {
		b.Fatal(err)
	}
	return busy
}
