package market_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/market/markettest"
)

var t0 = time.Date(2026, 4, 8, 8, 0, 0, 0, time.UTC)

func hangzhouC5() *catalog.Offering {
	return markettest.Pool(0, "cn-hangzhou-i", "ecs.c5.large", 0.622, 0.056)
}

func limitBid(limit float64, hours int) market.Bid {
	return market.Bid{Strategy: market.SpotWithPriceLimit, Limit: limit, Protection: time.Duration(hours) * time.Hour}
}

func order(id string, bid market.Bid, pools ...*catalog.Offering) market.Order {
	return market.Order{ID: id, Bid: bid, Candidates: [][]*catalog.Offering{pools}}
}

// run advances the core minute by minute to end and returns every event.
func run(c *market.Core, end time.Time) []market.Event {
	var events []market.Event
	for t := c.Now(); !t.After(end); t = t.Add(time.Minute) {
		c.Advance(t)
		events = append(events, c.Ready().Events...)
	}
	return events
}

func eventsOf(events []market.Event, kind market.EventKind) []market.Event {
	var out []market.Event
	for _, e := range events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func mustCreate(t *testing.T, c *market.Core, now time.Time, o market.Order) *market.Instance {
	t.Helper()
	in, err := c.Create(now, o)
	if err != nil {
		t.Fatalf("create %s: %v", o.ID, err)
	}
	return in
}

// SPEC 3: during the protection period nothing is checked, whatever the price.
func TestNoReleaseDuringProtection(t *testing.T) {
	for hours := 0; hours <= 6; hours++ {
		t.Run(fmt.Sprintf("%dh", hours), func(t *testing.T) {
			pool := hangzhouC5()
			prices := markettest.New(10)
			c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
			in := mustCreate(t, c, t0, order("eci-1", limitBid(0.06, hours), pool))
			prices.SetPrice(pool, t0.Add(time.Minute), 0.5) // far above the limit at once
			events := run(c, t0.Add(8*time.Hour))
			notices := eventsOf(events, market.EventToBeReleased)
			if len(notices) != 1 {
				t.Fatalf("notices = %v, want one", notices)
			}
			wantNotice := t0.Add(max(time.Duration(hours)*time.Hour, 5*time.Minute))
			if !notices[0].At.Equal(wantNotice) {
				t.Errorf("notice at %v, want the first check %v", notices[0].At, wantNotice)
			}
			if in.State != market.Released || !in.Ended.Equal(wantNotice.Add(5*time.Minute)) {
				t.Errorf("state %v ended %v, want Expired at %v", in.State, in.Ended, wantNotice.Add(5*time.Minute))
			}
			if want := "Spot ECI will be released in 5 minutes"; notices[0].Message != want {
				t.Errorf("message %q, want %q", notices[0].Message, want)
			}
		})
	}
}

// SPEC 3: checks on a 5-minute grid anchored at creation, the notice exactly
// the lead before the release, over random price paths and creation times.
func TestReleaseGridAndNoticeLead(t *testing.T) {
	for _, lead := range []time.Duration{5 * time.Minute, 3 * time.Minute, 90 * time.Second} {
		t.Run(lead.String(), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(lead)))
			pool := hangzhouC5()
			prices := markettest.New(1000)
			for m := 0; m < 24*60; m += 7 {
				prices.SetPrice(pool, t0.Add(time.Duration(m)*time.Minute+time.Duration(rng.IntN(60))*time.Second), 0.04+rng.Float64()*0.04)
			}
			c := market.New(market.Config{Prices: prices, NoticeLead: lead})
			var all []*market.Instance
			for i := range 200 {
				at := t0.Add(time.Duration(rng.IntN(12*3600)) * time.Second)
				c.Advance(at)
				c.Ready()
				in, err := c.Create(at, order(fmt.Sprint("eci-", i), limitBid(0.07, rng.IntN(3)), pool))
				if errors.Is(err, market.ErrBidBelowMarket) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, in)
			}
			run(c, t0.Add(24*time.Hour))
			released := 0
			for _, in := range all {
				if in.State != market.Released {
					continue
				}
				released++
				since := in.NoticeAt.Sub(in.Created)
				if since%(5*time.Minute) != 0 || since < in.Bid.Protection || since == 0 {
					t.Errorf("%s: notice %v after creation: not a check on the grid after protection %v", in.ID, since, in.Bid.Protection)
				}
				if got := in.ReleaseAt.Sub(in.NoticeAt); got != lead || !in.Ended.Equal(in.ReleaseAt) {
					t.Errorf("%s: release %v after notice, ended %v, want %v", in.ID, got, in.Ended, lead)
				}
				if q := prices.Quote(pool, in.NoticeAt); q.Price <= in.Bid.Limit {
					t.Errorf("%s: released with price %v within limit %v", in.ID, q.Price, in.Bid.Limit)
				}
			}
			if released < 20 {
				t.Fatalf("only %d of %d released: the price path does not exercise reclaims", released, len(all))
			}
		})
	}
}

// SPEC 3: SpotAsPriceGo bids pay-as-you-go, so price alone never releases it.
func TestSpotAsPriceGoNeverReleasedForPrice(t *testing.T) {
	pool := hangzhouC5()
	prices := markettest.New(10)
	c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	in := mustCreate(t, c, t0, order("eci-go", market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}, pool))
	for h := 1; h < 48; h++ {
		prices.SetPrice(pool, t0.Add(time.Duration(h)*time.Hour), []float64{0.3, 0.622, 0.1}[h%3])
	}
	events := run(c, t0.Add(48*time.Hour))
	if n := eventsOf(events, market.EventToBeReleased); len(n) != 0 || in.State != market.Running {
		t.Fatalf("SpotAsPriceGo at price <= pay-as-you-go: notices %v, state %v", n, in.State)
	}
	prices.SetPrice(pool, t0.Add(49*time.Hour), 0.623) // above pay-as-you-go: only an operator can do this
	run(c, t0.Add(50*time.Hour))
	if in.State != market.Released || in.Reason != market.ReasonPrice {
		t.Fatalf("state %v reason %v, want released for price", in.State, in.Reason)
	}
}

// SPEC 3: per second; protection at the purchase price, then the real-time one.
func TestBillOnScriptedPricePath(t *testing.T) {
	pool := hangzhouC5()
	prices := markettest.New(10)
	c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	created := t0.Add(17 * time.Second)
	in := mustCreate(t, c, created, order("eci-bill", limitBid(0.1, 1), pool))
	// During protection the price moves, which must not matter.
	prices.SetPrice(pool, created.Add(20*time.Minute), 0.08)
	// After protection: 0.08 until +1h30m07s, then 0.09, then 0.2 (above the
	// limit) at +2h01m: noticed at the check +2h05m, released at +2h10m.
	prices.SetPrice(pool, created.Add(90*time.Minute+7*time.Second), 0.09)
	prices.SetPrice(pool, created.Add(121*time.Minute), 0.2)
	run(c, created.Add(3*time.Hour))
	if in.State != market.Released || !in.Ended.Equal(created.Add(130*time.Minute)) {
		t.Fatalf("state %v ended %v, want released at +2h10m", in.State, in.Ended.Sub(created))
	}
	want := 0.056*3600 + 0.08*(30*60+7) + 0.09*(30*60+53) + 0.2*9*60 // CNY·s/h
	want /= 3600
	got := market.Total(market.Bill(prices, in, created.Add(10*time.Hour)))
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("bill %.9f, want %.9f", got, want)
	}
	// A live bill so far is the same computation up to now.
	partial := market.Total(market.Bill(prices, in, created.Add(30*time.Minute)))
	if math.Abs(partial-0.056/2) > 1e-12 {
		t.Errorf("bill after 30 minutes %.9f, want %.9f", partial, 0.056/2)
	}
	payg := mustCreate(t, c, created, order("eci-payg", market.Bid{Strategy: market.NoSpot}, pool))
	c.Stop(created.Add(1234*time.Second), payg.ID, "deleted")
	if got, want := market.Total(c.Ready().Lines), 0.622*1234/3600; math.Abs(got-want) > 1e-12 {
		t.Errorf("pay-as-you-go bill %.9f, want %.9f", got, want)
	}
}

// SPEC 3: fallback to pay-as-you-go when spot stock is short, never reclaimed.
func TestFallback(t *testing.T) {
	pool := hangzhouC5()
	prices := markettest.New(0)
	c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	if _, err := c.Create(t0, order("eci-nofb", market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}, pool)); !errors.Is(err, market.ErrInsufficientStock) {
		t.Fatalf("no stock, no fallback: err = %v, want ErrInsufficientStock", err)
	}
	in := mustCreate(t, c, t0, order("eci-fb", market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour, Fallback: true}, pool))
	rd := c.Ready()
	if in.Spot || !in.Degraded || in.PurchasePrice != 0.622 {
		t.Fatalf("fallback instance spot=%v degraded=%v price=%v, want pay-as-you-go at 0.622", in.Spot, in.Degraded, in.PurchasePrice)
	}
	if len(eventsOf(rd.Events, market.EventDegraded)) != 1 {
		t.Fatalf("events %v, want one SpotDegraded", rd.Events)
	}
	prices.SetPrice(pool, t0.Add(2*time.Hour), 5)
	run(c, t0.Add(10*time.Hour))
	if in.State != market.Running || c.Held(pool) != 0 {
		t.Fatalf("degraded instance state %v, held %d: it must never be reclaimed nor hold spot stock", in.State, c.Held(pool))
	}
	// The guide's example 4: stock, but none at or under the limit. With
	// fallback, pay-as-you-go and SpotDegraded naming the limit; without, an
	// error.
	prices.SetStock(pool, t0.Add(10*time.Hour), 5)
	low := market.Bid{Strategy: market.SpotWithPriceLimit, Limit: 0.05, Protection: time.Hour}
	if _, err := c.Create(t0.Add(10*time.Hour), order("eci-low", low, pool)); !errors.Is(err, market.ErrBidBelowMarket) {
		t.Fatalf("limit below the market without fallback: err = %v, want ErrBidBelowMarket", err)
	}
	low.Fallback = true
	in = mustCreate(t, c, t0.Add(10*time.Hour), order("eci-low-fb", low, pool))
	if in.Spot || !in.Degraded || in.PurchasePrice != 0.622 {
		t.Fatalf("limit below the market with fallback: spot=%v degraded=%v price=%v, want pay-as-you-go at 0.622", in.Spot, in.Degraded, in.PurchasePrice)
	}
	rd = c.Ready()
	if ev := eventsOf(rd.Events, market.EventDegraded); len(ev) != 1 || !strings.Contains(ev[0].Message, "price limit 0.05") {
		t.Fatalf("events %v, want one SpotDegraded naming the price limit", rd.Events)
	}
}

// SPEC 3: stock per pool, consumed by running spot instances; a shortage
// releases just enough of them, one per check.
func TestStockAccounting(t *testing.T) {
	pool := hangzhouC5()
	other := markettest.Pool(1, "cn-hangzhou-h", "ecs.c5.large", 0.622, 0.06)
	prices := markettest.New(3)
	c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	bid := market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}
	var mine []*market.Instance
	for i := range 3 {
		mine = append(mine, mustCreate(t, c, t0.Add(time.Duration(i)*time.Minute), order(fmt.Sprint("eci-", i), bid, pool, other)))
	}
	if c.Held(pool) != 3 {
		t.Fatalf("held %d in the cheapest pool, want 3", c.Held(pool))
	}
	spill := mustCreate(t, c, t0.Add(3*time.Minute), order("eci-spill", bid, pool, other))
	if spill.Offering != other {
		t.Fatalf("4th instance in %s, want the next cheapest pool with stock", spill.Offering.Zone)
	}
	c.Stop(t0.Add(4*time.Minute), "eci-spill", "deleted")
	if c.Held(other) != 0 {
		t.Fatalf("stopping frees its unit: held %d", c.Held(other))
	}
	prices.SetStock(pool, t0.Add(2*time.Hour), 1)
	events := run(c, t0.Add(3*time.Hour))
	notices := eventsOf(events, market.EventToBeReleased)
	if len(notices) != 2 || notices[0].Instance != "eci-0" || notices[1].Instance != "eci-1" {
		t.Fatalf("notices %v, want eci-0 and eci-1 at their first checks after the cut", notices)
	}
	if mine[2].State != market.Running || c.Held(pool) != 1 {
		t.Fatalf("eci-2 %v, held %d: want the last one kept", mine[2].State, c.Held(pool))
	}
	if _, err := c.Create(t0.Add(3*time.Hour), order("eci-x", bid, pool)); !errors.Is(err, market.ErrInsufficientStock) {
		t.Fatalf("create in a full pool: %v", err)
	}
}

// Preference groups come first; within a group the cheapest pool wins; a
// limit below every price is refused.
func TestCreatePicksCheapestOfFirstGroup(t *testing.T) {
	cheap := markettest.Pool(0, "z-a", "ecs.c6.large", 0.39, 0.05)
	dear := markettest.Pool(1, "z-b", "ecs.c6.large", 0.39, 0.09)
	later := markettest.Pool(2, "z-a", "ecs.g6.large", 0.5, 0.01)
	c := market.New(market.Config{Prices: markettest.New(5), NoticeLead: market.DefaultNoticeLead})
	groups := [][]*catalog.Offering{{dear, cheap}, {later}}
	in, err := c.Create(t0, market.Order{ID: "a", Bid: market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}, Candidates: groups})
	if err != nil || in.Offering != cheap || in.PurchasePrice != 0.05 {
		t.Fatalf("got %v %v, want the cheapest pool of the first group", in, err)
	}
	in, err = c.Create(t0, market.Order{ID: "b", Bid: limitBid(0.02, 1), Candidates: groups})
	if err != nil || in.Offering != later {
		t.Fatalf("limit 0.02: got %v %v, want the second group, the only one within the limit", in, err)
	}
	if _, err := c.Create(t0, market.Order{ID: "c", Bid: limitBid(0.001, 1), Candidates: groups}); !errors.Is(err, market.ErrBidBelowMarket) {
		t.Fatalf("limit below every price: %v", err)
	}
	if _, err := c.Create(t0, market.Order{ID: "a", Bid: limitBid(1, 1), Candidates: groups}); !errors.Is(err, market.ErrExists) {
		t.Fatalf("same ID twice: %v", err)
	}
}

// A restarted caller restores the saved instances and replays the missed
// checks: the outcome is the one an uninterrupted run reaches.
func TestRestoreReplaysMissedChecks(t *testing.T) {
	pool := hangzhouC5()
	prices := markettest.New(100)
	prices.SetPrice(pool, t0.Add(150*time.Minute), 0.5)
	build := func() (*market.Core, []*market.Instance) {
		c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
		var ins []*market.Instance
		for i := range 5 {
			ins = append(ins, mustCreate(t, c, t0.Add(time.Duration(i*37)*time.Second), order(fmt.Sprint("eci-", i), limitBid(0.1, 1+i%2), pool)))
		}
		return c, ins
	}
	straight, want := build()
	run(straight, t0.Add(5*time.Hour))

	first, saved := build()
	run(first, t0.Add(100*time.Minute))
	copies := make([]*market.Instance, len(saved))
	for i, in := range saved {
		cp := *in
		copies[i] = &cp
	}
	second := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	if err := second.Restore(t0.Add(100*time.Minute), copies); err != nil {
		t.Fatal(err)
	}
	second.Advance(t0.Add(5 * time.Hour)) // one jump: the server was down
	for i := range want {
		w, g := want[i], copies[i]
		if g.State != w.State || !g.NoticeAt.Equal(w.NoticeAt) || !g.Ended.Equal(w.Ended) {
			t.Errorf("%s: restored run %v notice %v end %v; straight run %v %v %v", w.ID, g.State, g.NoticeAt, g.Ended, w.State, w.NoticeAt, w.Ended)
		}
	}
	if second.Held(pool) != 0 {
		t.Errorf("held %d after every release", second.Held(pool))
	}
}

func TestBidValidate(t *testing.T) {
	for _, b := range []market.Bid{
		{Strategy: "Cheap"},
		{Strategy: market.SpotAsPriceGo, Limit: 1},
		{Strategy: market.SpotWithPriceLimit},
		{Strategy: market.SpotAsPriceGo, Protection: -time.Hour},
		{Strategy: market.SpotAsPriceGo, Protection: 7 * time.Hour},
		{Strategy: market.SpotAsPriceGo, Protection: 90 * time.Minute},
	} {
		if b.Validate() == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}

// Without a notice lead the release comes at the check itself: AWS-like rules.
func TestZeroLeadReleasesAtTheCheck(t *testing.T) {
	pool := hangzhouC5()
	prices := markettest.New(1)
	c := market.New(market.Config{Prices: prices, CheckInterval: 10 * time.Minute})
	in := mustCreate(t, c, t0, order("eci-aws", market.Bid{Strategy: market.SpotAsPriceGo}, pool))
	prices.SetStock(pool, t0.Add(25*time.Minute), 0)
	c.Advance(t0.Add(30 * time.Minute))
	if in.State != market.Released || !in.Ended.Equal(t0.Add(30*time.Minute)) || !in.NoticeAt.Equal(in.Ended) {
		t.Fatalf("state %v notice %v end %v, want released at the check at +30m", in.State, in.NoticeAt, in.Ended)
	}
}

// A pool whose stock ran short is avoided for the cooldown by orders with
// another candidate in their preference group, and the event says so; with
// no other candidate it is used; after the cooldown it is the cheapest
// again; a restored core remembers it.
func TestAvoidsPoolThatRanShort(t *testing.T) {
	short := markettest.Pool(0, "cn-hangzhou-i", "ecs.c5.large", 0.622, 0.056)
	other := markettest.Pool(1, "cn-hangzhou-j", "ecs.c5.large", 0.622, 0.07)
	prices := markettest.New(10)
	c := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	in := mustCreate(t, c, t0, order("eci-1", limitBid(0.1, 0), short, other))
	if in.Offering != short {
		t.Fatalf("first order landed in %s, want the cheaper %s", in.Offering.Zone, short.Zone)
	}
	prices.SetStock(short, t0.Add(time.Minute), 0)
	run(c, t0.Add(10*time.Minute)) // the check at t0+5m notices, the release follows
	if in.State != market.Released || in.Reason != market.ReasonStock {
		t.Fatalf("instance %v (%s), want released for stock", in.State, in.Reason)
	}
	prices.SetStock(short, t0.Add(11*time.Minute), 10) // stock is back at once

	at := t0.Add(12 * time.Minute)
	next := mustCreate(t, c, at, order("eci-2", limitBid(0.1, 1), short, other))
	created := c.Ready().Events
	if next.Offering != other {
		t.Fatalf("replacement landed in %s, want %s: %s ran short 7 minutes ago", next.Offering.Zone, other.Zone, short.Zone)
	}
	if msg := created[len(created)-1].Message; !strings.Contains(msg, "avoided ecs.c5.large in cn-hangzhou-i: its spot stock ran short at 2026-04-08T08:05:00Z") {
		t.Errorf("creation event %q does not say which pool was avoided and why", msg)
	}
	if only := mustCreate(t, c, at, order("eci-3", limitBid(0.1, 1), short)); only.Offering != short {
		t.Errorf("the only candidate was refused: landed in %s", only.Offering.Zone)
	}

	restored := market.New(market.Config{Prices: prices, NoticeLead: market.DefaultNoticeLead})
	if err := restored.Restore(at, []*market.Instance{in}); err != nil {
		t.Fatal(err)
	}
	if again := mustCreate(t, restored, at, order("eci-4", limitBid(0.1, 1), short, other)); again.Offering != other {
		t.Errorf("after a restore the order landed in %s: the shortage was forgotten", again.Offering.Zone)
	}
	later := t0.Add(5*time.Minute + market.DefaultShortCooldown)
	if after := mustCreate(t, c, later, order("eci-5", limitBid(0.1, 1), short, other)); after.Offering != short {
		t.Errorf("after the cooldown the order landed in %s, want the cheapest %s", after.Offering.Zone, short.Zone)
	}
}
