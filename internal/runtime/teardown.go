package runtime

import (
	"sync"
	"time"
)

// An ended instance's sandbox (its containerd containers, tasks and shims,
// snapshots, network, cgroup) is freed after the launches waiting at the
// time, as a kubelet's garbage collector removes dead sandboxes in the
// background: a freed sandbox gives the launches nothing they need, and
// freeing one costs containerd, the shim, runc and the CNI plugins about
// as much CPU as a start. In a reclaim storm the 1,000 sandboxes of the
// evicted pods would otherwise be freed while their 1,000 replacements
// wait to start.

// teardownDeferral is the default Config.TeardownDeferral: how long a
// sandbox waits at most for the launches, so that a machine that never
// stops launching still frees what ended. It is longer than the starts of
// a 1,000-pod reclaim storm last on 2 cores (6 to 8 minutes): at 5 minutes,
// the deferred teardowns of the evicted pods began while the last 200
// replacements were starting, and halved their pace.
const teardownDeferral = 10 * time.Minute

// launchCount counts the launches queued or under way, and tells when there
// are none.
type launchCount struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed while n == 0
}

func newLaunchCount() *launchCount {
	none := make(chan struct{})
	close(none)
	return &launchCount{none: none}
}

// add counts d more launches (less, if negative).
func (l *launchCount) add(d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.n
	l.n += d
	switch {
	case was == 0 && l.n > 0:
		l.none = make(chan struct{})
	case was > 0 && l.n == 0:
		close(l.none)
	}
}

// idle is closed once no launch is queued or under way.
func (l *launchCount) idle() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.none
}

// tearDownLater frees the sandbox of an ended instance once no launch waits,
// or after cfg.TeardownDeferral, with at most cfg.Launchers teardowns at once.
func (s *sandboxes) tearDownLater(in *instance) {
	s.wg.Go(func() {
		deferral := time.NewTimer(s.cfg.TeardownDeferral)
		defer deferral.Stop()
		select {
		case <-s.launches.idle():
		case <-deferral.C:
		case <-s.ctx.Done():
			return // the next New frees it
		}
		select {
		case s.teardowns <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		defer func() { <-s.teardowns }()
		s.release(in)
	})
}
