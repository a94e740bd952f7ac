package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The cgroups (v1: this host runs the hybrid hierarchy, where runc works and
// crun does not): /spoteci/<instance> holds the instance type's vCPU and
// memory, and each container is /spoteci/<instance>/<container> inside it,
// with its own limits if it has any (or the instance's, so that the limits
// read from inside the container are the instance's).
const cgroupRoot = "/spoteci"

// cfsPeriod is the CFS period of CPU limits, in microseconds.
const cfsPeriod = 100000

func instanceCgroupPath(id string) string { return path.Join(cgroupRoot, id) }

func containerCgroup(id, name string) string { return path.Join(cgroupRoot, id, name) }

// cgroupLimits turns vCPUs and bytes into cgroup resources (nil for none).
func cgroupLimits(cpu float64, mem int64) (*specs.LinuxCPU, *specs.LinuxMemory) {
	var c *specs.LinuxCPU
	var m *specs.LinuxMemory
	if cpu > 0 {
		quota, period := int64(cpu*cfsPeriod), uint64(cfsPeriod)
		c = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if mem > 0 {
		m = &specs.LinuxMemory{Limit: &mem}
	}
	return c, m
}

// instanceCgroup creates (or updates) the cgroup of instance id, with
// pids processes at most (0: no limit).
func instanceCgroup(id string, cpu float64, mem, pids int64) error {
	res := &specs.LinuxResources{}
	res.CPU, res.Memory = cgroupLimits(cpu, mem)
	if pids > 0 {
		res.Pids = &specs.LinuxPids{Limit: &pids}
	}
	p := cgroup1.StaticPath(instanceCgroupPath(id))
	cg, err := cgroup1.Load(p)
	if err == nil {
		err = cg.Update(res)
	} else {
		_, err = cgroup1.New(p, res)
	}
	if err != nil {
		return fmt.Errorf("cgroup of %s: %w", id, err)
	}
	return nil
}

// deleteCgroup deletes the cgroup of instance id ("" : the root of all),
// once its containers are deleted. A process still in it belongs to no
// container record (a launch cut short by a stop, a record lost in a crash)
// and is the instance's alone: it is killed, so that none outlives its
// instance.
func deleteCgroup(id string) error {
	p := instanceCgroupPath(id)
	cg, err := cgroup1.Load(cgroup1.StaticPath(p))
	if err != nil {
		return nil // none
	}
	tries := wait.Backoff{Duration: 20 * time.Millisecond, Steps: 51}
	if werr := wait.ExponentialBackoff(tries, func() (bool, error) {
		err = cg.Delete()
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		if id == "" { // the root is shared: never kill in it
			return false, err
		}
		procs, _ := cg.Processes(cgroup1.Memory, true)
		for _, proc := range procs {
			syscall.Kill(proc.Pid, syscall.SIGKILL)
		}
		return false, nil
	}); werr != nil {
		return fmt.Errorf("deleting cgroup %s: %w", p, err)
	}
	return nil
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// container's cgroup or, failing that, of its instance's.
func oomKilled(id, name string) bool {
	for _, p := range []string{containerCgroup(id, name), instanceCgroupPath(id)} {
		b, err := os.ReadFile(path.Join("/sys/fs/cgroup/memory", p, "memory.oom_control"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
				if n, _ := strconv.Atoi(strings.TrimSpace(v)); n > 0 {
					return true
				}
			}
		}
	}
	return false
}
