package procstat

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSelf: this process's CPU time grows as it spins, and counts in the
// machine's busy time and in a Sum that matches it.
func TestSelf(t *testing.T) {
	comm, before, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy0, total0, err := Machine()
	if err != nil {
		t.Fatal(err)
	}
	// Spin for 200 ms of CPU as the kernel's rusage counts it, not of wall
	// time: on a loaded machine the spinning gets a fraction of a core.
	spun0 := selfCPU(t)
	for deadline := time.Now().Add(30 * time.Second); selfCPU(t)-spun0 < 200*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatal("no 200 ms of CPU in 30 s")
		}
	}
	_, after, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy1, total1, _ := Machine()
	if after-before < 150*time.Millisecond { // ticks of 10 ms, read at different moments
		t.Errorf("200 ms of CPU spinning counted %s", after-before)
	}
	if busy1-busy0 < 100*time.Millisecond || total1-total0 < busy1-busy0 {
		t.Errorf("machine: busy %s of %s", busy1-busy0, total1-total0)
	}
	if sum := Sum(func(c string) bool { return c == comm }); sum < after {
		t.Errorf("Sum over %q = %s, less than this process's %s", comm, sum, after)
	}
}

// selfCPU is this process's CPU time (user and system) from getrusage.
func selfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
