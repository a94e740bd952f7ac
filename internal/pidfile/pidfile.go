// Package pidfile reads the pid files that spoteci's long-lived processes
// (spoteci up or server, its containerd) leave in a state folder, so that
// a later command finds the live process, not a pid reused by another.
package pidfile

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Live returns the pid recorded in path if that process runs (not a zombie)
// and its command line contains mark.
func Live(path, mark string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), mark) || Zombie(pid) {
		return 0, false
	}
	return pid, true
}

// Zombie reports whether pid has exited but not been reaped yet.
func Zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}
