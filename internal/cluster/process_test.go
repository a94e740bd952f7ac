package cluster

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestComponentSurvivesRetiredThreads forks a component as Start does, from a
// goroutine that then exits locked to its thread, and retires hundreds of
// other OS threads the same way, as code that enters a namespace on a locked
// thread does. A child whose Pdeathsig was tied to one of those threads would
// be SIGKILLed: issue 19's controller-manager, killed seconds after the first
// pods started.
func TestComponentSurvivesRetiredThreads(t *testing.T) {
	// Go never ends the main thread (it parks it instead), so a fork from it
	// would survive anyway: keep this goroutine on its thread, and fork from
	// a goroutine on another one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir, logDir := t.TempDir(), t.TempDir()
	var comp *component
	var err error
	for comp == nil && err == nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if unix.Gettid() == unix.Getpid() {
				return // on the main thread: try again
			}
			runtime.LockOSThread() // and never unlocked: the thread ends with us
			comp, err = startComponent("sleep", "/bin/sleep", []string{"600"}, dir, logDir)
		}()
		<-done
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Kill(-comp.pid(), unix.SIGKILL)
		<-comp.done
	})
	const threads = 500
	for i := 0; i < threads; i++ {
		retireThread()
		if comp.exited() {
			t.Fatalf("the component died after its forking thread and %d others were retired: %v", i+1, comp.err)
		}
	}
	// Pdeathsig is delivered asynchronously to the thread's exit: give the
	// last ones a moment to land before the final look.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-comp.done:
			t.Fatalf("the component died after %d retired threads: %v", threads, comp.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// retireThread runs a goroutine that locks its thread and exits without
// unlocking it, so Go ends the thread. Started and awaited from here, the
// goroutine usually runs on this goroutine's own thread.
func retireThread() {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(done)
	}()
	<-done
}
