package runtime

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Where the time of a launch goes: each phase of bringing an instance up is
// timed by the wall clock, summed over every launch of the runtime (the
// benchmarks report the means) and logged per launch at debug level.

// phase is one step of a launch.
type phase int

const (
	phaseImage     phase = iota // the images: present and unpacked, or pulled
	phaseCgroup                 // the instance's cgroup
	phaseVolumes                // its volumes
	phaseNetNS                  // its network namespace, made and pinned
	phaseCNI                    // ptp + static IPAM, and the host side's guard
	phaseEtc                    // /etc/hosts, hostname, resolv.conf
	phaseContainer              // the containerd container: image config, OCI spec, snapshot
	phaseTask                   // the task: FIFOs, the shim started, runc create
	phaseStart                  // runc start
	nPhases
)

var phaseNames = [nPhases]string{"image", "cgroup", "volumes", "netns", "cni", "etc", "container", "task", "start"}

// phaseTimes sums the phases of every launch.
type phaseTimes struct {
	sum      [nPhases]atomic.Int64 // nanoseconds
	count    [nPhases]atomic.Int64
	launches atomic.Int64
}

// means returns each phase's mean time per launch that went through it.
func (p *phaseTimes) means() map[string]time.Duration {
	out := map[string]time.Duration{}
	for i := range nPhases {
		if n := p.count[i].Load(); n > 0 {
			out[phaseNames[i]] = time.Duration(p.sum[i].Load() / n)
		}
	}
	return out
}

// launchClock times the phases of one launch: lap charges the time since
// the last lap to a phase.
type launchClock struct {
	at   time.Time
	d    [nPhases]time.Duration
	seen [nPhases]bool
}

func newLaunchClock() *launchClock { return &launchClock{at: time.Now()} }

// lap charges the time since the last lap (or the clock's start) to ph.
func (c *launchClock) lap(ph phase) {
	now := time.Now()
	c.d[ph] += now.Sub(c.at)
	c.seen[ph] = true
	c.at = now
}

// skip starts the next lap now, charging what passed to no phase.
func (c *launchClock) skip() { c.at = time.Now() }

// record adds the launch's phases to p and logs them at debug level.
func (c *launchClock) record(p *phaseTimes, log *slog.Logger, id string) {
	attrs := []any{"instance", id}
	timed := false
	for i := range nPhases {
		if !c.seen[i] {
			continue
		}
		timed = true
		p.sum[i].Add(int64(c.d[i]))
		p.count[i].Add(1)
		attrs = append(attrs, phaseNames[i], c.d[i].Round(10*time.Microsecond))
	}
	if !timed {
		return
	}
	p.launches.Add(1)
	log.Debug("launch phases", attrs...)
}

// reset forgets the launches so far (a benchmark's warm-up).
func (p *phaseTimes) reset() {
	for i := range nPhases {
		p.sum[i].Store(0)
		p.count[i].Store(0)
	}
	p.launches.Store(0)
}
