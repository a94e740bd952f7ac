// Package procstat reads CPU time from /proc, the machine's and its
// processes', for benchmarks that say where the CPU went. It reads /proc
// through prometheus/procfs.
package procstat

import (
	"math"
	"time"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// seconds is a time procfs gives in seconds (ticks divided by USER_HZ),
// back to whole ticks.
func seconds(s float64) time.Duration { return ticks(int64(math.Round(s * userHZ))) }

// Machine returns the CPU time all the cores have been busy since boot,
// and the time they have had in all: the first line of /proc/stat, where
// busy is user, nice, system, irq, softirq and steal (guest time is already
// in user), and idle and I/O wait count only in the total.
func Machine() (busy, total time.Duration, err error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, err
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, 0, err
	}
	c := st.CPUTotal
	busy = seconds(c.User) + seconds(c.Nice) + seconds(c.System) + seconds(c.IRQ) + seconds(c.SoftIRQ) + seconds(c.Steal)
	return busy, busy + seconds(c.Idle) + seconds(c.Iowait), nil
}

// Process returns the command name of process pid and the CPU time (user
// and system) it has used.
func Process(pid int) (comm string, cpu time.Duration, err error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return "", 0, err
	}
	st, err := p.Stat()
	if err != nil {
		return "", 0, err
	}
	return st.Comm, ticks(int64(st.UTime + st.STime)), nil
}

// Sum is the CPU time used by the running processes whose command name
// matches.
func Sum(match func(comm string) bool) time.Duration {
	procs, _ := procfs.AllProcs()
	var sum time.Duration
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && match(st.Comm) {
			sum += ticks(int64(st.UTime + st.STime))
		}
	}
	return sum
}
