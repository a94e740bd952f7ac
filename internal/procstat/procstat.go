// Package procstat reads CPU time from /proc, the machine's and its
// processes', for benchmarks that say where the CPU went.
package procstat

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const userHZ = 100

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// Machine returns the CPU time all the cores have been busy since boot,
// and the time they have had in all: the first line of /proc/stat, where
// busy is user, nice, system, irq, softirq and steal (guest time is already
// in user), and idle and I/O wait count only in the total.
func Machine() (busy, total time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("procstat: unexpected /proc/stat line %q", line)
	}
	var b, t int64
	for i := 1; i <= 8; i++ { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		t += v
		if i != 4 && i != 5 {
			b += v
		}
	}
	return ticks(b), ticks(t), nil
}

// Process returns the command name of process pid and the CPU time (user
// and system) it has used.
func Process(pid int) (comm string, cpu time.Duration, err error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, err
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, fmt.Errorf("procstat: unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return "", 0, fmt.Errorf("procstat: unexpected /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return s[open+1 : end], ticks(utime + stime), nil
}

// Sum is the CPU time used by the running processes whose command name
// matches.
func Sum(match func(comm string) bool) time.Duration {
	entries, _ := os.ReadDir("/proc")
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, cpu, err := Process(pid); err == nil && match(comm) {
			sum += cpu
		}
	}
	return sum
}
