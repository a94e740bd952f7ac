package forker

import (
	"os/exec"
	"runtime"
	"sync"
)

type request struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	once     sync.Once
	requests = make(chan request)
)

// loop runs for the life of the process on a thread that only it uses: a
// locked goroutine that never returns keeps its thread forever.
func loop() {
	runtime.LockOSThread()
	for r := range requests {
		r.done <- r.cmd.Start()
	}
}

func start(cmd *exec.Cmd) error {
	once.Do(func() { go loop() })
	done := make(chan error, 1)
	requests <- request{cmd: cmd, done: done}
	return <-done
}
