package cluster

import "syscall"

// sysProcAttr puts each component in its own process group (so a stop reaches
// anything it forks) and asks the kernel to SIGKILL it when we die, even by
// SIGKILL, so a crashed parent leaves no control plane behind.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process; Go retires a thread whose goroutine exits while locked to it (as
// the runtime's namespace code may), so startComponent forks through
// internal/forker, whose thread lives as long as the process.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
