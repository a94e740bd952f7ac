package sim_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/market/markettest"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRules(t *testing.T) {
	eci := sim.ECI(0)
	if eci.CheckInterval != market.DefaultCheckInterval || eci.NoticeLead != market.DefaultNoticeLead || eci.NoProtection || eci.Grid != 0 {
		t.Errorf("ECI(0) = %+v, want 5-minute checks and notice, protection kept, no grid", eci)
	}
	bid := market.Bid{Strategy: market.SpotAsPriceGo, Protection: 2 * time.Hour}
	if got := eci.Bid(bid); got != bid {
		t.Errorf("eci rules changed the bid: %+v", got)
	}
	if got := eci.Launch(t0.Add(7 * time.Second)); !got.Equal(t0.Add(7 * time.Second)) {
		t.Errorf("eci launch moved to %v", got)
	}

	aws := sim.AWS(10*time.Minute, t0)
	if cfg := aws.Config(nil); cfg.CheckInterval != 10*time.Minute || cfg.NoticeLead != 0 {
		t.Errorf("AWS config %+v, want checks every tick and no notice", cfg)
	}
	if got := aws.Bid(bid); got.Protection != 0 {
		t.Errorf("aws rules kept protection %v", got.Protection)
	}
	for _, tc := range []struct{ at, want time.Duration }{
		{0, 0}, {time.Second, 10 * time.Minute}, {10 * time.Minute, 10 * time.Minute},
		{-time.Second, 0}, {-10*time.Minute - time.Second, -10 * time.Minute},
	} {
		if got := aws.Launch(t0.Add(tc.at)); !got.Equal(t0.Add(tc.want)) {
			t.Errorf("aws launch of t0%+v = t0%+v, want t0%+v", tc.at, got.Sub(t0), tc.want)
		}
	}

	if _, err := sim.ParseRules("gcp", time.Minute, t0, 0); err == nil || !strings.Contains(err.Error(), "eci or aws") {
		t.Errorf("ParseRules(gcp) = %v, want the names of the rules", err)
	}
	if _, err := sim.ParseRules("aws", 0, t0, 0); err == nil {
		t.Error("aws rules without a grid: no error")
	}
	if r, err := sim.ParseRules("eci", 0, t0, 3*time.Minute); err != nil || r.NoticeLead != 3*time.Minute {
		t.Errorf("ParseRules(eci, 3m) = %+v, %v", r, err)
	}
}

// The AWS rules on the core: an instance launched on the grid is checked at
// every tick and released at the first tick without stock, with no notice.
func TestAWSRulesOnTheCore(t *testing.T) {
	pool := markettest.Pool(0, "z", "t", 1, 0.3)
	tr := &prices.Trace{Gap: 10 * time.Minute, Start: t0, Data: []bool{true, true, true, false, true}}
	src := sim.NewSource(sim.SourceConfig{Traces: []*prices.Trace{tr}, Stock: 1})
	rules := sim.AWS(tr.Gap, t0)
	core := market.New(rules.Config(src))
	in, err := core.Create(rules.Launch(t0.Add(time.Second)), market.Order{ID: "a",
		Bid: rules.Bid(market.Bid{Strategy: market.SpotAsPriceGo, Protection: time.Hour}), Candidates: [][]*catalog.Offering{{pool}}})
	if err != nil {
		t.Fatal(err)
	}
	for core.NextDue().Before(t0.Add(time.Hour)) && !core.NextDue().IsZero() {
		core.Advance(core.NextDue())
	}
	if in.State != market.Released || !in.Ended.Equal(t0.Add(30*time.Minute)) || !in.NoticeAt.Equal(in.ReleaseAt) {
		t.Errorf("instance %v ended %v (notice %v): want released at the tick without stock, t0+30m, with no notice", in.State, in.Ended.Sub(t0), in.NoticeAt.Sub(t0))
	}
}

func TestSource(t *testing.T) {
	pool := markettest.Pool(3, "cn-hangzhou-i", "ecs.c5.large", 0.622, 0.056)
	other := markettest.Pool(4, "cn-hangzhou-j", "ecs.c5.large", 0.622, 0.06)
	tr := &prices.Trace{Gap: time.Hour, Start: t0, Data: []bool{true, false}, Zone: "cn-hangzhou-i"}

	fixed := sim.NewSource(sim.SourceConfig{Traces: []*prices.Trace{tr}})
	if q := fixed.Quote(pool, t0); q.Price != 0.056 || q.Stock != prices.DefaultStock {
		t.Errorf("fixed quote at t0 = %+v, want the snapshot price and the default stock", q)
	}
	if q := fixed.Quote(pool, t0.Add(90*time.Minute)); q.Stock != 0 {
		t.Errorf("stock when the trace says 0: %d", q.Stock)
	}
	if q := fixed.Quote(other, t0.Add(90*time.Minute)); q.Stock != prices.DefaultStock {
		t.Errorf("a pool the trace does not cover lost its stock: %+v", q)
	}
	if p := fixed.Path(pool, t0, t0.Add(48*time.Hour)); len(p) != 1 || p[0].Price != 0.056 {
		t.Errorf("fixed path %v, want one point", p)
	}
	if next := fixed.NextChange(t0.Add(90 * time.Minute)); !next.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("next change %v, want the next tick of the trace", next.Sub(t0))
	}
	if next := sim.NewSource(sim.SourceConfig{}).NextChange(t0); !next.IsZero() {
		t.Errorf("fixed prices without traces change at %v", next)
	}

	// The model's prices are the model's, cached or not.
	m := prices.NewModel(7)
	model := sim.NewSource(sim.SourceConfig{Model: &m, Stock: 3})
	for _, at := range []time.Duration{0, time.Minute, 59 * time.Minute, time.Hour, 25*time.Hour + time.Second} {
		if got, want := model.Quote(pool, t0.Add(at)), (market.Quote{Price: m.Price(pool, t0.Add(at)), Stock: 3}); got != want {
			t.Errorf("model quote at t0+%v = %+v, want %+v", at, got, want)
		}
	}
	if next := model.NextChange(t0.Add(90 * time.Minute)); !next.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("model's next change %v, want the next hour", next.Sub(t0))
	}
	path := model.Path(pool, t0, t0.Add(5*time.Hour))
	if want := m.Path(pool, t0, t0.Add(5*time.Hour)); len(path) != len(want) || path[0] != want[0] {
		t.Errorf("model path %v, want %v", path, want)
	}
}

func TestLoadTraces(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("b.json", `{"metadata": {"gap_seconds": 600}, "data": [1, 0, 1]}`)
	a := write("a.json", `{"metadata": {"gap_seconds": 195}, "data": [0, 1]}`)
	write("notes.txt", "not a trace")

	traces, err := sim.LoadTraces(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) != 2 || traces[0].Name != "a" || traces[1].Name != "b" || traces[0].Gap != 195*time.Second || len(traces[1].Data) != 3 {
		t.Errorf("traces %+v, want a then b", traces)
	}
	one, err := sim.LoadTraces(a)
	if err != nil || len(one) != 1 || one[0].Name != "a" {
		t.Errorf("one file: %+v, %v", one, err)
	}
	if _, err := sim.LoadTraces(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing path: no error")
	}
	if _, err := sim.LoadTraces(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.json") {
		t.Errorf("an empty folder: %v", err)
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "x.json"), []byte(`{"metadata": {"gap_seconds": 600}, "data": [2]}`), 0o644)
	if _, err := sim.LoadTraces(bad); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("a bad trace: %v, want its file named", err)
	}
}

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := sim.NewBar(&buf, "runs")
	b.Start(400)
	for range 400 {
		b.Add(1)
	}
	b.Done()
	out := buf.String()
	if n := strings.Count(out, "\r"); n != 101 {
		t.Errorf("%d redraws, want one per percent (101)", n)
	}
	if !strings.HasSuffix(out, "100% 400/400\n") {
		t.Errorf("bar ends %q", out[max(0, len(out)-40):])
	}
}
