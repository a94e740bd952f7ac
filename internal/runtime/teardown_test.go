package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestLaunchCount(t *testing.T) {
	l := newLaunchCount()
	closed := func() bool {
		select {
		case <-l.idle():
			return true
		default:
			return false
		}
	}
	if !closed() {
		t.Fatal("idle with no launch: not closed")
	}
	l.add(2)
	waiting := l.idle()
	l.add(-1)
	if closed() {
		t.Fatal("idle with a launch left: closed")
	}
	l.add(-1)
	select {
	case <-waiting:
	default:
		t.Fatal("the channel taken while launches ran was not closed when they ended")
	}
	l.add(1)
	if closed() {
		t.Fatal("idle after a new launch: closed")
	}
}

// TestTeardownAfterLaunches: an ended instance keeps its sandbox while a
// launch waits, and frees it once none does, or after the deferral.
func TestTeardownAfterLaunches(t *testing.T) {
	r := newRuntime(t)
	freed := func(cid string) bool {
		_, err := r.client.LoadContainer(r.ctx, cid)
		return errdefs.IsNotFound(err)
	}
	r.launcher.launches.add(1) // a launch that waits
	start(t, r, Instance{ID: "done", Containers: []Container{busybox("main", `exit 0`)}})
	waitState(t, r, "done", "main", StateTerminated)
	time.Sleep(500 * time.Millisecond)
	if freed("done.0") || !r.net.netns.holds("done") {
		t.Fatal("the sandbox was freed while a launch waited")
	}
	r.launcher.launches.add(-1)
	waitFor(t, 10*time.Second, "the sandbox freed once no launch waits", func() bool {
		return freed("done.0") && !r.net.netns.holds("done")
	})

	// A machine that never stops launching frees sandboxes all the same.
	r = openRuntimeWith(t, t.TempDir(), func(c *Config) { c.TeardownDeferral = time.Second })
	r.launcher.launches.add(1)
	defer r.launcher.launches.add(-1)
	start(t, r, Instance{ID: "late", Containers: []Container{busybox("main", `exit 0`)}})
	waitState(t, r, "late", "main", StateTerminated)
	waitFor(t, 10*time.Second, "the sandbox freed after the deferral", func() bool { return freed("late.0") })
	if err := r.Remove(context.Background(), "late"); err != nil {
		t.Fatal(err)
	}
}
