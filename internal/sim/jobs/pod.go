package jobs

import "time"

// attempt is one run of a pod on one instance: a restart overhead without
// progress, then work, pausing every Interval of progress for a checkpoint
// of Cost (none when Interval is 0). It starts from progress already saved by
// earlier attempts and ends when the pod's work is done.
type attempt struct {
	overhead, interval, cost time.Duration
	// todo is the work left at the start of the attempt.
	todo time.Duration
}

// cycle is the length of one stretch of work and its checkpoint.
func (a attempt) cycle() time.Duration { return a.interval + a.cost }

// duration is how long the attempt takes to finish the work: no checkpoint
// after the last stretch.
func (a attempt) duration() time.Duration {
	d := a.overhead + a.todo
	if a.interval > 0 && a.todo > 0 {
		d += (a.todo - 1) / a.interval * a.cost
	}
	return d
}

// progress is the work done x after the start of the attempt.
func (a attempt) progress(x time.Duration) time.Duration {
	y := x - a.overhead
	if y <= 0 {
		return 0
	}
	if a.interval <= 0 {
		return min(y, a.todo)
	}
	n := y / a.cycle()
	return min(n*a.interval+min(y-n*a.cycle(), a.interval), a.todo)
}

// saved is the work the checkpoints completed by x after the start have saved.
func (a attempt) saved(x time.Duration) time.Duration {
	y := x - a.overhead
	if y <= 0 || a.interval <= 0 {
		return 0
	}
	return min(y/a.cycle()*a.interval, a.todo)
}
