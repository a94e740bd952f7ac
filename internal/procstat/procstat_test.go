package procstat

import (
	"os"
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
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
	}
	_, after, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy1, total1, _ := Machine()
	if after-before < 100*time.Millisecond {
		t.Errorf("200 ms of spinning counted %s", after-before)
	}
	if busy1-busy0 < 100*time.Millisecond || total1-total0 < busy1-busy0 {
		t.Errorf("machine: busy %s of %s", busy1-busy0, total1-total0)
	}
	if sum := Sum(func(c string) bool { return c == comm }); sum < after {
		t.Errorf("Sum over %q = %s, less than this process's %s", comm, sum, after)
	}
}
