//go:build linux

package runtime

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestProbeShimCost(t *testing.T) {
	h, _ := newHost(t)
	for _, env := range [][]string{nil, {"GOMAXPROCS=1"}, {"GOMAXPROCS=1", "GOGC=off"}} {
		n := 200
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &before)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("p%d-%d", len(env), i)
			os.WriteFile(h.specPath(id), []byte(`{"containers":[{"name":"main","command":["true"]}]}`), 0o644)
			fd := h.devNull.Fd()
			pid, err := syscall.ForkExec(h.shimPath, []string{h.shimPath, "shim", "--dir", h.dir, "--id", id, "--container", "main"},
				&syscall.ProcAttr{Dir: "/", Env: env, Files: []uintptr{fd, fd, fd}})
			if err != nil {
				t.Fatal(err)
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
		}
		wall := time.Since(t0)
		syscall.Getrusage(syscall.RUSAGE_CHILDREN, &after)
		cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / time.Duration(n)
		t.Logf("env %v: wall %v/shim, cpu (shim+true) %v/shim", env, wall/time.Duration(n), cpu)
	}
}
