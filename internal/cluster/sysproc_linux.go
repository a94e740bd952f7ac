package cluster

import "syscall"

// sysProcAttr puts each component in its own process group (so a stop reaches
// anything it forks) and asks the kernel to SIGKILL it when we die, even by
// SIGKILL, so a crashed parent leaves no control plane behind.
//
// Pdeathsig fires when the OS thread that forked the child exits, not the
// process; Go only retires threads that a goroutine locked and never unlocked,
// and this package locks none.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
