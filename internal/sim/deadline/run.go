package deadline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
)

// Epoch is where the virtual clock of a trace starts: tick 0 of every trace.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Market is one spot pool whose stock replays an availability trace: one unit
// when the trace says available, none when not, at fixed prices, under a set
// of rules.
type Market struct {
	Name  string
	Pool  *catalog.Offering
	Trace *prices.Trace
	Rules sim.Rules
	// Spot is the bid of the spot instances, before the rules adjust it.
	Spot market.Bid

	source *prices.Book
	spot   market.Order // the order of a spot instance, for Pick
	ondem  market.Order

	// flips[i] is the first tick after i whose availability differs from
	// tick i's (len of the trace if none): when the answer of the market to
	// a spot order may change.
	flips []int

	mu    sync.Mutex
	lives map[time.Duration][]time.Duration // spot lifetimes by horizon, for optimal
}

// MarketConfig sets up a Market.
type MarketConfig struct {
	Name  string
	Trace *prices.Trace
	// Rules is sim.RulesAWS or sim.RulesECI.
	Rules string
	// OnDemand and SpotPrice are the hourly prices.
	OnDemand, SpotPrice float64
	// Protection is the protection period of spot bids under eci rules.
	Protection time.Duration
	// NoticeLead under eci rules; 0 means the default.
	NoticeLead time.Duration
}

// NewMarket returns the market of one trace. The trace's Start is set to
// Epoch.
func NewMarket(cfg MarketConfig) (*Market, error) {
	if cfg.Trace == nil {
		return nil, errors.New("deadline market: no trace")
	}
	if !(cfg.SpotPrice > 0) || cfg.OnDemand < cfg.SpotPrice {
		return nil, fmt.Errorf("deadline market: want 0 < spot price %v <= on-demand price %v", cfg.SpotPrice, cfg.OnDemand)
	}
	tr := *cfg.Trace
	tr.Start, tr.Zone, tr.Type = Epoch, "", ""
	rules, err := sim.ParseRules(cfg.Rules, tr.Gap, tr.Start, cfg.NoticeLead)
	if err != nil {
		return nil, err
	}
	pool := &catalog.Offering{ID: 0, Zone: cfg.Name, Region: cfg.Name, OnDemand: cfg.OnDemand, Spot: cfg.SpotPrice,
		Type: &catalog.InstanceType{Name: "trace." + cfg.Name, VCPU: 1, MemoryGiB: 1}}
	m := &Market{
		Name: cfg.Name, Pool: pool, Trace: &tr, Rules: rules,
		Spot:   market.Bid{Strategy: market.SpotAsPriceGo, Protection: cfg.Protection},
		source: book(prices.Config{Fixed: true, DefaultStock: 1}, &tr),
		lives:  map[time.Duration][]time.Duration{},
	}
	if err := rules.Bid(m.Spot).Validate(); err != nil {
		return nil, err
	}
	m.flips = make([]int, len(tr.Data))
	for i, next := len(tr.Data)-1, len(tr.Data); i >= 0; i-- {
		m.flips[i] = next
		if i > 0 && tr.Data[i-1] != tr.Data[i] {
			next = i
		}
	}
	candidates := [][]*catalog.Offering{{pool}}
	m.spot = market.Order{ID: "spot", Bid: rules.Bid(m.Spot), Candidates: candidates}
	m.ondem = market.Order{ID: "od", Bid: market.Bid{Strategy: market.NoSpot}, Candidates: candidates}
	return m, nil
}

// Gap is the tick of the trace.
func (m *Market) Gap() time.Duration { return m.Trace.Gap }

// Ticks is the length of the trace.
func (m *Market) Ticks() int { return len(m.Trace.Data) }

// At is the market time of tick i.
func (m *Market) At(tick int) time.Time { return m.Trace.Start.Add(time.Duration(tick) * m.Trace.Gap) }

func (m *Market) core() *market.Core { return market.New(m.Rules.Config(m.source)) }

// nextChange is when, after now, the availability of a run from tick start
// next changes, as a time since that start.
func (m *Market) nextChange(start int, now time.Duration) time.Duration {
	i := start + int(now/m.Trace.Gap)
	if i >= len(m.flips) {
		return never
	}
	return time.Duration(m.flips[i]-start) * m.Trace.Gap
}

// Life is the life of one instance of a run.
type Life struct {
	Mode     Mode
	From, To time.Time
	Released bool // reclaimed by the market
}

// Result is one run of the job from one start.
type Result struct {
	Start    int // the tick of the trace the job starts at
	Finished bool
	// Finish is the time from the start to the end of the work.
	Finish time.Duration
	// Work is the progress made on each mode (with Job.LosesProgress, the
	// work later lost too); Billed the instance time paid.
	Work, Billed [3]time.Duration
	Cost         float64
	Preemptions  int
	// Lives are the instances and Progress the work done over time, when
	// asked for.
	Lives    []Life
	Progress []Point
}

// Point is the work done at a moment.
type Point struct {
	At   time.Time
	Done time.Duration
}

// Met reports whether the job finished by its deadline.
func (r *Result) Met(j Job) bool { return r.Finished && r.Finish <= j.Deadline }

// RunOptions tune a run.
type RunOptions struct {
	// Record lists the life of each instance and the progress in the result.
	Record bool
	// EveryTick asks the policy at every tick even when it said how long its
	// decision holds (see Holder): slower, same result; for tests.
	EveryTick bool
}

// Run runs the job from tick start under policy p and returns what happened.
func (m *Market) Run(job Job, p Policy, start int, opt RunOptions) Result {
	r := runner{m: m, job: job, p: p, core: m.core(), t0: m.At(start), start: start, opt: opt}
	r.st = State{Job: job, Gap: m.Trace.Gap}
	r.probe = r.spotAvailable // made once: a method value allocates
	r.res.Start = start
	r.run()
	return r.res
}

// never is a time no run reaches.
const never = time.Duration(math.MaxInt64)

// runner drives one run: it jumps from event to event (decisions due,
// changes of availability, what the core has due, the end of the work), hands
// the core the time, and reads reclaims and bill lines from Ready. Times are
// durations since the start, t0.
type runner struct {
	m     *Market
	job   Job
	p     Policy
	core  *market.Core
	t0    time.Time
	start int
	opt   RunOptions

	st       State // what the policy is shown; reused
	mode     Mode
	cur      *market.Instance
	overhead time.Duration // changeover left on the current instance
	done     time.Duration
	// decideAt is the next decision due; flipAt the next change of the
	// trace's availability, which matters while not on spot.
	decideAt, flipAt time.Duration
	reclaimed        bool
	probe            func() bool
	probeAt          time.Duration // when the policy's question about spot is asked
	seq              int
	res              Result
}

func (r *runner) run() {
	// A job that never finishes (a policy that idles for ever) stops here.
	limit := r.job.Deadline + r.job.Work + 4*r.job.Changeover + 2*r.m.Trace.Gap
	var now time.Duration
	if r.opt.Record {
		r.res.Progress = append(r.res.Progress, Point{At: r.t0})
	}
	r.decide(now)
	for {
		next := min(r.decideAt, limit)
		if r.mode != Spot {
			next = min(next, r.flipAt)
		}
		due := never
		if t := r.core.NextDue(); !t.IsZero() {
			due = time.Duration(t.UnixNano() - r.t0.UnixNano())
			next = min(next, due)
		}
		if r.mode != Idle {
			next = min(next, now+r.overhead+r.job.Work-r.done)
		}
		r.progress(next - now)
		now = next
		if r.opt.Record {
			r.res.Progress = append(r.res.Progress, Point{At: r.t0.Add(now), Done: r.done})
		}
		if r.done >= r.job.Work {
			r.res.Finished, r.res.Finish = true, now
			r.stop(now)
			return
		}
		if now >= limit {
			r.stop(now)
			return
		}
		if due <= now {
			r.core.Advance(r.t0.Add(now))
			r.handle(r.core.Ready())
		}
		if r.reclaimed || now >= r.decideAt || (r.mode != Spot && now >= r.flipAt) {
			r.decide(now)
		}
	}
}

// decide asks the policy, applies its answer, and sets when to ask again.
func (r *runner) decide(now time.Duration) {
	r.reclaimed = false
	gap := r.m.Trace.Gap
	s := &r.st
	s.Ask(now, r.done, r.mode, r.probe)
	s.Protected = r.protected(now)
	r.probeAt = now
	want := r.p.Decide(s)
	r.apply(now, want)

	next := s.Tick + 1
	if h, ok := r.p.(Holder); ok && !r.opt.EveryTick && r.mode == want {
		s.Mode, s.Done, s.Protected = r.mode, r.done, r.protected(now)
		next = h.Hold(s)
	}
	r.decideAt = never
	if next < math.MaxInt {
		r.decideAt = time.Duration(next) * gap
	}
	r.flipAt = r.m.nextChange(r.start, now)
}

// protected is how much of the current spot instance's protection period is
// left at now.
func (r *runner) protected(now time.Duration) time.Duration {
	if r.mode != Spot || r.cur == nil {
		return 0
	}
	return max(r.cur.ProtectionEnd().Sub(r.t0.Add(now)), 0)
}

// instanceIDs are the IDs of the first instances of a run, made once.
var instanceIDs = func() map[string][]string {
	ids := map[string][]string{}
	for _, prefix := range []string{"spot", "od"} {
		for i := range 64 {
			ids[prefix] = append(ids[prefix], prefix+"-"+strconv.Itoa(i))
		}
	}
	return ids
}()

func instanceID(prefix string, seq int) string {
	if ids := instanceIDs[prefix]; seq < len(ids) {
		return ids[seq]
	}
	return prefix + "-" + strconv.Itoa(seq)
}

// spotAvailable asks the market whether it would create a spot instance now.
func (r *runner) spotAvailable() bool {
	_, err := r.core.Pick(r.t0.Add(r.probeAt), r.m.spot)
	return err == nil
}

// apply moves the job to mode want at now: it stops the current instance and
// creates the new one, which starts with the changeover.
func (r *runner) apply(now time.Duration, want Mode) {
	if want == r.mode {
		return
	}
	r.stop(now)
	if want == Idle {
		return
	}
	order := r.m.ondem
	if want == Spot {
		order = r.m.spot
	}
	r.seq++
	order.ID = instanceID(order.ID, r.seq)
	in, err := r.core.Create(r.t0.Add(now), order)
	if err != nil {
		return // spot asked for when the market has none: the job waits
	}
	r.cur, r.mode, r.overhead = in, want, r.job.Changeover
	r.handle(r.core.Ready())
}

func (r *runner) stop(now time.Duration) {
	if r.cur == nil {
		return
	}
	if err := r.core.Stop(r.t0.Add(now), r.cur.ID, "policy"); err != nil {
		panic(fmt.Sprintf("deadline: stopping %s: %v", r.cur.ID, err)) // the runner only stops its own instances
	}
	r.cur, r.mode = nil, Idle
	r.lose()
	r.handle(r.core.Ready())
}

// lose drops the progress of a job that does not checkpoint when its
// instance ends: the next one starts the work over.
func (r *runner) lose() {
	if r.job.LosesProgress {
		r.done = 0
	}
}

// handle reads what the core did: a reclaim of the current instance leaves
// the job idle and calls for a decision; bill lines add up cost and time.
func (r *runner) handle(rd market.Ready) {
	for _, e := range rd.Events {
		if e.Kind == market.EventReleased && r.cur != nil && e.Instance == r.cur.ID {
			r.cur, r.mode = nil, Idle
			r.lose()
			r.res.Preemptions++
			r.reclaimed = true
		}
	}
	for _, l := range rd.Lines {
		mode := OnDemand
		if in, _ := r.core.Get(l.Instance); in.Spot {
			mode = Spot
		}
		r.res.Billed[mode] += l.To.Sub(l.From)
		r.res.Cost += l.Amount
	}
	if r.opt.Record {
		for _, in := range rd.Instances {
			if in.State.Ended() {
				mode := OnDemand
				if in.Spot {
					mode = Spot
				}
				r.res.Lives = append(r.res.Lives, Life{Mode: mode, From: in.Created, To: in.Ended, Released: in.State == market.Released})
			}
		}
	}
}

// progress advances the work by dt on the current instance: the changeover
// first, then work.
func (r *runner) progress(dt time.Duration) {
	if r.mode == Idle {
		return
	}
	o := min(dt, r.overhead)
	r.overhead -= o
	w := min(dt-o, r.job.Work-r.done)
	r.done += w
	r.res.Work[r.mode] += w
}

// book is a price book of cfg whose stock the traces decide.
func book(cfg prices.Config, traces ...*prices.Trace) *prices.Book {
	b := prices.NewBook(cfg)
	for _, tr := range traces {
		b.AddTrace(tr)
	}
	return b
}
