package runtime

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// Usage is what a cgroup has used: CPU time (cumulative) and the rate of
// it since the last sample, and memory as a kubelet counts it (the working
// set is usage less inactive file pages).
type Usage struct {
	Time                 time.Time
	UsageCoreNanoSeconds uint64
	UsageNanoCores       uint64 // since the previous sample; 0 for the first
	MemoryUsageBytes     uint64
	WorkingSetBytes      uint64
	RSSBytes             uint64
}

// ContainerUsage is the usage of one running container.
type ContainerUsage struct {
	Name      string
	StartedAt time.Time
	Usage
}

// Stats is a sample of an instance's resource use, from its cgroups.
type Stats struct {
	Usage                       // the instance's cgroup: all its containers
	Containers []ContainerUsage // those running
}

// cpuSamples keeps the last CPU sample of each cgroup, for rates.
type cpuSamples struct {
	mu   sync.Mutex
	last map[string]Usage
}

// Stats samples the cgroups of instance id and of its running containers.
func (r *Containerd) Stats(id string) (Stats, error) {
	in, ok := r.table.get(id)
	if !ok {
		return Stats{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	var st Stats
	var err error
	if st.Usage, err = r.samples.usage(instanceCgroupPath(id)); err != nil {
		return Stats{}, err
	}
	for _, c := range in.status().Containers {
		if c.State != StateRunning {
			continue
		}
		u, err := r.samples.usage(containerCgroup(id, c.Name))
		if err != nil {
			continue // ended meanwhile
		}
		st.Containers = append(st.Containers, ContainerUsage{Name: c.Name, StartedAt: c.StartedAt, Usage: u})
	}
	return st, nil
}

// usage samples one cgroup.
func (s *cpuSamples) usage(path string) (Usage, error) {
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if err != nil {
		return Usage{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	m, err := cg.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return Usage{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	u := Usage{Time: time.Now()}
	if m.CPU != nil && m.CPU.Usage != nil {
		u.UsageCoreNanoSeconds = m.CPU.Usage.Total
	}
	if mem := m.Memory; mem != nil {
		if mem.Usage != nil {
			u.MemoryUsageBytes = mem.Usage.Usage
		}
		u.RSSBytes = mem.TotalRSS
		if u.MemoryUsageBytes > mem.TotalInactiveFile {
			u.WorkingSetBytes = u.MemoryUsageBytes - mem.TotalInactiveFile
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]Usage{}
	}
	if prev, ok := s.last[path]; ok && u.Time.After(prev.Time) && u.UsageCoreNanoSeconds >= prev.UsageCoreNanoSeconds {
		u.UsageNanoCores = uint64(float64(u.UsageCoreNanoSeconds-prev.UsageCoreNanoSeconds) / u.Time.Sub(prev.Time).Seconds())
	}
	s.last[path] = u
	return u, nil
}

// forget drops the samples of the cgroups under prefix (a removed
// instance's).
func (s *cpuSamples) forget(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for path := range s.last {
		if strings.HasPrefix(path, prefix) {
			delete(s.last, path)
		}
	}
}
