package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"

	"github.com/spoteci/spoteci/internal/runtime/daemon"
)

// halfMake leaves containerd container cid (of image busybox) with a task
// half made, as a kill -9 of containerd in the middle of making it does: a
// shim that containerd knows, holding no container. runc's create is held
// back by a wrapper until containerd is dead.
func halfMake(t *testing.T, r *Containerd, cid string) {
	t.Helper()
	ctx := r.ctx
	img := busyboxImage(t, r)
	gate := filepath.Join(t.TempDir(), "gate")
	slow := filepath.Join(t.TempDir(), "slow-runc")
	script := "#!/bin/sh\ncase \" $* \" in *\" create \"*) while [ ! -e " + gate + " ]; do sleep 0.05; done;; esac\nexec runc \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cont, err := r.client.NewContainer(ctx, cid,
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(cid, img),
		containerd.WithRuntime(runcRuntime, &options.Options{BinaryName: slow}),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sh", "-c", "echo made; sleep 3600")),
	)
	if err != nil {
		t.Fatal(err)
	}
	made := make(chan error, 1)
	go func() {
		_, err := cont.NewTask(ctx, cio.NullIO)
		made <- err
	}()
	waitFor(t, 10*time.Second, "the shim of "+cid, func() bool { return len(shimsOf(cid)) > 0 })
	time.Sleep(300 * time.Millisecond) // the create is in the shim's hands
	if err := syscall.Kill(env.Daemon.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-made; err == nil {
		t.Fatal("the task was made although containerd died")
	}
	os.WriteFile(gate, nil, 0o644)
	d, err := daemon.Start(context.Background(), env.Daemon.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Daemon = d
	if _, err := cont.Task(ctx, nil); !errdefs.IsNotFound(err) || len(shimsOf(cid)) == 0 {
		t.Fatalf("not half made: task %v, shims %v", err, shimsOf(cid))
	}
}

// busyboxImage pulls busybox into the runtime's namespace.
func busyboxImage(t *testing.T, r *Containerd) containerd.Image {
	t.Helper()
	start(t, r, Instance{ID: "puller", Containers: []Container{busybox("main", "true")}})
	waitState(t, r, "puller", "main", StateTerminated)
	imgs, err := r.client.ListImages(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if strings.Contains(img.Name(), "busybox") {
			return img
		}
	}
	t.Fatal("busybox is not in the namespace")
	return nil
}

// shimsOf returns the pids of the shims whose task is cid.
func shimsOf(cid string) []int {
	var pids []int
	for _, sh := range daemon.Shims() {
		if i := slices.Index(sh.Args, "-id"); i >= 0 && i+1 < len(sh.Args) && sh.Args[i+1] == cid {
			pids = append(pids, sh.PID)
		}
	}
	return pids
}

// TestHalfMadeTaskLaunched: a launch that meets a task half made (containerd
// killed while making it) deletes it and makes it again, rather than ending
// the container with StartError "no running task found: container not
// created".
func TestHalfMadeTaskLaunched(t *testing.T) {
	r := newRuntime(t)
	halfMake(t, r, "half.0")
	start(t, r, Instance{ID: "half", Containers: []Container{busybox("main", "echo made; sleep 3600")}})
	cs := waitState(t, r, "half", "main", StateRunning)
	if cs.RestartCount != 0 {
		t.Errorf("restarts = %d", cs.RestartCount)
	}
	waitFor(t, 10*time.Second, "the container's log", func() bool { return readLog(t, r, "half", "main") == "made\n" })
}

// TestStaleBundleLaunched: a launch that meets the bundle of its task in
// containerd's state folder, left by a containerd killed while making the
// task before its shim answered (containerd 1.6 neither loads nor removes
// it), removes it and makes the task, rather than ending the container
// with StartError "failed to start shim: mkdir ...: file exists".
func TestStaleBundleLaunched(t *testing.T) {
	r := newRuntime(t)
	bundle := filepath.Join(env.Daemon.State(), "io.containerd.runtime.v2.task", r.cfg.Namespace, "stale.0")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// runc's state of the container, left as a create cut short leaves it
	// (its folder, before state.json): runc create would say the container
	// already exists.
	if err := os.MkdirAll(filepath.Join(runcRoot, r.cfg.Namespace, "stale.0"), 0o700); err != nil {
		t.Fatal(err)
	}
	start(t, r, Instance{ID: "stale", Containers: []Container{busybox("main", "echo made; sleep 3600")}})
	cs := waitState(t, r, "stale", "main", StateRunning)
	if cs.RestartCount != 0 {
		t.Errorf("restarts = %d", cs.RestartCount)
	}
	waitFor(t, 10*time.Second, "the container's log", func() bool { return readLog(t, r, "stale", "main") == "made\n" })
}

// TestHalfMadeTaskDeleted: deleting a container whose task is half made ends
// its shim too; otherwise the shim outlives the instance.
func TestHalfMadeTaskDeleted(t *testing.T) {
	r := newRuntime(t)
	halfMake(t, r, "halfgone.0")
	if err := deleteContainer(r.ctx, r.client, "halfgone.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.LoadContainer(r.ctx, "halfgone.0"); !errdefs.IsNotFound(err) {
		t.Errorf("the container after its delete: %v", err)
	}
	waitFor(t, 10*time.Second, "the shim of the deleted container to end", func() bool { return len(shimsOf("halfgone.0")) == 0 })
}

// TestLoneSnapshotLaunched: a launch that meets the snapshot of its
// container without the container (containerd killed between making the
// two) removes the snapshot and makes the container, rather than ending it
// with StartError "container ... not found".
func TestLoneSnapshotLaunched(t *testing.T) {
	r := newRuntime(t)
	img := busyboxImage(t, r)
	// Made under a lease that outlives the creation, as the lease of a
	// creation containerd's death interrupted does: containerd's garbage
	// collection keeps the snapshot.
	ctx, done, err := r.client.WithLease(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer done(r.ctx)
	cont, err := r.client.NewContainer(ctx, "lone.0", containerd.WithImage(img), containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot("lone.0", img), containerd.WithNewSpec(oci.WithImageConfig(img)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.client.ContainerService().Delete(ctx, cont.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.SnapshotService(snapshotter).Stat(r.ctx, "lone.0"); err != nil {
		t.Fatalf("the snapshot is not left: %v", err)
	}
	start(t, r, Instance{ID: "lone", Containers: []Container{busybox("main", "echo made; sleep 3600")}})
	waitState(t, r, "lone", "main", StateRunning)
	waitFor(t, 10*time.Second, "the container's log", func() bool { return readLog(t, r, "lone", "main") == "made\n" })
}
