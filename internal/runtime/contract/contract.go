// Package contract holds the tests every implementation of runtime.Runtime
// passes (containerd's and the model), so that the service can rely on the
// same behaviour whatever runs its containers.
package contract

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/spoteci/spoteci/internal/runtime"
)

// Behaviour is what a contract test asks every container of an instance to
// do; each runtime turns it into an instance of its own (a shell script on
// containerd, annotations on the model).
type Behaviour struct {
	Log      string        // a line printed as each run starts
	RunFor   time.Duration // how long a run lasts; 0: until stopped
	ExitCode int           // the code a run ends with
}

// Subject is a runtime under the contract.
type Subject struct {
	// New returns a fresh runtime, cleaned up at the end of the test.
	New func(t *testing.T) runtime.Runtime
	// Instance makes instance id with one container, main, that behaves
	// as b says, restarting as policy says.
	Instance func(id string, b Behaviour, policy runtime.RestartPolicy) runtime.Instance
}

// Run runs the tests every implementation of runtime.Runtime passes:
// the behaviour the service relies on, whatever runs the containers.
func Run(t *testing.T, s Subject) {
	t.Run("RunsLogsAndExits", func(t *testing.T) {
		r := s.New(t)
		start(t, r, s.Instance("exits", Behaviour{Log: "hello", RunFor: time.Second, ExitCode: 3}, runtime.RestartNever))
		if err := r.Start(context.Background(), s.Instance("exits", Behaviour{}, runtime.RestartNever)); err != nil {
			t.Errorf("a second Start of the same id: %v, want nil (idempotent)", err)
		}
		follow, err := r.Log("exits", "main", runtime.LogOptions{Tail: -1, Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		defer follow.Close()
		c := waitState(t, r, "exits", runtime.StateTerminated)
		if c.ExitCode != 3 || c.Reason != runtime.ReasonError || c.FinishedAt.Before(c.StartedAt) || c.StartedAt.IsZero() {
			t.Errorf("ended container = %+v, want exit 3, Error, started before finished", c)
		}
		waitExit(t, r, "exits")
		got, err := io.ReadAll(follow) // ends with the container
		if err != nil || string(got) != "hello\n" {
			t.Errorf("followed log = %q, %v; want %q", got, err, "hello\n")
		}
		st, _ := r.Status("exits")
		if !slices.Contains(reasons(st), "Started") {
			t.Errorf("events %v, want Started", reasons(st))
		}
	})

	t.Run("RunsUntilStopped", func(t *testing.T) {
		r := s.New(t)
		start(t, r, s.Instance("long", Behaviour{Log: "up"}, runtime.RestartAlways))
		waitState(t, r, "long", runtime.StateRunning)
		if st, _ := r.Status("long"); st.IP == "" {
			t.Error("a running instance has no IP")
		}
		var out strings.Builder
		code, err := r.Exec(context.Background(), "long", "main", []string{"echo", "hi", "there"}, runtime.ExecIO{Stdout: nopCloser{&out}, Stderr: nopCloser{io.Discard}})
		if err != nil || code != 0 || out.String() != "hi there\n" {
			t.Errorf("exec echo = %d %q %v, want 0 %q", code, out.String(), err, "hi there\n")
		}
		if code, _ := r.Exec(context.Background(), "long", "main", []string{"false"}, runtime.ExecIO{}); code != 1 {
			t.Errorf("exec false = %d, want 1", code)
		}
		if _, err := r.Stats("long"); err != nil {
			t.Errorf("stats: %v", err)
		}
		if err := r.Stop(context.Background(), "long", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		c := waitState(t, r, "long", runtime.StateTerminated)
		if c.ExitCode == 0 || c.RestartCount != 0 {
			t.Errorf("stopped container = %+v, want a non-zero exit and no restart (Stop wins over Always)", c)
		}
		waitExit(t, r, "long")
		if _, err := r.Exec(context.Background(), "long", "main", []string{"true"}, runtime.ExecIO{}); !errors.Is(err, runtime.ErrNotRunning) {
			t.Errorf("exec in an ended container: %v, want ErrNotRunning", err)
		}
		if err := r.Stop(context.Background(), "long", 0); err != nil {
			t.Errorf("a second Stop: %v", err)
		}
		if err := r.Remove(context.Background(), "long"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Status("long"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("status after Remove: %v, want ErrNotFound", err)
		}
		if err := r.Remove(context.Background(), "long"); err != nil {
			t.Errorf("a second Remove: %v", err)
		}
	})

	t.Run("RestartsOnFailure", func(t *testing.T) {
		r := s.New(t)
		start(t, r, s.Instance("crashes", Behaviour{Log: "try", RunFor: 300 * time.Millisecond, ExitCode: 2}, runtime.RestartOnFailure))
		c := waitContainer(t, r, "crashes", "restarted twice", func(c runtime.ContainerStatus) bool { return c.RestartCount >= 2 })
		if c.LastTerminated == nil || c.LastTerminated.ExitCode != 2 {
			t.Errorf("LastTerminated = %+v, want exit 2", c.LastTerminated)
		}
		prev, err := r.Log("crashes", "main", runtime.LogOptions{Tail: -1, Previous: true})
		if err != nil {
			t.Fatal(err)
		}
		defer prev.Close()
		if got, _ := io.ReadAll(prev); string(got) != "try\n" {
			t.Errorf("previous log = %q, want %q", got, "try\n")
		}
	})

	t.Run("RestartInPlace", func(t *testing.T) {
		r := s.New(t)
		start(t, r, s.Instance("again", Behaviour{}, runtime.RestartNever))
		before := waitState(t, r, "again", runtime.StateRunning)
		if err := r.Restart(context.Background(), "again", time.Second); err != nil {
			t.Fatal(err)
		}
		c := waitContainer(t, r, "again", "running again after Restart", func(c runtime.ContainerStatus) bool {
			return c.RestartCount == 1 && c.State == runtime.StateRunning
		})
		if c.LastTerminated == nil || !c.StartedAt.After(before.StartedAt) {
			t.Errorf("restarted container = %+v, want the run before kept and a new start", c)
		}
		if err := r.Restart(context.Background(), "nobody", 0); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Restart of an unknown id: %v, want ErrNotFound", err)
		}
	})

	t.Run("RefusesBadNames", func(t *testing.T) {
		r := s.New(t)
		if err := r.Start(context.Background(), s.Instance("../x", Behaviour{}, runtime.RestartNever)); !errors.Is(err, runtime.ErrInvalidName) {
			t.Errorf("Start ../x: %v, want ErrInvalidName", err)
		}
		if _, err := r.Status("../x"); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("Status of a refused instance: %v, want ErrNotFound", err)
		}
	})
}

func start(t *testing.T, r runtime.Runtime, in runtime.Instance) {
	t.Helper()
	if in.Hostname == "" {
		in.Hostname = in.ID
	}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// waitState waits until the container of id is in state.
func waitState(t *testing.T, r runtime.Runtime, id string, state runtime.State) runtime.ContainerStatus {
	t.Helper()
	return waitContainer(t, r, id, string(state), func(c runtime.ContainerStatus) bool { return c.State == state })
}

// waitContainer polls the container of id until done says so, for a
// minute at most, and returns its status then; what says what it waits for.
func waitContainer(t *testing.T, r runtime.Runtime, id, what string, done func(runtime.ContainerStatus) bool) runtime.ContainerStatus {
	t.Helper()
	var st runtime.Status
	err := poll(func() (bool, error) {
		var err error
		if st, err = r.Status(id); err != nil {
			return false, err
		}
		return done(st.Containers[0]), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s %s: %v; last status %+v", id, what, err, st)
	}
	return st.Containers[0]
}

// waitExit waits until Exits reports id.
func waitExit(t *testing.T, r runtime.Runtime, id string) {
	t.Helper()
	err := poll(func() (bool, error) {
		ids, err := r.Exits()
		return slices.Contains(ids, id), err
	})
	if err != nil {
		t.Fatalf("waiting for Exits to report %s: %v", id, err)
	}
}

// poll asks cond every 20 ms, for a minute at most, until it holds.
func poll(cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond() })
}

func reasons(st runtime.Status) []string {
	var out []string
	for _, e := range st.Events {
		out = append(out, e.Reason)
	}
	return out
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
