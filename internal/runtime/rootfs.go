package runtime

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// A container's root is its overlayfs snapshot, mounted by runc inside the
// container's own mount namespace (the first mount of its OCI spec, at /),
// not by the shim on the host as containerd does by default. Every mount on
// the host is read again by each later start (runc parses the host's
// /proc/self/mountinfo several times a start, and the kernel copies the
// whole table into each new container's mount namespace), and an overlay's
// line, with its lowerdir, upperdir and workdir, is the longest there: with
// the root on the host, each running instance made every start dearer. In
// the container, the mount lives and dies with the container's mount
// namespace, and nothing is left to unmount on the host after a crash.
//
// An image whose snapshot is not one overlay (no layer: a bind mount), or
// whose overlay options do not fit the page that mount(2) takes (many
// layers: containerd's shim shortens them, runc does not), keeps the
// shim's mount. The label on the containerd container says which, so that
// a launch resumed after a restart makes the task as the container was
// made for.

// labelRootfs marks a containerd container whose root runc mounts.
const labelRootfs = "io.spoteci.rootfs"

// rootfsInContainer is labelRootfs's value.
const rootfsInContainer = "in-container"

// maxMountData bounds the options of a root that runc mounts: mount(2)
// takes a page, with its terminating NUL.
const maxMountData = 4000

// containerRoot carries the root mount from the container's making (its
// snapshot is prepared first) to its OCI spec.
type containerRoot struct {
	mount *specs.Mount
}

// decide is a NewContainerOpts, after the snapshot is made: it reads the
// snapshot's mounts and, if runc can mount them, labels the container.
func (cr *containerRoot) decide() containerd.NewContainerOpts {
	return func(ctx context.Context, client *containerd.Client, c *containers.Container) error {
		mounts, err := client.SnapshotService(c.Snapshotter).Mounts(ctx, c.SnapshotKey)
		if err != nil {
			return fmt.Errorf("mounts of the snapshot of %s: %w", c.ID, err)
		}
		m, ok := rootMount(mounts)
		if !ok {
			return nil
		}
		cr.mount = &m
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[labelRootfs] = rootfsInContainer
		return nil
	}
}

// spec puts the root mount first in the OCI spec's mounts, under the
// others (/proc, /dev, the volumes).
func (cr *containerRoot) spec() oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if cr.mount != nil {
			s.Mounts = append([]specs.Mount{*cr.mount}, s.Mounts...)
		}
		return nil
	}
}

// rootMount is the OCI mount of a snapshot at the container's root, false
// if runc cannot mount it.
func rootMount(mounts []mount.Mount) (specs.Mount, bool) {
	if len(mounts) != 1 || mounts[0].Type != "overlay" || len(strings.Join(mounts[0].Options, ",")) > maxMountData {
		return specs.Mount{}, false
	}
	return specs.Mount{Destination: "/", Type: "overlay", Source: "overlay", Options: slices.Clone(mounts[0].Options)}, true
}

// rootInContainer reports whether runc mounts cont's root.
func rootInContainer(ctx context.Context, cont containerd.Container) bool {
	info, err := cont.Info(ctx, containerd.WithoutRefreshedMetadata)
	return err == nil && info.Labels[labelRootfs] == rootfsInContainer
}

// newTaskNoRootfs makes the task of a container whose root runc mounts:
// as the client's NewTask, less the snapshot's mounts for the shim.
func (l *launcher) newTaskNoRootfs(ctx context.Context, cont containerd.Container, c *container) (containerd.Task, error) {
	p := c.fifoPaths()
	if _, err := l.client.TaskService().Create(ctx, &tasks.CreateTaskRequest{ContainerID: cont.ID(), Stdout: p[0], Stderr: p[1]}); err != nil {
		return nil, errgrpc.ToNative(err)
	}
	return cont.Task(ctx, nil)
}
