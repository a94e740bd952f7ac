package deadlines

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/deadline"
)

var start = time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)

// fixture is a started Job and a Decider whose clock the test moves.
type fixture struct {
	job *batchv1.Job
	now time.Time
	dc  *Decider
}

func newFixture(t *testing.T) *fixture {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "default", UID: "job-uid", CreationTimestamp: metav1.NewTime(start.Add(-time.Second))},
		Status: batchv1.JobStatus{StartTime: &metav1.Time{Time: start}}}
	f := &fixture{job: job, now: start}
	f.dc = New(Config{Kube: fake.NewClientset(job), Tick: 5 * time.Minute, Changeover: time.Minute, Now: func() time.Time { return f.now }})
	return f
}

// pod is a pod of the Job; index "" for a NonIndexed one.
func (f *fixture) pod(uid, index string) *corev1.Pod {
	ctl := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "report-" + uid, Namespace: "default", UID: types.UID(uid), Annotations: map[string]string{},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "report", UID: f.job.UID, Controller: &ctl}}}}
	if index != "" {
		p.Annotations[batchv1.JobCompletionIndexAnnotation] = index
	}
	return p
}

func decide(t *testing.T, f *fixture, pod *corev1.Pod, d *annotation.Deadline, run *Running, spot bool) Decision {
	t.Helper()
	asked := false
	dec, err := f.dc.Decide(context.Background(), pod, d, run, func() bool { asked = true; return spot })
	if err != nil {
		t.Fatal(err)
	}
	if run != nil && run.Mode == deadline.Spot && asked {
		t.Error("asked the cloud about spot while on spot")
	}
	return dec
}

// Uniform progress, live: spot when there is some; waiting while ahead of
// the uniform schedule; pay-as-you-go when behind it; every decision says
// its slack and deadline.
func TestDecideUniformProgress(t *testing.T) {
	f := newFixture(t)
	d := &annotation.Deadline{After: 6 * time.Hour, Work: 2 * time.Hour, Policy: deadline.PolicyUniformProgress}

	dec := decide(t, f, f.pod("a", ""), d, nil, true)
	if dec.Mode != deadline.Spot || !dec.Changed || !dec.Deadline.Equal(start.Add(6*time.Hour)) {
		t.Fatalf("at the start with spot: %+v", dec)
	}
	for _, want := range []string{"uniform-progress: spot", "slack 4h0m0s", "deadline 2026-12-08T04:00:00Z", "expected finish 2026-12-08T00:01:00Z"} {
		if !strings.Contains(dec.Message, want) {
			t.Errorf("message %q lacks %q", dec.Message, want)
		}
	}

	// Without spot, at the start, nothing is behind schedule: wait, and
	// look again when the schedule overtakes (the first tick).
	dec = decide(t, f, f.pod("b", ""), d, nil, false)
	if dec.Mode != deadline.Idle || !dec.Next.Equal(start.Add(5*time.Minute)) || !strings.Contains(dec.Message, "wait for spot") {
		t.Fatalf("at the start without spot: %+v", dec)
	}
	// An hour in, with no progress, it is behind: pay-as-you-go.
	f.now = start.Add(time.Hour)
	dec = decide(t, f, f.pod("b", ""), d, nil, false)
	if dec.Mode != deadline.OnDemand || !dec.Changed {
		t.Fatalf("an hour in without spot: %+v", dec)
	}
	// The same decision again is not news.
	if dec = decide(t, f, f.pod("b", ""), d, nil, false); dec.Changed {
		t.Errorf("the same decision again says Changed: %+v", dec)
	}
}

// The work of an index outlives its pods: the replacement of a reclaimed
// pod continues from the progress its index saved, with the same policy.
func TestDecideIndexKeepsProgress(t *testing.T) {
	f := newFixture(t)
	d := &annotation.Deadline{After: 3 * time.Hour, Work: 2 * time.Hour, Policy: deadline.PolicyUniformProgress, Checkpoints: true}

	first := f.pod("first", "0")
	decide(t, f, first, d, nil, true)
	f.now = start.Add(90 * time.Minute)
	saved := *d
	saved.Progress = 80 * time.Minute
	decide(t, f, first, &saved, &Running{Mode: deadline.Spot, Since: start}, true)

	// Reclaimed: the replacement's template says 0s, its index 80m. With
	// 1h30m left for 40m of work, uniform progress (ahead of schedule)
	// waits for spot.
	f.now = start.Add(95 * time.Minute)
	dec := decide(t, f, f.pod("second", "0"), d, nil, false)
	if dec.Mode != deadline.Idle || !strings.Contains(dec.Message, "work left 40m0s") {
		t.Fatalf("replacement of index 0: %+v", dec)
	}
	// Another index starts from nothing and is behind: pay-as-you-go.
	dec = decide(t, f, f.pod("other", "1"), d, nil, false)
	if dec.Mode != deadline.OnDemand || !strings.Contains(dec.Message, "work left 2h0m0s") {
		t.Fatalf("index 1: %+v", dec)
	}
	if f.dc.Due(f.pod("second", "0")).IsZero() {
		t.Error("no decision due for index 0")
	}
	f.dc.Forget(f.pod("second", "0"))
	if !f.dc.Due(f.pod("second", "0")).IsZero() {
		t.Error("index 0 remembered after Forget")
	}
}

// Without checkpoints a pod's progress is what its instance ran, after
// the changeover.
func TestDecideProgressOfRunningPod(t *testing.T) {
	f := newFixture(t)
	d := &annotation.Deadline{After: 3 * time.Hour, Work: 2 * time.Hour, Policy: deadline.PolicyGreedy}
	pod := f.pod("a", "")
	f.now = start.Add(31 * time.Minute)
	dec := decide(t, f, pod, d, &Running{Mode: deadline.Spot, Since: start}, true)
	if dec.Mode != deadline.Spot || !strings.Contains(dec.Message, "work left 1h30m0s") {
		t.Fatalf("running on spot: %+v", dec)
	}
}

// A Job not started as far as its status says is read again next time.
func TestDecideJobNotStarted(t *testing.T) {
	f := newFixture(t)
	f.job.Status.StartTime = nil
	f.dc = New(Config{Kube: fake.NewClientset(f.job), Now: func() time.Time { return f.now }})
	d := &annotation.Deadline{After: time.Hour, Work: 10 * time.Minute, Policy: deadline.PolicyGreedy}
	dec := decide(t, f, f.pod("a", ""), d, nil, true)
	if !dec.Deadline.Equal(f.job.CreationTimestamp.Add(time.Hour)) {
		t.Errorf("deadline %v, want an hour after the Job's creation", dec.Deadline)
	}
	if len(f.dc.jobs) != 0 {
		t.Error("kept the start of a Job that has none")
	}
}

// A pod that does not checkpoint is moved off spot while a reclaim would
// still leave time to do its work again; its protection period, on the
// market's clock, keeps it on spot until then.
func TestDecideSafetyMove(t *testing.T) {
	f := newFixture(t)
	d := &annotation.Deadline{After: 3 * time.Hour, Work: 2 * time.Hour, Policy: deadline.PolicyUniformProgress}
	pod := f.pod("a", "")
	// 2h10m left: a reclaim at the next tick leaves 2h05m for 2h of work
	// and two changeovers; at 2h05m left, it would not.
	f.now = start.Add(50 * time.Minute)
	run := &Running{Mode: deadline.Spot, Since: start.Add(45 * time.Minute)}
	if dec := decide(t, f, pod, d, run, true); dec.Mode != deadline.Spot {
		t.Fatalf("unprotected, with 2h10m left for 2h of work: %+v", dec)
	}
	f.now = start.Add(55 * time.Minute)
	if dec := decide(t, f, pod, d, run, true); dec.Mode != deadline.OnDemand || !strings.Contains(dec.Message, "pay-as-you-go") {
		t.Fatalf("unprotected, with 2h05m left for 2h of work: %+v", dec)
	}
	f = newFixture(t)
	f.now = start.Add(55 * time.Minute)
	run.Protection = 3 * time.Hour // covers the rest of the work
	if dec := decide(t, f, pod, d, run, true); dec.Mode != deadline.Spot {
		t.Fatalf("protected to the end: %+v", dec)
	}
}
