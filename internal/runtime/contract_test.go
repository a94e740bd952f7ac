package runtime

import (
	"fmt"
	"testing"
	"time"
)

// ContractRuntime is a containerd runtime of the tests for the contract
// (contract_ext_test.go), which cannot be imported by this package's tests.
func ContractRuntime(t *testing.T) *Containerd {
	return openRuntimeWith(t, t.TempDir(), func(c *Config) { c.RestartBackoff = 100 * time.Millisecond })
}

// ContractScript is a busybox container that prints line (if any), runs
// for runFor (0: until SIGTERM, on which it exits 143, as the model does)
// and exits with code.
func ContractScript(line string, runFor time.Duration, code int) Container {
	script := "trap 'exit 143' TERM; "
	if line != "" {
		script += "echo " + line + "; "
	}
	if runFor > 0 {
		script += fmt.Sprintf("sleep %g; exit %d", runFor.Seconds(), code)
	} else {
		script += "sleep 3600 & wait"
	}
	return busybox("main", script)
}
