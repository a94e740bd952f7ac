package model

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/contract"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func open(t *testing.T, cfg Config) *Runtime {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func annotations(b contract.Behaviour) map[string]string {
	a := map[string]string{}
	if b.Log != "" {
		a[eciapi.ModelLog] = b.Log
	}
	if b.RunFor > 0 {
		a[eciapi.ModelRunFor] = b.RunFor.String()
		a[eciapi.ModelExitCode] = fmt.Sprint(b.ExitCode)
	}
	return a
}

// TestContract runs the runtime's contract, which containerd passes too.
func TestContract(t *testing.T) {
	contract.Run(t, contract.Subject{
		New: func(t *testing.T) runtime.Runtime { return open(t, Config{RestartBackoff: 100 * time.Millisecond}) },
		Instance: func(id string, b contract.Behaviour, policy runtime.RestartPolicy) runtime.Instance {
			return runtime.Instance{ID: id, RestartPolicy: policy, Annotations: annotations(b),
				Containers: []runtime.Container{{Name: "main", Image: "busybox"}}}
		},
	})
}

func status(t *testing.T, r *Runtime, id string) runtime.Status {
	t.Helper()
	st, err := r.Status(id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTimeline follows one crash-looping instance on a fake clock: each
// run, the kubelet's doubling back-off, and the end once stopped.
func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	r := open(t, Config{Clock: clk})
	in := runtime.Instance{ID: "g", Hostname: "pod", RestartPolicy: runtime.RestartAlways,
		Annotations: map[string]string{eciapi.ModelRunFor: "1m", eciapi.ModelExitCode: "1"},
		Containers:  []runtime.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}}}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := r.Changed(); len(got) != 1 || got[0] != "g" {
		t.Errorf("Changed after Start = %v, want [g]", got)
	}
	clk.SetTime(t0.Add(30 * time.Second))
	status(t, r, "g")
	if got := r.Changed(); len(got) != 0 {
		t.Errorf("Changed while nothing happened = %v, want none", got)
	}
	// Runs of 1 minute, then back-offs of 10 s, 20 s, 40 s: starts at
	// 0, 70 s, 150 s, 250 s.
	for _, tc := range []struct {
		at       time.Duration
		state    runtime.State
		restarts int
	}{
		{59 * time.Second, runtime.StateRunning, 0},
		{60 * time.Second, runtime.StateWaiting, 1},
		{70 * time.Second, runtime.StateRunning, 1},
		{130 * time.Second, runtime.StateWaiting, 2},
		{149 * time.Second, runtime.StateWaiting, 2},
		{150 * time.Second, runtime.StateRunning, 2},
		{250 * time.Second, runtime.StateRunning, 3},
	} {
		clk.SetTime(t0.Add(tc.at))
		for _, c := range status(t, r, "g").Containers {
			if c.State != tc.state || c.RestartCount != tc.restarts {
				t.Fatalf("at %s: %s is %s with %d restarts (%s), want %s with %d", tc.at, c.Name, c.State, c.RestartCount, c.Message, tc.state, tc.restarts)
			}
		}
	}
	if ids, _ := r.Exits(); len(ids) != 0 {
		t.Errorf("Exits = %v while it runs", ids)
	}
	if got := r.Changed(); len(got) != 1 {
		t.Errorf("Changed after runs ended and started = %v, want [g]", got)
	}
	clk.SetTime(t0.Add(260 * time.Second))
	r.Stop(context.Background(), "g", time.Second)
	for _, c := range status(t, r, "g").Containers {
		if c.State != runtime.StateTerminated || c.ExitCode != 143 || !c.FinishedAt.Equal(t0.Add(260*time.Second)) {
			t.Errorf("stopped %s = %+v, want Terminated 143 at 260 s", c.Name, c)
		}
	}
	if ids, _ := r.Exits(); len(ids) != 1 || ids[0] != "g" {
		t.Errorf("Exits = %v, want [g]", ids)
	}
	clk.SetTime(t0.Add(time.Hour))
	if c := status(t, r, "g").Containers[0]; c.State != runtime.StateTerminated || c.RestartCount != 3 {
		t.Errorf("an hour after Stop: %+v, want still ended, no more restarts", c)
	}
}

// TestExitWithoutAsking: the timer reports an end in Exits although nobody
// reads the instance's status.
func TestExitWithoutAsking(t *testing.T) {
	r := open(t, Config{})
	in := runtime.Instance{ID: "short", Annotations: map[string]string{eciapi.ModelRunFor: "50ms"},
		Containers: []runtime.Container{{Name: "main", Image: "busybox"}}}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ids, _ := r.Exits(); len(ids) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no exit reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBadAnnotation: the containers do not start, and say which annotation
// and value, as a kubelet says of a configuration it cannot make.
func TestBadAnnotation(t *testing.T) {
	r := open(t, Config{})
	in := runtime.Instance{ID: "bad", Annotations: map[string]string{eciapi.ModelRunFor: "soon"},
		Containers: []runtime.Container{{Name: "main", Image: "busybox"}}}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	st := status(t, r, "bad")
	c := st.Containers[0]
	if c.State != runtime.StateWaiting || c.Reason != runtime.ReasonCreateConfigError ||
		!strings.Contains(c.Message, eciapi.ModelRunFor) || !strings.Contains(c.Message, `"soon"`) {
		t.Errorf("container = %+v, want Waiting CreateContainerConfigError naming %s and \"soon\"", c, eciapi.ModelRunFor)
	}
	if len(st.Events) != 1 || st.Events[0].Type != "Warning" || st.Events[0].Reason != "Failed" {
		t.Errorf("events = %+v, want one Warning Failed", st.Events)
	}
}

// TestReopen: a new runtime on the same folder (the service restarted, or
// killed) finds every instance as it would be had it run on, with the same
// address, and nothing removed comes back.
func TestReopen(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	dir := t.TempDir()
	r1, err := New(Config{Dir: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		in := runtime.Instance{ID: id, Annotations: map[string]string{eciapi.ModelRunFor: "10m", eciapi.ModelLog: "hi " + id},
			Containers: []runtime.Container{{Name: "main", Image: "busybox"}}}
		if err := r1.Start(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	before := status(t, r1, "b")
	clk.Step(time.Minute)
	r1.Stop(ctx, "a", 0)
	r1.Remove(ctx, "c")
	r1.Close() // as a kill: the journal is all that is left

	clk.Step(10 * time.Minute)
	r2 := open(t, Config{Dir: dir, Clock: clk})
	if c := status(t, r2, "a").Containers[0]; c.State != runtime.StateTerminated || c.ExitCode != 143 || !c.FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("a after reopen = %+v, want stopped at 1m", c)
	}
	b := status(t, r2, "b")
	if c := b.Containers[0]; c.State != runtime.StateTerminated || c.ExitCode != 0 || !c.FinishedAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("b after reopen = %+v, want ended on its own at 10m", c)
	}
	if b.IP != before.IP || len(b.Events) != len(before.Events) {
		t.Errorf("b reopened with IP %s and %d events, want %s and %d", b.IP, len(b.Events), before.IP, len(before.Events))
	}
	if _, err := r2.Status("c"); err == nil {
		t.Error("the removed instance came back")
	}
	if ids, _ := r2.Exits(); len(ids) != 2 {
		t.Errorf("first Exits after reopen = %v, want a and b", ids)
	}
	rc, err := r2.Log("b", "main", runtime.LogOptions{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 100)
	n, _ := rc.Read(buf)
	if string(buf[:n]) != "hi b\n" {
		t.Errorf("log after reopen = %q, want one line", buf[:n])
	}
}

// TestExecCommands: what exec answers from the model.
func TestExecCommands(t *testing.T) {
	r := open(t, Config{})
	in := runtime.Instance{ID: "x", Hostname: "web-0", Containers: []runtime.Container{{Name: "main", Image: "busybox", Env: []string{"A=1"}, IPEnv: []string{"POD_IP"}}}}
	if err := r.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	ip := status(t, r, "x").IP
	for _, tc := range []struct {
		cmd      []string
		code     int
		out, err string
	}{
		{[]string{"hostname"}, 0, "web-0\n", ""},
		{[]string{"env"}, 0, "A=1\nPOD_IP=" + ip + "\n", ""},
		{[]string{"sleep", "0.01"}, 0, "", ""},
		{[]string{"perl", "-e", "1"}, 127, "", "perl: command not found"},
	} {
		var out, errOut strings.Builder
		code, err := r.Exec(context.Background(), "x", "main", tc.cmd, runtime.ExecIO{Stdout: nop{&out}, Stderr: nop{&errOut}})
		if err != nil || code != tc.code || out.String() != tc.out || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("exec %v = %d %q %q %v; want %d %q %q", tc.cmd, code, out.String(), errOut.String(), err, tc.code, tc.out, tc.err)
		}
	}
}

type nop struct{ *strings.Builder }

func (nop) Close() error { return nil }
