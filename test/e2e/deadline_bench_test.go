package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/plot"
	"github.com/spoteci/spoteci/internal/prices"
	simdeadline "github.com/spoteci/spoteci/internal/sim/deadline"
	"github.com/spoteci/spoteci/internal/vnode/deadlines"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// jobBill is a row of `spoteci bill --by job -o json`.
type jobBill struct {
	Key                             string
	Instances                       int
	Seconds, Amount, OnDemandAmount float64
	Met                             string
}

// BenchmarkModelDeadlineJob runs three Jobs of SPOTECI_DEADLINE_PODS pods
// (default 100) side by side on the model runtime, each pod 60 s of work
// (4 market hours at the e2e's x240), through a reclaim storm that takes
// the pool's stock away for good 30 s in: a deadline Job (uniform
// progress, deadline 240 s after its start), the same Job as plain spot,
// and all pay-as-you-go. It reports whether each met the deadline, each
// one's bill, and the simulator's prediction of the deadline Job's bill:
// the same job, policy and availability (spot for 30 s, then none) run by
// internal/sim/deadline. Run with -benchtime 1x.
func BenchmarkModelDeadlineJob(b *testing.B) {
	startModel(b)
	n := 100
	if v, err := strconv.Atoi(os.Getenv("SPOTECI_DEADLINE_PODS")); err == nil && v > 0 {
		n = v
	}
	const (
		typ      = "ecs.c5.large"
		price    = 0.05
		work     = 60 * time.Second
		deadline = 240 * time.Second
		stormAt  = 30 * time.Second
	)
	for b.Loop() {
		ns := namespace(b)
		modelCLI(b, "market", "set", "--type", typ, "--price", fmt.Sprint(price), "--stock", "100000")
		spot := map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: work.String()}
		withDeadline := map[string]string{deadlineAt: deadline.String(), expectedDuration: work.String()}
		for k, v := range spot {
			withDeadline[k] = v
		}
		payg := map[string]string{specs: typ, eciapi.ModelRunFor: work.String()}
		shape := fmt.Sprintf("  parallelism: %d\n  completions: %d\n", n, n) + indexedPerIndex + ignoreDisruption
		start := time.Now()
		for name, ann := range map[string]map[string]string{"deadline": withDeadline, "spot": spot, "payg": payg} {
			apply(b, ns, onModel(job(name, ann, "sleep 60", shape)))
		}
		samples := newJobSamples()
		for time.Now().Before(start.Add(stormAt)) {
			samples.take(b, ns)
			time.Sleep(time.Second)
		}
		modelCLI(b, "market", "set", "--type", typ, "--stock", "0")
		b.Logf("storm: the stock of %s gone %v after the Jobs' creation", typ, time.Since(start).Round(time.Second))

		finished := map[string]time.Duration{}
		for time.Since(start) < deadline+30*time.Second && len(finished) < 3 {
			samples.take(b, ns)
			for _, name := range []string{"deadline", "spot", "payg"} {
				if _, ok := finished[name]; ok {
					continue
				}
				out := kubectl(b, "-n", ns, "get", "job", name, "-o", `jsonpath={.status.succeeded} {.status.startTime} {.status.completionTime}`)
				if f := strings.Fields(out); len(f) == 3 && f[0] == fmt.Sprint(n) {
					s, _ := time.Parse(time.RFC3339, f[1])
					c, _ := time.Parse(time.RFC3339, f[2])
					finished[name] = c.Sub(s)
					b.Logf("Job %s complete %v after its start", name, c.Sub(s))
				}
			}
			time.Sleep(time.Second)
		}
		var rows []jobBill
		if err := json.Unmarshal([]byte(modelCLI(b, "bill", "--by", "job", "-o", "json")), &rows); err != nil {
			b.Fatal(err)
		}
		bills := map[string]jobBill{}
		for _, r := range rows {
			if job, ok := strings.CutPrefix(r.Key, ns+"/"); ok {
				bills[job] = r
			}
		}
		for _, name := range []string{"deadline", "spot", "payg"} {
			r := bills[name]
			met := 0.0
			if d, ok := finished[name]; ok && d <= deadline {
				met = 1
			}
			b.Logf("Job %-8s deadline met %v; %d instances, %.2f instance-hours, bill %.4f CNY, pay-as-you-go %.4f CNY", name, met == 1, r.Instances, r.Seconds/3600, r.Amount, r.OnDemandAmount)
			b.ReportMetric(met, name+"-met")
			b.ReportMetric(r.Amount, name+"-CNY")
		}

		samples.take(b, ns)
		samples.plot(b, start, start.Add(stormAt), start.Add(deadline))

		// The simulator's prediction, in market time, with the pool's
		// pay-as-you-go price as the bills give it.
		od := bills["payg"].OnDemandAmount / (bills["payg"].Seconds / 3600)
		predicted := predictDeadlineBill(b, float64(scale), work, deadline, stormAt, price, od) * float64(n)
		live := bills["deadline"].Amount
		b.Logf("the deadline Job's bill %.4f CNY; the simulator's prediction %.4f CNY (%.1f%%); all pay-as-you-go %.4f CNY",
			live, predicted, 100*(live/predicted-1), bills["payg"].Amount)
		b.ReportMetric(predicted, "sim-CNY")
		b.ReportMetric(live/predicted, "live/sim")
		b.ReportMetric(live/bills["payg"].Amount, "deadline/payg")

		deleteJobs(b, ns, "deadline", "spot", "payg")
		modelCLI(b, "market", "set", "--type", typ, "--reset")
	}
}

// predictDeadlineBill runs one pod of the deadline Job in the simulator:
// uniform progress under ECI's rules, without protection or checkpoints (a
// reclaimed pod starts over), on a trace with
// spot until the storm and none after, at the live market's time scale.
func predictDeadlineBill(b *testing.B, scale float64, work, deadline, stormAt time.Duration, spot, od float64) float64 {
	gap := time.Minute
	ticks := int(float64(deadline+time.Minute)*scale/float64(gap)) + 10
	data := make([]bool, ticks)
	for i := range data {
		data[i] = time.Duration(i)*gap < time.Duration(float64(stormAt)*scale)
	}
	m, err := simdeadline.NewMarket(simdeadline.MarketConfig{Name: "live", Trace: &prices.Trace{Gap: gap, Data: data},
		Rules: "eci", OnDemand: od, SpotPrice: spot})
	if err != nil {
		b.Fatal(err)
	}
	job := simdeadline.Job{Work: time.Duration(float64(work) * scale), Deadline: time.Duration(float64(deadline) * scale),
		Changeover: deadlines.DefaultChangeover, LosesProgress: true}
	p, err := simdeadline.NewPolicy(simdeadline.PolicyUniformProgress, m, job, 0)
	if err != nil {
		b.Fatal(err)
	}
	r := m.Run(job, p, 0, simdeadline.RunOptions{})
	b.Logf("simulator: finished %v after %v, %d reclaims, spot %v and pay-as-you-go %v of work, cost %.5f CNY a pod",
		r.Finished, r.Finish, r.Preemptions, r.Work[simdeadline.Spot], r.Work[simdeadline.OnDemand], r.Cost)
	return r.Cost
}

// jobSamples are the pods of each Job over time: Succeeded, and Running on
// spot or pay-as-you-go (the node's spoteci.io/price annotation says which).
type jobSamples struct {
	series map[string]*plot.Series
	order  []string
}

func newJobSamples() *jobSamples {
	js := &jobSamples{series: map[string]*plot.Series{}}
	for _, job := range []string{"deadline", "spot", "payg"} {
		for _, what := range []string{"succeeded", "running on spot", "running pay-as-you-go"} {
			if job == "payg" && what == "running on spot" {
				continue
			}
			name := job + ": " + what
			js.order = append(js.order, name)
			js.series[name] = &plot.Series{Name: name}
		}
	}
	return js
}

// take counts the pods of the namespace now.
func (js *jobSamples) take(b *testing.B, ns string) {
	var list struct{ Items []pod }
	out, err := kubectlErr("-n", ns, "get", "pods", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &list) != nil {
		return // a sample missed: the next one counts
	}
	now := time.Now()
	counts := map[string]float64{}
	for _, p := range list.Items {
		job, _, _ := strings.Cut(p.Metadata.Name, "-")
		switch {
		case p.Status.Phase == "Succeeded":
			counts[job+": succeeded"]++
		case p.Status.Phase == "Running" && strings.HasSuffix(p.Metadata.Annotations["spoteci.io/price"], " spot"):
			counts[job+": running on spot"]++
		case p.Status.Phase == "Running":
			counts[job+": running pay-as-you-go"]++
		}
	}
	for name, s := range js.series {
		s.Points = append(s.Points, plot.Point{T: now, V: counts[name]})
	}
}

// plot draws the samples, with the storm and the deadline as bands, into
// bin/plots/.
func (js *jobSamples) plot(b *testing.B, start, storm, deadline time.Time) {
	chart := plot.Chart{Title: "A deadline Job, plain spot and pay-as-you-go through one reclaim storm (model runtime, x240)",
		YLabel: "pods", Step: true, Elapsed: true,
		Bands: []plot.Band{{From: start, To: storm, Label: "spot stock"}, {From: storm, To: deadline, Label: "no stock (reclaimed)"}}}
	for _, name := range js.order {
		chart.Series = append(chart.Series, *js.series[name])
	}
	var buf bytes.Buffer
	if err := chart.SVG(&buf); err != nil {
		b.Logf("no plot: %v", err)
		return
	}
	dir := filepath.Join(env.bin, "plots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "deadline-job.svg")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("plot: %s", path)
}
