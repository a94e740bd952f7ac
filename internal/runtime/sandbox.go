package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"k8s.io/apimachinery/pkg/util/wait"
)

// sandboxes sets up and frees what the containers of an instance share: its
// cgroup, volumes, network namespace and address, and /etc files; an ended
// instance's sandbox is freed later, once no launch waits (teardown.go).
type sandboxes struct {
	base
	table     *table
	net       *network
	launches  *launchCount  // queued or under way: teardowns wait for none
	teardowns chan struct{} // a slot per sandbox being freed; see teardown.go
}

var tasksListRequest = tasks.ListTasksRequest{}

// setUp sets up what the containers of an instance share: the cgroup of
// its size, its network namespace and IP, and /etc/hosts, /etc/hostname and
// /etc/resolv.conf.
func (s *sandboxes) setUp(ctx context.Context, in *instance, clock *launchClock) error {
	clock.skip()
	if err := instanceCgroup(in.spec.ID, in.spec.CPU, in.spec.Memory, in.spec.PidsLimit); err != nil {
		return err
	}
	clock.lap(phaseCgroup)
	if err := setUpVolumes(in); err != nil {
		return err
	}
	clock.lap(phaseVolumes)
	ip, err := s.net.setUp(ctx, in.spec.ID, in.lastIP(), clock)
	if err != nil {
		return err
	}
	in.setIP(ip)
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", ip, in.spec.Hostname)
	content := []string{hosts, in.spec.Hostname + "\n", resolvConf()}
	files := map[string]string{}
	for i, name := range etcFiles {
		files[name] = content[i]
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(in.dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing /etc/%s of %s: %w", name, in.spec.ID, err)
		}
	}
	clock.lap(phaseEtc)
	return nil
}

// etcFiles are the files of an instance's folder that its containers see
// in /etc, bind-mounted: /etc/hosts, /etc/hostname and /etc/resolv.conf.
var etcFiles = []string{"hosts", "hostname", "resolv.conf"}

// resolvConf is the host's resolver configuration without loopback name
// servers, which a sandbox cannot reach.
func resolvConf() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// ended records that a container ended and, if it was the last of its
// instance, that the instance did, and frees its sandbox later.
func (s *sandboxes) ended(in *instance) {
	if !in.allTerminated() {
		return
	}
	s.table.exited(in.spec.ID)
	s.tearDownLater(in)
}

// release frees what an instance whose containers all ended holds: its
// containerd containers and their snapshots, its network namespace and IP
// lease, its cgroup. Its folder (status, events, logs) stays until Remove.
// Idempotent.
func (s *sandboxes) release(in *instance) {
	in.launchMu.Lock() // a launch in progress may still be creating a container
	defer in.launchMu.Unlock()
	if cur, ok := s.table.get(in.spec.ID); !ok || cur != in {
		return // removed meanwhile: nothing is left to free, and its folder is gone
	}
	if err := s.free(s.ctx, in); err != nil && s.ctx.Err() == nil {
		s.log.Warn("freeing the sandbox of an ended instance", "instance", in.spec.ID, "err", err)
	}
}

// free deletes an instance's containerd containers and snapshots, its
// network namespace and IP lease, its cgroup and its tmpfs volumes.
func (s *sandboxes) free(ctx context.Context, in *instance) error {
	var errs []error
	for _, c := range in.containers {
		errs = append(errs, deleteContainer(ctx, s.client, c.cid))
	}
	errs = append(errs, s.net.tearDown(ctx, in.spec.ID), deleteCgroup(in.spec.ID), tearDownVolumes(in))
	return errors.Join(errs...)
}

// sweep deletes every containerd container left in the runtime's namespace,
// and the sandboxes of their instances.
func (s *sandboxes) sweep(ctx context.Context) error {
	ctx = namespaces.WithNamespace(ctx, s.cfg.Namespace)
	left, err := s.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("listing containerd containers: %w", err)
	}
	var errs []error
	orphans := map[string]bool{}
	for _, cont := range left {
		s.log.Warn("deleting a containerd container no instance holds", "container", cont.ID())
		if labels, err := cont.Labels(ctx); err == nil && labels[labelInstance] != "" {
			orphans[labels[labelInstance]] = true
		}
		if err := deleteContainer(ctx, s.client, cont.ID()); err != nil {
			errs = append(errs, err)
		}
	}
	// Their sandboxes too: network namespace and address, cgroup.
	for id := range orphans {
		errs = append(errs, s.net.tearDown(ctx, id), deleteCgroup(id))
	}
	return errors.Join(errs...)
}

// adoptNetworks holds again the network namespace of each of instances that
// has one (see network.go): pinned by an earlier runtime, or in a running
// container's first process.
func (s *sandboxes) adoptNetworks(ctx context.Context, instances []*instance) {
	pids := map[string]int{}
	if resp, err := s.client.TaskService().List(ctx, &tasksListRequest); err != nil {
		s.log.Warn("listing containerd tasks", "err", err)
	} else {
		for _, t := range resp.Tasks {
			if t.Status == tasktypes.Status_RUNNING {
				pids[t.ID] = int(t.Pid)
			}
		}
	}
	for _, in := range instances {
		id := in.spec.ID
		if took, err := s.net.netns.takeOverPin(id); took || err != nil {
			if err != nil {
				s.log.Warn("taking over the network namespace of an instance", "instance", id, "err", err)
			}
			continue
		}
		for _, c := range in.containers {
			pid, ok := pids[c.cid]
			if !ok || c.state() != StateRunning {
				continue
			}
			err := s.net.netns.adoptNetNS(id, pid, containerCgroup(id, c.name))
			if err == nil {
				break
			}
			s.log.Warn("holding the network namespace of a running container", "container", c.cid, "err", err)
		}
	}
}

// loadTask loads the task of a containerd container.
func loadTask(ctx context.Context, client *containerd.Client, cid string) (containerd.Task, error) {
	cont, err := client.LoadContainer(ctx, cid)
	if err != nil {
		return nil, err
	}
	return cont.Task(ctx, nil)
}

// deleteContainer kills a container's task and deletes it with its snapshot.
// It finishes even when ctx is cancelled (spoteci stopping): a task left
// undeleted keeps its shim alive.
func deleteContainer(ctx context.Context, client *containerd.Client, cid string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cont, err := client.LoadContainer(ctx, cid)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// Under load a shim's connection can close in the middle of a delete
	// ("ttrpc: closed"): ask again, from loading the task, a few times.
	retries := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 5}
	werr := wait.ExponentialBackoffWithContext(ctx, retries, func(ctx context.Context) (bool, error) {
		err = deleteTask(ctx, client, cont)
		return err == nil, nil
	})
	if err == nil {
		err = werr // ctx ended before the first try
	}
	if err != nil {
		return fmt.Errorf("deleting task of %s: %w", cid, err)
	}
	if err := cont.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting container %s: %w", cid, err)
	}
	return nil
}

// deleteTask kills a container's task and deletes it; no error if it has none.
func deleteTask(ctx context.Context, client *containerd.Client, cont containerd.Container) error {
	t, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		// None, or one half made whose shim would outlive the container.
		return deleteHalfMade(ctx, client, cont.ID())
	}
	if err != nil {
		return err
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// deleteHalfMade deletes the task of container id that containerd cannot
// load because its shim holds no container: containerd died after starting
// the shim and before the shim made the container. Only the task service's
// delete ends such a shim (the shim's "not found" is taken as deleted); a
// container with no task at all answers NotFound, which is no error.
func deleteHalfMade(ctx context.Context, client *containerd.Client, id string) error {
	_, err := client.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
	if err = errgrpc.ToNative(err); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
