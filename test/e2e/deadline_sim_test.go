package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/prices"
	simdeadline "github.com/spoteci/spoteci/internal/sim/deadline"
	"github.com/spoteci/spoteci/internal/vnode/deadlines"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestDeadlineDecisionsMatchSimulator runs one availability trace through
// the simulator and through the live path (a service on the model runtime
// replaying it with --trace, its node, a one-pod deadline Job) and
// compares every decision: what the pod ran on, in order, and when, in
// market time. The trace has spot for an hour, none for two, then spot
// again; the job is 2 hours of work due in 6, without checkpoints or
// protection. Both take spot, are reclaimed when it goes, and, behind the
// uniform schedule with the work lost, finish on demand.
func TestDeadlineDecisionsMatchSimulator(t *testing.T) {
	skipWithoutCluster(t)
	const gap = 10 * time.Minute // market time
	data := make([]int, 60)
	for i := range data {
		if i < 6 || i >= 18 {
			data[i] = 1
		}
	}
	file := filepath.Join(t.TempDir(), "trace.json")
	raw, _ := json.Marshal(map[string]any{"metadata": map[string]any{"gap_seconds": gap.Seconds()}, "data": data})
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// The trace's tick 0 is the service's start, give or take the process
	// start: well under a tick (2.5 s at x240).
	booted := time.Now()
	st, err := bootModelStack("spoteci-trace", "--trace", file)
	if st != nil {
		defer func() {
			if err := st.stop(); err != nil {
				t.Error(err)
			}
		}()
	}
	if err != nil {
		t.Fatal(err)
	}
	market := func(wall time.Duration) time.Duration { return wall * time.Duration(scale) }

	ns := namespace(t)
	const typ = "ecs.c5.large"
	work, due := 2*time.Hour/time.Duration(scale), 6*time.Hour/time.Duration(scale) // wall: 30 s and 90 s
	ann := map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: work.String(),
		deadlineAt: due.String(), expectedDuration: work.String(), deadlinePolicy: "uniform-progress"}
	manifest := onStack(job("traced", ann, "sleep 30", indexedPerIndex+ignoreDisruption), st.name)
	apply(t, ns, manifest)
	eventually(t, 3*due, "the Job Complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "traced", "-o", `jsonpath={.status.conditions[?(@.type=="Complete")].status}`)
		return out == "True", kubectl(t, "-n", ns, "get", "pods,events")
	})
	started, err := time.Parse(time.RFC3339, kubectl(t, "-n", ns, "get", "job", "traced", "-o", "jsonpath={.status.startTime}"))
	if err != nil {
		t.Fatal(err)
	}

	// The live decisions, from the DeadlinePolicy events: the choice, and
	// when, from the Job's start, in market time.
	var live []decision
	out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=DeadlinePolicy", "--sort-by", ".firstTimestamp",
		"-o", `jsonpath={range .items[*]}{.firstTimestamp}|{.message}{"\n"}{end}`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		when, msg, _ := strings.Cut(line, "|")
		at, err := time.Parse(time.RFC3339, when)
		if err != nil {
			t.Fatalf("event time %q: %v", when, err)
		}
		_, rest, _ := strings.Cut(msg, ": ")
		choice, _, _ := strings.Cut(rest, ";")
		live = append(live, decision{choice, market(at.Sub(started))})
	}

	// The simulator: the same trace, read as the service read it, from the
	// tick the Job started at.
	trace, err := prices.ReadTrace(file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := simdeadline.NewMarket(simdeadline.MarketConfig{Name: "traced", Trace: trace,
		Rules: "eci", OnDemand: 1, SpotPrice: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	startTick := int(market(started.Sub(booted)) / gap)
	simJob := simdeadline.Job{Work: 2 * time.Hour, Deadline: 6 * time.Hour, Changeover: deadlines.DefaultChangeover, LosesProgress: true}
	p, err := simdeadline.NewPolicy(simdeadline.PolicyUniformProgress, m, simJob, startTick)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Run(simJob, p, startTick, simdeadline.RunOptions{Record: true})
	var sim []decision
	for _, l := range r.Lives {
		choice := map[simdeadline.Mode]string{simdeadline.Spot: "spot", simdeadline.OnDemand: "pay-as-you-go"}[l.Mode]
		sim = append(sim, decision{choice, l.From.Sub(m.At(startTick))})
	}
	t.Logf("the Job started at tick %d of the trace; live decisions %v; the simulator's %v (finished %v after %v)", startTick, live, sim, r.Finished, r.Finish)

	choices := func(ds []decision) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.choice)
		}
		return out
	}
	if !slices.Equal(choices(live), choices(sim)) {
		t.Fatalf("live decisions %v, the simulator's %v", choices(live), choices(sim))
	}
	// When: within two ticks (the live pod is replaced at the notice, 5
	// market minutes before the simulator's release; event times are whole
	// seconds, 4 market minutes), and, for a replacement, after the Job
	// controller's back-off of the index: 10 s on the wall clock
	// (DefaultJobPodFailureBackOff), which the simulator does not have.
	const jobBackoff = 10 * time.Second
	for i := range live {
		late := 2 * gap
		if i > 0 {
			late += market(jobBackoff)
		}
		if d := live[i].at - sim[i].at; d < -2*gap || d > late {
			t.Errorf("decision %d (%s): live at %v, the simulator at %v", i, live[i].choice, live[i].at, sim[i].at)
		}
	}
	if want := []string{"spot", "pay-as-you-go"}; !slices.Equal(choices(sim), want) {
		t.Errorf("the trace was meant to give %v, gave %v: the test no longer exercises a reclaim", want, choices(sim))
	}
}

// decision is a deadline decision: the choice, and when, from the Job's
// start, in market time.
type decision struct {
	choice string
	at     time.Duration
}

func (d decision) String() string { return d.choice + " at " + d.at.String() }
