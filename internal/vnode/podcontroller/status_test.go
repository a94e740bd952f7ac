package podcontroller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

var wall0 = time.Date(2026, 4, 8, 8, 0, 0, 0, time.UTC)

func testPod() *corev1.Pod {
	return &corev1.Pod{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pi", Image: "perl"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			// Written by someone else (the Eviction API): must survive our writes.
			{Type: "example.com/Custom", Status: corev1.ConditionTrue, Reason: "Theirs"},
		}},
	}
}

func condition(st corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func TestRunningThenBidFailed(t *testing.T) {
	pod := testPod()
	started := wall0.Add(-30 * time.Second)
	g := &provider.Instance{ID: "eci-1", Status: provider.StatusRunning, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerRunning, Started: started}}}}
	st := podStatus(pod, g)
	if st.Phase != corev1.PodRunning || !st.ContainerStatuses[0].Ready || st.ContainerStatuses[0].ContainerID != "eci://eci-1/pi" {
		t.Fatalf("running group: phase %s, container %+v", st.Phase, st.ContainerStatuses[0])
	}
	if got := st.ContainerStatuses[0].State.Running.StartedAt.Time; !got.Equal(wall0.Add(-30 * time.Second)) {
		t.Errorf("started at %v, want %v", got, started)
	}
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("Ready %+v", c)
	}

	// The notice: the condition appears, the pod still runs.
	pod.Status = st
	g.NoticeTime, g.ReleaseTime = wall0.Add(time.Minute), wall0.Add(65*time.Second)
	st = podStatus(pod, g)
	if c := condition(st, ConditionInstanceExpired); c == nil || c.Status != corev1.ConditionTrue || st.Phase != corev1.PodRunning {
		t.Fatalf("at the notice: phase %s, ContainerInstanceExpired %+v", st.Phase, c)
	}

	// The release: Failed, BidFailed, the guide's message and DisruptionTarget
	// in the same status; its containers stopped, none ready.
	pod.Status = st
	g.Status = provider.StatusExpired
	st = podStatus(pod, g)
	releasedWall := wall0.Add(65 * time.Second)
	if st.Phase != corev1.PodFailed || st.Reason != eciapi.ReasonBidFailed ||
		st.Message != "The pod is a spot instance, and has been released at "+releasedWall.Format("2006-01-02T15:04Z") {
		t.Fatalf("released: %s %s %q", st.Phase, st.Reason, st.Message)
	}
	if c := condition(st, corev1.DisruptionTarget); c == nil || c.Status != corev1.ConditionTrue || c.Reason != eciapi.ReasonBidFailed {
		t.Fatalf("DisruptionTarget %+v", c)
	}
	if cs := st.ContainerStatuses[0]; cs.Ready || cs.State.Terminated == nil || cs.State.Terminated.Reason != eciapi.ReasonBidFailed ||
		!cs.State.Terminated.StartedAt.Equal(&pod.Status.ContainerStatuses[0].State.Running.StartedAt) {
		t.Errorf("a released instance's container is not stopped and unready: %+v", cs)
	}
	if c := condition(st, "example.com/Custom"); c == nil || c.Reason != "Theirs" {
		t.Errorf("a condition written by someone else was dropped: %+v", st.Conditions)
	}
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Ready after the release %+v", c)
	}
}

func TestTerminatedPhases(t *testing.T) {
	for _, c := range []struct {
		exit   int
		reason string
		want   corev1.PodPhase
	}{{0, "Completed", corev1.PodSucceeded}, {3, "Error", corev1.PodFailed}, {127, "StartError", corev1.PodFailed}} {
		start, end := wall0, wall0.Add(time.Second)
		g := &provider.Instance{ID: "eci-2", Created: start, Containers: []provider.ContainerStatus{{Name: "pi",
			State: provider.ContainerState{State: provider.ContainerTerminated, ExitCode: c.exit, Reason: c.reason, Started: start, Finished: end}}}}
		st := podStatus(testPod(), g)
		term := st.ContainerStatuses[0].State.Terminated
		if st.Phase != c.want || term == nil || term.ExitCode != int32(c.exit) || !term.FinishedAt.Time.Equal(wall0.Add(time.Second)) {
			t.Errorf("exit %d: phase %s, terminated %+v", c.exit, st.Phase, term)
		}
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	then := metav1.NewTime(wall0)
	st := corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: then}}}
	setCondition(&st, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(wall0.Add(time.Hour))})
	if !st.Conditions[0].LastTransitionTime.Equal(&then) {
		t.Errorf("an unchanged condition moved its transition time to %v", st.Conditions[0].LastTransitionTime)
	}
}

// A deleted pod's last status is terminal, whatever its instance last said,
// so that a Job's tracking finalizer lets it go.
func TestTerminalStatus(t *testing.T) {
	started := wall0.Add(-time.Minute)
	running := &provider.Instance{ID: "eci-1", Status: provider.StatusRunning, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerRunning, Started: started}}}}
	pod := testPod()
	pod.Status = podStatus(pod, running)
	st := terminalStatus(pod, running, wall0)
	cs := st.ContainerStatuses[0]
	if st.Phase != corev1.PodFailed || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 137 || !cs.State.Terminated.StartedAt.Time.Equal(started) || cs.Ready {
		t.Errorf("a running pod deleted: phase %s, container %+v", st.Phase, cs)
	}
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Ready %+v, want False", c)
	}
	if condition(st, "example.com/Custom") == nil {
		t.Error("someone else's condition was dropped")
	}

	done := &provider.Instance{ID: "eci-2", Status: provider.StatusDeleted, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerTerminated, ExitCode: 0, Started: started, Finished: wall0}}}}
	if st := terminalStatus(testPod(), done, wall0); st.Phase != corev1.PodSucceeded {
		t.Errorf("containers that exited 0: phase %s, want Succeeded", st.Phase)
	}
	if st := terminalStatus(testPod(), nil, wall0); st.Phase != corev1.PodFailed {
		t.Errorf("no instance, no container: phase %s, want Failed", st.Phase)
	}
	released := &provider.Instance{ID: "eci-3", Status: provider.StatusExpired, Created: started, ReleaseTime: wall0}
	if st := terminalStatus(pod, released, wall0); st.Phase != corev1.PodFailed || st.Reason != eciapi.ReasonBidFailed {
		t.Errorf("released: phase %s reason %s, want Failed BidFailed", st.Phase, st.Reason)
	}
}

// A pod whose instance vanished fails with no container running or ready.
func TestVanishedStatus(t *testing.T) {
	started := wall0.Add(-time.Minute)
	running := &provider.Instance{ID: "eci-1", Status: provider.StatusRunning, Created: started,
		Containers: []provider.ContainerStatus{{Name: "pi", State: provider.ContainerState{State: provider.ContainerRunning, Started: started}}}}
	pod := testPod()
	pod.Status = podStatus(pod, running)
	st := vanishedStatus(pod, wall0)
	cs := st.ContainerStatuses[0]
	if st.Phase != corev1.PodFailed || st.Reason != ReasonInstanceVanished || cs.Ready || cs.State.Running != nil || cs.State.Terminated == nil {
		t.Errorf("vanished: phase %s reason %s, container %+v", st.Phase, st.Reason, cs)
	}
	if c := condition(st, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Ready %+v, want False", c)
	}
}
