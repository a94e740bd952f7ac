// Package forker starts child processes from one OS thread that lives as
// long as the process.
//
// On Linux a child's parent-death signal (SysProcAttr.Pdeathsig) fires when
// the thread that forked it exits, not when the process does. Go retires a
// thread when a goroutine that locked it exits still locked (as code that
// enters a namespace on a thread does), and a child forked on any thread
// the scheduler hands out could then be killed at a random moment while we
// live on. Start forks on a thread locked by a goroutine that never ends, so
// Pdeathsig means what it says: the child dies with the process.
package forker

import "os/exec"

// Start starts cmd as cmd.Start does, forked from the forker's thread.
// Wait for it from anywhere.
func Start(cmd *exec.Cmd) error { return start(cmd) }
