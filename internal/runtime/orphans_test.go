package runtime

import (
	"context"
	"slices"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/spoteci/spoteci/internal/runtime/daemon"
)

// A container no instance holds (a delete that containerd's death cut
// short) is deleted with its task, and its shim ends; the instances' own
// containers run on.
func TestCollectOrphans(t *testing.T) {
	var regs Registries
	if err := regs.AddMirror(env.Mirror()); err != nil {
		t.Fatal(err)
	}
	const ns = "spoteci-orphans" // its own: collecting treats the namespace as the runtime's alone
	r, err := New(context.Background(), Config{Dir: t.TempDir(), Address: env.Daemon.Address, Logger: env.Logger, Registries: regs, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start(t, r, Instance{ID: "held", Containers: []Container{busybox("main", "sleep 3600")}})
	waitState(t, r, "held", "main", StateRunning)
	defer r.Remove(context.Background(), "held")

	ctx := namespaces.WithNamespace(context.Background(), ns)
	img, err := r.client.GetImage(ctx, "docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := r.client.NewContainer(ctx, "orphan", containerd.WithImage(img), containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot("orphan", img), containerd.WithRuntime(runcRuntime, nil),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "3600")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := orphan.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	shimFor := func(id string) bool {
		return slices.ContainsFunc(daemon.Shims(env.Daemon.Address), func(s daemon.Shim) bool { return s.ID == id && s.Namespace == ns })
	}
	if !shimFor("orphan") {
		t.Fatal("no shim for the orphan")
	}

	r.collectOrphans(ctx, 0)
	if _, err := r.client.LoadContainer(ctx, "orphan"); err == nil {
		t.Error("the orphan container is still there")
	}
	waitFor(t, 10*time.Second, "the orphan's shim gone", func() bool { return !shimFor("orphan") })
	if st, _ := r.Status("held"); st.Containers[0].State != StateRunning {
		t.Errorf("the held instance's container: %+v", st.Containers[0])
	}
}
