//go:build unix && !linux

package cluster

import "syscall"

// Without Pdeathsig, a parent killed by SIGKILL leaves its children running;
// Stop still reaches the whole process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
