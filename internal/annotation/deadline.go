package annotation

import (
	"fmt"
	"time"

	"github.com/spoteci/spoteci/internal/deadline"
)

// The annotations of a deadline Job's pod template: spoteci's own, beside
// ECI's. The virtual node reads them; they never reach the service.
const (
	// AnnotationDeadline is when the Job must be done: an RFC 3339 time, or
	// a duration from the Job's start ("6h").
	AnnotationDeadline = "spoteci.io/deadline"
	// AnnotationExpectedDuration is the work one pod needs ("45m").
	AnnotationExpectedDuration = "spoteci.io/expected-duration"
	// AnnotationDeadlinePolicy names the policy that decides between spot
	// and pay-as-you-go (internal/deadline); uniform-progress by default.
	AnnotationDeadlinePolicy = "spoteci.io/deadline-policy"
	// AnnotationProgress is the work a pod has saved, as a duration of its
	// expected duration ("20m"). A pod that checkpoints patches it on
	// itself; on the template ("0s") it says the pods checkpoint, and the
	// replacement of a pod of an Indexed Job starts from the progress its
	// index saved. Without it a reclaimed pod starts over.
	AnnotationProgress = "spoteci.io/progress"
)

// The deadline fields. They have no OpenAPI parameter: API names the field
// as the node's messages do.
var (
	FieldDeadline         = Field{"Deadline", AnnotationDeadline}
	FieldExpectedDuration = Field{"ExpectedDuration", AnnotationExpectedDuration}
	FieldDeadlinePolicy   = Field{"DeadlinePolicy", AnnotationDeadlinePolicy}
	FieldProgress         = Field{"Progress", AnnotationProgress}
)

// Deadline is what a pod's template says of its Job's deadline, parsed.
type Deadline struct {
	// At is the deadline as a time; zero when it is given as After, a
	// duration from the Job's start.
	At    time.Time
	After time.Duration
	// Work is the expected duration of one pod.
	Work time.Duration
	// Policy is the name of the deadline policy, checked.
	Policy string
	// Checkpoints says the pods save their progress (AnnotationProgress),
	// and Progress is what this pod has saved.
	Checkpoints bool
	Progress    time.Duration
}

// By is the deadline of a Job started at start.
func (d Deadline) By(start time.Time) time.Time {
	if d.At.IsZero() {
		return start.Add(d.After)
	}
	return d.At
}

// ParseDeadline is the entry of a pod's deadline annotations: nil when the
// pod has none, an error (a *FieldError) when they cannot be honoured.
func ParseDeadline(a map[string]string) (*Deadline, error) {
	by, hasBy := a[AnnotationDeadline]
	work, hasWork := a[AnnotationExpectedDuration]
	policy, hasPolicy := a[AnnotationDeadlinePolicy]
	progress, hasProgress := a[AnnotationProgress]
	switch {
	case !hasBy && !hasWork && !hasPolicy:
		return nil, nil
	case !hasBy:
		f, v := FieldExpectedDuration, work
		if !hasWork {
			f, v = FieldDeadlinePolicy, policy
		}
		return nil, refuse(f, v, "only valid with "+AnnotationDeadline)
	case !hasWork:
		return nil, refuse(FieldDeadline, by, "needs "+AnnotationExpectedDuration+", the work one pod does")
	}
	d := &Deadline{Policy: deadline.PolicyUniformProgress}
	if t, err := time.Parse(time.RFC3339, by); err == nil {
		d.At = t
	} else if after, err := time.ParseDuration(by); err == nil && after > 0 {
		d.After = after
	} else {
		return nil, refuse(FieldDeadline, by, `want an RFC 3339 time ("2026-12-08T06:00:00Z") or a positive duration from the Job's start ("6h")`)
	}
	var err error
	if d.Work, err = time.ParseDuration(work); err != nil || d.Work <= 0 {
		return nil, refuse(FieldExpectedDuration, work, `want a positive duration ("45m")`)
	}
	if d.After > 0 && d.After < d.Work {
		return nil, refuse(FieldDeadline, by, fmt.Sprintf("shorter than the expected duration %v", d.Work))
	}
	if hasPolicy {
		if _, err := deadline.New(policy); err != nil {
			return nil, refuse(FieldDeadlinePolicy, policy, fmt.Sprintf("want one of %v", deadline.Names()))
		}
		d.Policy = policy
	}
	if hasProgress {
		d.Checkpoints = true
		if d.Progress, err = ParseProgress(progress); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ParseProgress parses a pod's saved progress.
func ParseProgress(v string) (time.Duration, error) {
	p, err := time.ParseDuration(v)
	if err != nil || p < 0 {
		return 0, refuse(FieldProgress, v, `want the work saved as a duration ("20m")`)
	}
	return p, nil
}
