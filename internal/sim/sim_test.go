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
	src := prices.NewBook(prices.Config{Fixed: true, DefaultStock: 1})
	src.AddTrace(tr)
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
