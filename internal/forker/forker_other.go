//go:build !linux

package forker

import "os/exec"

// Elsewhere there is no Pdeathsig, and no thread to tie a child to.
func start(cmd *exec.Cmd) error { return cmd.Start() }
