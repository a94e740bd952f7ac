// Package deadlines decides, live, what each pod of a deadline Job runs on:
// spot while it is safe, pay-as-you-go when the deadline needs it, or
// nothing yet (waiting for spot). The decision is internal/deadline's, the
// same code the simulator runs; this package gives it what it knows of a
// live pod (the Job's start, the time, the pod's progress, the mode of its
// instance) and asks the cloud, by a dry run, whether spot is available.
//
// The pod controller calls it at a pod's creation and, while the pod runs,
// when the decision it last made is due again; it applies the answer
// (create on spot or pay-as-you-go, wait, or move the pod by eviction) and
// says it in a DeadlinePolicy event. The node decides rather than the
// service: the node sees the Job, its start and its pods' progress; the
// service sees only instances.
package deadlines

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/deadline"
)

// Defaults of Config.
const (
	// DefaultTick is the market's check interval: a spot instance is only
	// reclaimed at one, so deciding more often changes nothing.
	DefaultTick = 5 * time.Minute
	// DefaultChangeover is what a (re)start on a new instance costs before
	// the work goes on: the instance's creation and the containers' start.
	DefaultChangeover = time.Minute
)

// Config configures a Decider.
type Config struct {
	Kube kubernetes.Interface
	// TimeScale is how much faster than wall time the market runs (0 or 1:
	// wall time): the tick, the changeover and the protection periods,
	// market durations, last that much less on the wall clock.
	TimeScale float64
	// Tick and Changeover are the decision's tick and changeover in market
	// time (DefaultTick, DefaultChangeover when zero).
	Tick, Changeover time.Duration
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// wall is market duration d on the wall clock.
func (c Config) wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / c.TimeScale)
}

// Decision is what a pod runs on next, and why.
type Decision struct {
	Mode deadline.Mode
	// Deadline is the Job's deadline, as a time.
	Deadline time.Time
	// Next is when the decision is due again.
	Next time.Time
	// Message says the decision and its reasons, for the event.
	Message string
	// Changed is true when the decision differs from the last one made
	// for the same work (the first one included).
	Changed bool
}

// A Decider keeps the policy of each deadline pod's work: the work of an
// index of an Indexed Job outlives its pods, as a simulated job outlives
// its instances; other pods' work is their own.
type Decider struct {
	cfg Config

	mu    sync.Mutex
	works map[string]*work
	jobs  map[types.UID]time.Time // the start of each Job seen
}

// work is one deadline job of internal/deadline: a policy and what it last
// decided.
type work struct {
	mu     sync.Mutex
	policy deadline.Policy
	state  deadline.State
	last   deadline.Mode
	next   time.Time // when the last decision is due again; zero before the first
	// saved is the most progress a pod of this work saved: a replacement
	// starts from it.
	saved time.Duration
}

// New returns a Decider of cfg.
func New(cfg Config) *Decider {
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.Changeover <= 0 {
		cfg.Changeover = DefaultChangeover
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	cfg.Tick, cfg.Changeover = cfg.wall(cfg.Tick), cfg.wall(cfg.Changeover)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Decider{cfg: cfg, works: map[string]*work{}, jobs: map[types.UID]time.Time{}}
}

// Running is what the pod's instance runs on, since when its work runs,
// and, on spot, its protection period (market time); nil for a pod
// without an instance.
type Running struct {
	Mode       deadline.Mode
	Since      time.Time
	Protection time.Duration
}

// Decide decides for pod, whose deadline annotations are d, now: at its
// creation (run nil) or while it runs. spotAvailable is asked only if the
// policy wants to know.
func (dc *Decider) Decide(ctx context.Context, pod *corev1.Pod, d *annotation.Deadline, run *Running, spotAvailable func() bool) (Decision, error) {
	start, err := dc.jobStart(ctx, pod)
	if err != nil {
		return Decision{}, err
	}
	by := d.By(start)
	// A pod that does not checkpoint starts over on each new instance.
	job := deadline.Job{Work: d.Work, Deadline: by.Sub(start), Changeover: dc.cfg.Changeover, LosesProgress: !d.Checkpoints}
	now := dc.cfg.Now()
	elapsed := now.Sub(start)
	mode := deadline.Idle
	if run != nil {
		mode = run.Mode
	}

	w, err := dc.work(pod, d.Policy)
	if err != nil {
		return Decision{}, err
	}
	// One decision at a time per work; the dry run it may make does not
	// hold up the others'.
	w.mu.Lock()
	defer w.mu.Unlock()
	// Progress: what the work saved, if its pods checkpoint; else what
	// this pod's instance has run, which a new instance loses.
	var done time.Duration
	switch {
	case d.Checkpoints:
		w.saved = max(w.saved, d.Progress)
		done = min(d.Work, w.saved)
	case run != nil:
		done = min(d.Work, max(0, now.Sub(run.Since)-dc.cfg.Changeover))
	}
	s := &w.state
	s.Job, s.Gap = job, dc.cfg.Tick
	s.Ask(max(0, elapsed), done, mode, spotAvailable)
	if run != nil && mode == deadline.Spot {
		s.Protected = max(0, run.Since.Add(dc.cfg.wall(run.Protection)).Sub(now))
	}
	want := w.policy.Decide(s)
	dec := Decision{Mode: want, Deadline: by, Changed: w.next.IsZero() || w.last != want}
	w.last = want

	// As the simulator's runner: the decision holds, in the mode it puts
	// in force, until the tick the policy names.
	next := s.Tick + 1
	if h, ok := w.policy.(deadline.Holder); ok {
		s.Mode = want
		next = h.Hold(s)
	}
	dec.Next = now.Add(dc.cfg.Tick)
	if next < math.MaxInt {
		dec.Next = start.Add(time.Duration(next) * dc.cfg.Tick)
	}
	if !dec.Next.After(now) {
		dec.Next = now.Add(dc.cfg.Tick)
	}
	w.next = dec.Next
	dec.Message = message(d.Policy, mode, want, s, now, by)
	return dec, nil
}

// work is the work of pod, made with the policy named policy if new.
func (dc *Decider) work(pod *corev1.Pod, policy string) (*work, error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	key := workKey(pod)
	if w := dc.works[key]; w != nil {
		return w, nil
	}
	p, err := deadline.New(policy)
	if err != nil {
		return nil, fmt.Errorf("deadline policy of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w := &work{policy: p}
	dc.works[key] = w
	return w, nil
}

// Due is when the decision last made for pod's work is due again; zero
// before the first.
func (dc *Decider) Due(pod *corev1.Pod) time.Time {
	dc.mu.Lock()
	w := dc.works[workKey(pod)]
	dc.mu.Unlock()
	if w == nil {
		return time.Time{}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Forget drops the work of a pod that finished: its index is done.
func (dc *Decider) Forget(pod *corev1.Pod) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	delete(dc.works, workKey(pod))
}

// message says a decision as the event does: the choice, the slack, the
// expected finish and the deadline.
func message(policy string, from, want deadline.Mode, s *deadline.State, now, by time.Time) string {
	left := s.Left()
	slack := s.Remaining() - left
	choice := map[deadline.Mode]string{deadline.Spot: "spot", deadline.OnDemand: "pay-as-you-go", deadline.Idle: "wait for spot"}[want]
	finish := "not before spot comes back"
	switch want {
	case deadline.Spot, deadline.OnDemand:
		extra := time.Duration(0)
		if from != want {
			extra = s.Job.Changeover
		}
		finish = now.Add(left + extra).UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s: %s; work left %v of %v, slack %v, expected finish %s, deadline %s",
		policy, choice, left.Round(time.Second), s.Job.Work, slack.Round(time.Second), finish, by.UTC().Format(time.RFC3339))
}

// workKey names the work a pod does: its Job's index, or the pod itself.
func workKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOf(pod)
	if ref != nil && ref.Kind == "Job" {
		if i, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]; ok {
			if _, err := strconv.Atoi(i); err == nil {
				return string(ref.UID) + "/" + i
			}
		}
	}
	return string(pod.UID)
}

// jobStart is when the pod's Job started (its status's startTime, or its
// creation); a pod outside a Job starts with its own creation.
func (dc *Decider) jobStart(ctx context.Context, pod *corev1.Pod) (time.Time, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "Job" {
		return pod.CreationTimestamp.Time, nil
	}
	dc.mu.Lock()
	start, ok := dc.jobs[ref.UID]
	dc.mu.Unlock()
	if ok {
		return start, nil
	}
	job, err := dc.cfg.Kube.BatchV1().Jobs(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the Job of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if job.UID != ref.UID {
		return time.Time{}, fmt.Errorf("the Job %s/%s of pod %s is gone", pod.Namespace, ref.Name, pod.Name)
	}
	if job.Status.StartTime == nil {
		return job.CreationTimestamp.Time, nil // not started as far as the Job controller wrote: look again next time
	}
	start = job.Status.StartTime.Time
	dc.mu.Lock()
	dc.jobs[ref.UID] = start
	dc.mu.Unlock()
	return start, nil
}
