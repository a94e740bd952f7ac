// Package eci is the ECI service: the imperative shell around the market. It
// serves the API, keeps every change in SQLite before acting on it, runs the
// market on a scaled clock and runs containers through a runtime.
package eci

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/clock"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// DefaultRegion is the region the service sells in unless told otherwise.
const DefaultRegion = "cn-hangzhou"

// DefaultGrace is the termination grace period of a group that sets none.
const DefaultGrace = 30 * time.Second

// exitPoll is how often the service looks for containers that ended.
const exitPoll = 100 * time.Millisecond

// Config sets up a Service.
type Config struct {
	// StateDir holds the database and the containers' folders.
	StateDir string
	Region   string
	// TimeScale makes market time run that many times faster than wall time.
	TimeScale float64
	// Seed of the price model; kept in the database at first start.
	Seed int64
	// NoticeLead is the time from SpotToBeReleased to the release.
	NoticeLead   time.Duration
	DefaultStock int
	// Traces decide the stock of the pools they cover; their Start is the
	// market time of the service's first start.
	Traces []*prices.Trace
	// Catalog defaults to the embedded one.
	Catalog *catalog.Catalog
	// Runtime runs the groups' containers (required).
	Runtime runtime.Runtime
	// TakingDown opens the service to delete everything (spoteci down): Run
	// starts no container that never started.
	TakingDown bool
	// Wall reads the wall clock; nil means time.Now. For tests.
	Wall   func() time.Time
	Logger *slog.Logger
}

// Service is the ECI service. Its methods are the API actions; they are safe
// for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	cat     *catalog.Catalog
	book    *prices.Book
	clock   clock.Scaled
	seed    int64 // of the price model
	store   *store
	rt      runtime.Runtime
	sup     *supervisor
	stream  streaming.Server
	metrics *metrics
	zones   map[string]bool

	mu      sync.Mutex
	core    *market.Core
	groups  map[string]*group
	byToken map[string]*group
	changes changeIndex // the groups by their last change (status.go)

	exited map[string]bool // groups whose exit is not recorded yet
	// failed: a write to the database failed, so memory is ahead of the
	// disk; every action answers it until Run reloads the state from disk.
	failed error
}

// Open loads (or creates) the service's state. Call Run to start the market.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.Catalog == nil {
		cfg.Catalog = catalog.Default()
	}
	if cfg.NoticeLead == 0 {
		cfg.NoticeLead = market.DefaultNoticeLead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Runtime == nil {
		return nil, errors.New("eci: a container runtime is required")
	}
	zones := cfg.Catalog.Zones(cfg.Region)
	if len(zones) == 0 {
		return nil, fmt.Errorf("unknown region %q: want one of %s", cfg.Region, strings.Join(cfg.Catalog.Regions(), ", "))
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil { // see internal/statedir
		return nil, fmt.Errorf("creating state folder: %w", err)
	}
	st, err := openStore(ctx, filepath.Join(cfg.StateDir, "eci.db"))
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, cat: cfg.Catalog, store: st,
		zones:  map[string]bool{},
		exited: map[string]bool{},
	}
	for _, z := range zones {
		s.zones[z] = true
	}
	if err := s.load(ctx); err != nil {
		st.Close()
		return nil, err
	}
	s.metrics = newMetrics(s)
	return s, nil
}

// load restores the clock, the price book, the market and the groups.
func (s *Service) load(ctx context.Context) error {
	var saved struct {
		Clock  clock.Scaled
		Seed   int64
		Region string
	}
	raw, ok, err := s.store.meta(ctx, "service")
	if err != nil {
		return err
	}
	if ok {
		if err := json.Unmarshal([]byte(raw), &saved); err != nil {
			return fmt.Errorf("decoding saved service settings: %w", err)
		}
		if saved.Region != s.cfg.Region {
			return fmt.Errorf("state folder %s belongs to region %s, not %s", s.cfg.StateDir, saved.Region, s.cfg.Region)
		}
		saved.Clock.Wall = s.cfg.Wall
		if saved.Clock.Scale != s.cfg.TimeScale {
			saved.Clock = saved.Clock.Rescaled(s.cfg.TimeScale)
		}
		if saved.Seed != s.cfg.Seed {
			s.log.Info("keeping the price model's seed of the state folder", "seed", saved.Seed, "asked", s.cfg.Seed)
		}
	} else {
		c, err := clock.NewScaled(s.cfg.TimeScale)
		if err != nil {
			return err
		}
		if s.cfg.Wall != nil {
			now := s.cfg.Wall().UTC()
			c.AnchorWall, c.AnchorMarket = now, now
		}
		c.Wall = s.cfg.Wall
		saved.Clock, saved.Seed, saved.Region = c, s.cfg.Seed, s.cfg.Region
	}
	if _, err := clock.NewScaled(saved.Clock.Scale); err != nil {
		return err
	}
	enc, err := json.Marshal(saved)
	if err != nil {
		return fmt.Errorf("encoding service settings: %w", err)
	}
	if err := s.store.setMeta(ctx, "service", string(enc)); err != nil {
		return err
	}
	s.clock, s.seed = saved.Clock, saved.Seed
	if err := s.loadMarket(ctx); err != nil {
		return err
	}
	s.rt = s.cfg.Runtime
	s.sup = newSupervisor(s.rt, s.log, s.startRefused)
	if s.stream, err = newStreamServer(s.rt); err != nil {
		return fmt.Errorf("exec stream server: %w", err)
	}
	return nil
}

// loadMarket restores the price book, the market and the groups from the
// database: at start, and after a failed write, to forget what the disk does
// not know.
func (s *Service) loadMarket(ctx context.Context) error {
	s.groups, s.byToken = map[string]*group{}, map[string]*group{}
	s.book = prices.NewBook(prices.Config{Seed: s.seed, DefaultStock: s.cfg.DefaultStock})
	for _, tr := range s.cfg.Traces {
		tr.Start = s.clock.AnchorMarket
		s.book.AddTrace(tr)
	}
	overrides, err := s.store.overrides(ctx)
	if err != nil {
		return err
	}
	for _, o := range overrides {
		off, ok := s.cat.Offering(o.Zone, o.Type)
		if !ok {
			return fmt.Errorf("saved override of %s in %s: not in the catalog", o.Type, o.Zone)
		}
		if err := s.book.Set(prices.Override{At: o.At, Offering: off, Price: o.Price, Stock: o.Stock, Reset: o.Reset}); err != nil {
			// One an older version let in (a price of 1e308): leaving it out
			// keeps the folder usable.
			s.log.Warn("leaving out a saved market override", "err", err)
		}
	}

	s.core = market.New(market.Config{Prices: s.book, NoticeLead: s.cfg.NoticeLead})
	groups, err := s.store.groups(ctx)
	if err != nil {
		return err
	}
	var instances []*market.Instance
	events, err := s.store.allEvents(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		g.events = events[g.ID]
		in, err := g.Market.instance(s.cat, g.ID)
		if err != nil {
			return fmt.Errorf("restoring group %s: %w", g.ID, err)
		}
		g.inst = in
		instances = append(instances, in)
		s.groups[g.ID] = g
		if g.ClientToken != "" {
			s.byToken[g.ClientToken] = g
		}
	}
	s.touchAll()
	advanced := s.clock.AnchorMarket
	if v, ok, err := s.store.meta(ctx, "advanced"); err != nil {
		return err
	} else if ok {
		if advanced, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Errorf("decoding saved market time: %w", err)
		}
	}
	return s.core.Restore(advanced, instances)
}

// Close releases the database. Containers keep running.
func (s *Service) Close() error { return s.store.Close() }

// Now is the market time.
func (s *Service) Now() time.Time { return s.clock.Now() }

// Region is the region the service sells in.
func (s *Service) Region() string { return s.cfg.Region }

// Run drives the market until ctx ends: checks and releases when they are due,
// containers that ended, and runtime work. Groups created before a restart
// whose containers never started are started now.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.sup.run(ctx) })
	s.resume()
	for {
		if err := s.step(ctx); err != nil {
			s.log.Error("market step", "err", err)
			if errors.As(err, new(*persistError)) {
				s.reload(ctx)
			}
		}
		s.mu.Lock()
		wait := exitPoll
		if next := s.core.NextDue(); !next.IsZero() {
			wait = min(wait, s.clock.WallUntil(next))
		}
		s.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reload forgets what the disk does not know after a failed write: the
// market, the groups and their events come back from the database, as after a
// restart, and the service answers again. Nothing was acted on that was not
// written, so the runtime needs only what resume does.
func (s *Service) reload(ctx context.Context) {
	s.mu.Lock()
	err := s.loadMarket(ctx)
	if err == nil {
		s.failed = nil
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("reloading the state after a failed write (retrying)", "err", err)
		return
	}
	s.log.Warn("state reloaded from the database after a failed write")
	s.resume()
}

// resume makes the runtime match the groups after a restart: containers of
// live groups that never started are started, and containers of groups that
// ended (a stop queued when the server went down) are stopped.
func (s *Service) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		st, err := s.rt.Status(g.ID)
		switch {
		case !g.inst.State.Ended() && !g.Deleted && errors.Is(err, runtime.ErrNotFound) && !s.cfg.TakingDown:
			s.sup.start(instanceOf(g))
		case (g.inst.State.Ended() || g.Deleted) && err == nil && !allTerminated(st.Containers):
			s.sup.stop(g.ID, g.grace())
		}
	}
}

func allTerminated(statuses []runtime.ContainerStatus) bool {
	for _, c := range statuses {
		if c.State != runtime.StateTerminated {
			return false
		}
	}
	return true
}

// step takes in the containers that ended, then advances the market to now.
func (s *Service) step(ctx context.Context) error {
	exited, err := s.rt.Exits()
	changed, notified := s.runtimeChanges()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touchRuntime(changed, notified)
	// Exits forgets what it returned: ids are kept until their exit is recorded.
	for _, id := range exited {
		s.exited[id] = true
	}
	for id := range s.exited {
		g, ok := s.groups[id]
		if !ok || s.containersEnded(g) {
			delete(s.exited, id)
		}
	}
	if err != nil {
		s.log.Error("reading exits", "err", err)
	}
	return s.advance(ctx)
}

// advance runs the market to now and handles what it did. Call with mu held.
func (s *Service) advance(ctx context.Context) error {
	if s.failed != nil {
		return s.failed
	}
	s.core.Advance(s.clock.Now())
	return s.handleReady(ctx, change{})
}

// handleReady persists what the market did together with the caller's own
// changes in ch (its events go before the market's), then acts on it. Call
// with mu held.
func (s *Service) handleReady(ctx context.Context, ch change) error {
	rd := s.core.Ready()
	if rd.Empty() && len(ch.events) == 0 && len(ch.overrides) == 0 && len(ch.groups) == 0 {
		return nil
	}
	extra, own := ch.events, ch.groups
	ch.events, ch.groups, ch.lines, ch.advanced = nil, nil, rd.Lines, s.core.Now()
	dirty := map[*group]bool{}
	for _, g := range own {
		dirty[g] = true
	}
	for _, in := range rd.Instances {
		g := s.groups[in.ID]
		g.Market = marketStateOf(in)
		dirty[g] = true
	}
	var released []*group
	// The caller's events happened first: a container ends, then its group stops.
	ch.events = append(ch.events, extra...)
	for _, e := range rd.Events {
		g := s.groups[e.Instance]
		ev := storedEvent{Group: e.Instance, Event: eciEvent(e)}
		ch.events = append(ch.events, ev)
		s.metrics.event(e)
		if e.Kind == market.EventReleased {
			s.metrics.released(g.inst.Reason)
			g.Status = eciapi.StatusExpired
			dirty[g] = true
			released = append(released, g)
		}
	}
	for _, l := range rd.Lines {
		g := s.groups[l.Instance]
		g.Amount += l.Amount
		s.metrics.bill(g, l.Amount)
	}
	for g := range dirty {
		ch.groups = append(ch.groups, g)
	}
	// The write outlives the request that caused it: a client that goes away
	// must not fail the market's transaction.
	if err := s.store.write(context.WithoutCancel(ctx), ch); err != nil {
		// The market moved on in memory but not on disk: act on nothing a
		// restart would not remember; Run reloads the state from disk.
		s.failed = &persistError{err}
		return s.failed
	}
	for _, g := range ch.groups {
		s.touch(g)
	}
	for _, e := range ch.events {
		g := s.groups[e.Group]
		g.events = append(g.events, e.Event)
		s.touch(g)
	}
	for _, g := range released {
		s.sup.stop(g.ID, g.grace())
	}
	return nil
}

// containersEnded records the final state of a group's containers and, if the
// group was still in the market, takes it out: Succeeded or Failed.
// It reports whether the exit is recorded (or was already).
func (s *Service) containersEnded(g *group) bool {
	if g.Containers != nil {
		return true // recorded already: the runtime reports every exit again after a restart
	}
	st, err := s.rt.Status(g.ID)
	if err != nil {
		s.log.Error("reading container status", "group", g.ID, "err", err)
		return false
	}
	statuses := st.Containers
	var events []storedEvent
	finished := g.inst.Created
	failed := false
	for _, c := range statuses {
		if c.State != runtime.StateTerminated {
			return true // not all ended yet: the last one to end reports again
		}
		if c.FinishedAt.After(time.Time{}) {
			finished = maxTime(finished, s.clock.MarketAt(c.FinishedAt))
		}
		typ, reason := "Normal", "Completed"
		if c.ExitCode != 0 || c.Reason == runtime.ReasonStartError {
			typ, reason, failed = "Warning", c.Reason, true
		}
		events = append(events, storedEvent{Group: g.ID, Event: eciapi.Event{Type: typ, Reason: reason,
			Message: containerEndMessage(c), Timestamp: s.clock.MarketAt(c.FinishedAt)}})
	}
	if st.Reason == runtime.ReasonEvicted {
		failed = true // as a kubelet's eviction fails the pod, whatever the exits
	}
	g.Containers = statuses
	if !g.inst.State.Ended() {
		g.Status = eciapi.StatusSucceeded
		if failed {
			g.Status = eciapi.StatusFailed
		}
		s.core.Stop(finished, g.ID, "The containers ended: "+g.Status)
	}
	if err := s.handleReady(context.Background(), change{events: events, groups: []*group{g}}); err != nil {
		s.log.Error("persisting container exit", "group", g.ID, "err", err)
		return false
	}
	return true
}

// startRefused fails a group whose containers the runtime refused to start:
// its containers end in StartError with the runtime's words, a Warning
// event says them, and the bill stops.
func (s *Service) startRefused(id string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.advance(context.Background()); err != nil {
		s.log.Error("failing a group that could not start", "group", id, "err", err)
		return
	}
	g, ok := s.groups[id]
	if !ok || g.Deleted || g.inst.State.Ended() {
		return // gone or ended meanwhile: nothing waits
	}
	now := s.core.Now()
	msg := "the containers could not start: " + err.Error()
	for _, c := range g.Request.Containers {
		g.Containers = append(g.Containers, runtime.ContainerStatus{Name: c.Name, Image: c.Image, State: runtime.StateTerminated,
			ExitCode: 128, Reason: runtime.ReasonStartError, Message: msg, FinishedAt: s.clock.WallAt(now)})
	}
	g.Status = eciapi.StatusFailed
	if err := s.core.Stop(now, g.ID, "The containers could not start"); err != nil {
		s.log.Error("stopping a group that could not start", "group", id, "err", err)
	}
	ev := storedEvent{Group: g.ID, Event: eciapi.Event{Type: "Warning", Reason: runtime.ReasonStartError, Message: msg, Timestamp: now}}
	if err := s.handleReady(context.Background(), change{events: []storedEvent{ev}, groups: []*group{g}}); err != nil {
		s.log.Error("persisting a refused start", "group", id, "err", err)
	}
}

func containerEndMessage(c runtime.ContainerStatus) string {
	msg := fmt.Sprintf("Container %s exited with code %d", c.Name, c.ExitCode)
	if c.Message != "" {
		msg += ": " + c.Message
	}
	return msg
}

// persistError says the database refused a write: the action fails, and the
// service reloads its state from the last write.
type persistError struct{ err error }

func (e *persistError) Error() string {
	return "the state folder's database refused a write (the service reloads its last written state; retry): " + e.err.Error()
}
func (e *persistError) Unwrap() error { return e.err }

// As makes it a 503 ServiceUnavailable on the wire: the call may be retried.
func (e *persistError) As(target any) bool {
	t, ok := target.(**APIError)
	if ok {
		*t = &APIError{Status: http.StatusServiceUnavailable, Code: eciapi.CodeServiceUnavailable, Message: e.Error()}
	}
	return ok
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newID returns an ECI-style group ID: eci- and 20 base-32 characters.
func newID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuv"
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return "eci-" + string(b)
}
