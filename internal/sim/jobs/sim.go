package jobs

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/sim"
)

// Config is the market a workload runs in.
type Config struct {
	Catalog *catalog.Catalog
	Prices  market.Prices
	Rules   sim.Rules
	// NextChange says when prices or stock may next change after t: when
	// pods waiting for capacity try again (they also try whenever an
	// instance ends). Nil or zero: only when an instance ends.
	NextChange func(t time.Time) time.Time
	Progress   sim.Progress
	// Record keeps the instance lives of the first Record Jobs, for plots.
	Record int
}

// Life is the life of one instance of a recorded Job.
type Life struct {
	Job, Pod int
	Offering *catalog.Offering
	From, To time.Time
	Spot     bool
	Released bool // reclaimed
}

// PolicyResult is the simulation of the workload under one policy.
type PolicyResult struct {
	Summary Summary
	Lives   []Life
}

// Simulate runs the workload under each of its policies (or, with none, its
// Jobs' own annotations), each on a fresh market, and reports. It stops early,
// with ctx's error, when ctx is done.
func Simulate(ctx context.Context, w *Workload, cfg Config) ([]PolicyResult, error) {
	if err := w.normalize(); err != nil {
		return nil, err
	}
	policies := []*Policy{nil}
	if len(w.Policies) > 0 {
		policies = policies[:0]
		for i := range w.Policies {
			policies = append(policies, &w.Policies[i])
		}
	}
	var kinds [][]kind
	jobs := 0
	for _, p := range policies {
		k, err := w.compile(cfg.Catalog, p)
		if err != nil {
			return nil, err
		}
		kinds = append(kinds, k)
	}
	for _, j := range w.Jobs {
		jobs += j.Count
	}
	progress := cfg.Progress
	if progress == nil {
		progress = sim.NoProgress{}
	}
	progress.Start(jobs * len(policies))
	defer progress.Done()
	var results []PolicyResult
	for i, p := range policies {
		name := "annotations"
		if p != nil {
			name = p.Name
		}
		r := newRun(w, cfg, kinds[i], progress)
		if err := r.run(ctx); err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		results = append(results, PolicyResult{Summary: r.summary(name), Lives: r.lives})
	}
	return results, nil
}

// The kinds of event of a run, besides what the market core has due.
const (
	evArrive = iota // a Job arrives
	evFinish        // a pod's work is done
	evRetry         // pods waiting for capacity try again
)

type event struct {
	at   int64 // UnixNano
	seq  uint64
	kind uint8
	id   int32 // Job or pod
	gen  int32 // the pod's generation when scheduled: stale if it moved on
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || (h[i].at == h[j].at && h[i].seq < h[j].seq)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type jobState struct {
	kind                      int32
	arrival, finished         time.Time
	created, succeeded, alive int32 // pods handed out, succeeded, and pending or running
	reclaims                  int32
	lost, wait                time.Duration
	spot, payg                time.Duration
	cost, paygCost            float64
}

// podState is one completion index of a Job: its attempts follow each other
// on new instances, each resuming from the work saved so far.
type podState struct {
	job      int32
	index    int32
	gen      int32 // bumped whenever the scheduled finish no longer stands
	attempts int32
	inst     *market.Instance
	started  time.Time
	a        attempt
	saved    time.Duration // work saved by earlier attempts
	// stopped is when the pod stopped working to checkpoint at the notice;
	// noticeSaved the work of this attempt that checkpoint saved.
	stopped     time.Time
	noticeSaved time.Duration
	waiting     time.Time // when it started waiting for capacity; zero when not
}

// run is the simulation of the workload under one policy: the market core on
// a virtual clock that jumps from event to event.
type run struct {
	w        *Workload
	cfg      Config
	kinds    []kind
	progress sim.Progress
	core     *market.Core
	now      time.Time
	events   eventHeap
	seq      uint64

	jobs       []jobState
	pods       []podState
	byInstance map[string]int32
	pending    [][]int32 // per kind, pods waiting for capacity, in order
	retryAt    time.Time
	err        error

	attempts, degraded int
	lives              []Life
}

func newRun(w *Workload, cfg Config, kinds []kind, progress sim.Progress) *run {
	return &run{w: w, cfg: cfg, kinds: kinds, progress: progress,
		core:       market.New(cfg.Rules.Config(cfg.Prices)),
		byInstance: map[string]int32{},
		pending:    make([][]int32, len(kinds)),
	}
}

func (r *run) push(at time.Time, kind uint8, id, gen int32) {
	r.seq++
	heap.Push(&r.events, event{at: at.UnixNano(), seq: r.seq, kind: kind, id: id, gen: gen})
}

func (r *run) run(ctx context.Context) error {
	end := r.w.Start.Add(r.w.Horizon)
	for k, spec := range r.w.Jobs {
		for i := range spec.Count {
			at := r.w.Start.Add(spec.Arrival + time.Duration(i)*spec.Interval)
			if at.After(end) {
				break
			}
			r.jobs = append(r.jobs, jobState{kind: int32(k), arrival: at})
			r.push(at, evArrive, int32(len(r.jobs)-1), 0)
		}
	}
	r.now = r.w.Start
	for steps := 0; r.err == nil; steps++ {
		if steps%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		due := r.core.NextDue()
		if len(r.events) > 0 {
			at := time.Unix(0, r.events[0].at).UTC()
			if due.IsZero() || at.Before(due) {
				if at.After(end) {
					break
				}
				e := heap.Pop(&r.events).(event)
				r.now = at
				r.dispatch(e)
				continue
			}
		}
		if due.IsZero() || due.After(end) {
			break
		}
		r.now = due
		r.core.Advance(due)
		r.handle()
	}
	if r.err != nil {
		return r.err
	}
	// The horizon: whatever still runs is stopped, and billed, there.
	r.now = end
	for i := range r.pods {
		if p := &r.pods[i]; p.inst != nil {
			if err := r.core.Stop(end, p.inst.ID, "horizon"); err != nil {
				return err
			}
		}
	}
	r.handle()
	for i := range r.pods {
		if p := &r.pods[i]; !p.waiting.IsZero() {
			r.jobs[p.job].wait += end.Sub(p.waiting)
		}
	}
	return r.err
}

func (r *run) dispatch(e event) {
	switch e.kind {
	case evArrive:
		j := &r.jobs[e.id]
		spec := r.kinds[j.kind].spec
		for range min(spec.Parallelism, spec.Completions) {
			r.newPod(e.id)
		}
		if spec.Completions == 0 {
			r.jobDone(e.id)
		}
	case evFinish:
		if p := &r.pods[e.id]; p.inst != nil && p.gen == e.gen {
			r.finish(e.id)
		}
	case evRetry:
		if e.at == r.retryAt.UnixNano() {
			r.retryAt = time.Time{}
			r.retryPending()
		}
	}
}

func (r *run) newPod(job int32) {
	j := &r.jobs[job]
	r.pods = append(r.pods, podState{job: job, index: j.created})
	j.created++
	j.alive++
	r.launch(int32(len(r.pods) - 1))
}

// launch starts an attempt of pod i now, or queues it for capacity.
func (r *run) launch(i int32) {
	p := &r.pods[i]
	k := r.jobs[p.job].kind
	if r.cfg.Rules.Launch(r.now).Equal(r.now) && len(r.pending[k]) == 0 && r.create(i) {
		return
	}
	if p.waiting.IsZero() {
		p.waiting = r.now
	}
	r.pending[k] = append(r.pending[k], i)
	r.scheduleRetry()
}

// create asks the market for an instance for pod i and reports whether it
// got one.
func (r *run) create(i int32) bool {
	p := &r.pods[i]
	kd := &r.kinds[r.jobs[p.job].kind]
	p.attempts++
	id := "p" + strconv.Itoa(int(i)) + "-" + strconv.Itoa(int(p.attempts))
	in, err := r.core.Create(r.now, market.Order{ID: id, Bid: r.cfg.Rules.Bid(kd.bid), Candidates: kd.candidates})
	if err != nil {
		p.attempts--
		if !errors.Is(err, market.ErrInsufficientStock) && !errors.Is(err, market.ErrBidBelowMarket) {
			r.err = err
		}
		return false
	}
	r.attempts++
	if in.Degraded {
		r.degraded++
	}
	if !p.waiting.IsZero() {
		r.jobs[p.job].wait += r.now.Sub(p.waiting)
		p.waiting = time.Time{}
	}
	spec := kd.spec
	p.inst, p.started, p.stopped, p.noticeSaved = in, r.now, time.Time{}, 0
	p.a = attempt{overhead: spec.RestartOverhead, interval: spec.CheckpointInterval, cost: spec.CheckpointCost, todo: spec.Work - p.saved}
	p.gen++
	r.byInstance[id] = i
	r.push(r.now.Add(p.a.duration()), evFinish, i, p.gen)
	r.handle()
	return true
}

// finish ends pod i, its work done: the containers end, the instance stops.
func (r *run) finish(i int32) {
	p := &r.pods[i]
	if err := r.core.Stop(r.now, p.inst.ID, "Completed"); err != nil {
		r.err = err
		return
	}
	r.handle()
	p.inst = nil
	p.gen++
	j := &r.jobs[p.job]
	j.succeeded++
	j.alive--
	spec := r.kinds[j.kind].spec
	if int(j.created) < spec.Completions {
		r.newPod(p.job)
	}
	if int(j.succeeded) == spec.Completions {
		r.jobDone(p.job)
	}
	r.retryPending()
}

func (r *run) jobDone(job int32) {
	r.jobs[job].finished = r.now
	r.progress.Add(1)
}

// handle reads what the core did: bill lines first (the instances they bill
// are still known), then notices and reclaims.
func (r *run) handle() {
	rd := r.core.Ready()
	for _, l := range rd.Lines {
		i, ok := r.byInstance[l.Instance]
		if !ok {
			continue
		}
		in, _ := r.core.Get(l.Instance)
		j := &r.jobs[r.pods[i].job]
		d := l.To.Sub(l.From)
		if in.Spot {
			j.spot += d
		} else {
			j.payg += d
		}
		j.cost += l.Amount
		j.paygCost += float64(in.Offering.OnDemand * d.Hours()) // no fused multiply-add: the same bits everywhere
	}
	for _, e := range rd.Events {
		i, ok := r.byInstance[e.Instance]
		if !ok {
			continue
		}
		switch e.Kind {
		case market.EventToBeReleased:
			r.notice(i)
		case market.EventReleased:
			r.reclaimed(i)
		}
	}
	for _, in := range rd.Instances {
		if !in.State.Ended() {
			continue
		}
		if i, ok := r.byInstance[in.ID]; ok {
			p := &r.pods[i]
			if int(p.job) < r.cfg.Record {
				r.lives = append(r.lives, Life{Job: int(p.job), Pod: int(p.index), Offering: in.Offering,
					From: in.Created, To: in.Ended, Spot: in.Spot, Released: in.State == market.Released})
			}
			delete(r.byInstance, in.ID)
		}
	}
}

// notice is SpotToBeReleased for pod i: with checkpointAtNotice, a pod that
// would not finish before the release saves its work, if the checkpoint fits
// in the notice, and waits for the release.
func (r *run) notice(i int32) {
	p := &r.pods[i]
	spec := r.kinds[r.jobs[p.job].kind].spec
	release := p.inst.ReleaseAt
	if !spec.CheckpointAtNotice || !p.started.Add(p.a.duration()).After(release) {
		return
	}
	if r.now.Add(spec.CheckpointCost).After(release) {
		return // no time to save
	}
	p.stopped = r.now
	p.noticeSaved = p.a.progress(r.now.Sub(p.started))
	p.gen++ // it will not finish on this instance
}

// reclaimed is the release of pod i's instance: the pod fails, the work since
// its last checkpoint is lost, and the Job controller replaces it.
func (r *run) reclaimed(i int32) {
	p := &r.pods[i]
	until := r.now
	if !p.stopped.IsZero() {
		until = p.stopped
	}
	done := p.a.progress(until.Sub(p.started))
	saved := max(p.a.saved(until.Sub(p.started)), p.noticeSaved)
	j := &r.jobs[p.job]
	j.lost += done - saved
	j.reclaims++
	p.saved += saved
	p.inst = nil
	p.gen++
	r.launch(i)
}

// retryPending gives the waiting pods of each kind a try, in order, until one
// fails: the others of its kind, asking for the same, would fail too.
func (r *run) retryPending() {
	if !r.cfg.Rules.Launch(r.now).Equal(r.now) {
		r.scheduleRetry()
		return
	}
	waiting := false
	for k := range r.pending {
		q := r.pending[k]
		n := 0
		for n < len(q) && r.create(q[n]) {
			n++
		}
		r.pending[k] = q[n:]
		if len(r.pending[k]) > 0 {
			waiting = true
		} else {
			r.pending[k] = nil
		}
	}
	if waiting {
		r.scheduleRetry()
	}
}

// scheduleRetry sets a retry at the next change of the market, or the next
// launch time of the rules.
func (r *run) scheduleRetry() {
	var at time.Time
	if launch := r.cfg.Rules.Launch(r.now); launch.After(r.now) {
		at = launch
	} else if r.cfg.NextChange != nil {
		at = r.cfg.NextChange(r.now)
	}
	if at.IsZero() || (!r.retryAt.IsZero() && !at.Before(r.retryAt)) {
		return
	}
	r.retryAt = at
	r.push(at, evRetry, 0, 0)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
