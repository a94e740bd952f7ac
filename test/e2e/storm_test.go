package e2e

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/plot"
	"github.com/spoteci/spoteci/internal/procstat"
)

// The Job shapes a reclaim storm is measured on. Each reclaim fails a pod
// with DisruptionTarget; what differs is how the Job controller waits before
// replacing it.
var stormShapes = []struct {
	name, spec string
	ann        map[string]string
}{
	// The seed's Job: every failed pod grows one back-off for the whole Job.
	{name: "plain"},
	// Reclaims no longer count toward backoffLimit, but the back-off still
	// grows with each (kubernetes issue 130881).
	{name: "ignore-disruption", spec: ignoreDisruption},
	// The back-off is per index: each index waits for its own reclaim only.
	{name: "indexed-per-index", spec: indexedPerIndex + ignoreDisruption},
	// The same, and the node evicts each pod at the notice, so that the
	// replacement is asked for while the instance still runs.
	{name: "indexed-api-evict", spec: indexedPerIndex + ignoreDisruption, ann: map[string]string{release: "api-evict"}},
}

const (
	ignoreDisruption = "  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onPodConditions:\n      - type: DisruptionTarget\n"
	indexedPerIndex  = "  completionMode: Indexed\n  backoffLimitPerIndex: 3\n"
)

// BenchmarkJobReclaimStorm runs, for each Job shape, a Job of
// SPOTECI_STORM_PODS pods (default 200) on one pool, then takes the pool's
// stock away: every instance is noticed at its next check and released 5
// market minutes later (at the e2e's time scale, within 2.5 s), and the
// replacements land on the second type of eci-use-specs. It reports the time
// from the stock running out to every replacement Running. Run with
// -benchtime 1x; the plain shape alone may take 10 minutes.
func BenchmarkJobReclaimStorm(b *testing.B) {
	if env.skip != "" {
		b.Skip(env.skip)
	}
	n := 200
	if v, err := strconv.Atoi(os.Getenv("SPOTECI_STORM_PODS")); err == nil && v > 0 {
		n = v
	}
	kube := benchKube(b)
	// Each shape its own pools, so that one shape's storm (and the pools it
	// leaves to cool down) cannot touch the next.
	pools := [][2]string{{"ecs.g7.large", "ecs.c7.large"}, {"ecs.g6.large", "ecs.c6.large"}, {"ecs.g8i.large", "ecs.c8i.large"}, {"ecs.g8ae.large", "ecs.c8ae.large"}}
	for i, shape := range stormShapes {
		b.Run(shape.name, func(b *testing.B) {
			for b.Loop() {
				stormOnce(b, kube, n, shape.spec, shape.ann, pools[i])
			}
		})
	}
}

func stormOnce(b *testing.B, kube kubernetes.Interface, n int, spec string, extra map[string]string, pool [2]string) {
	ns := fmt.Sprintf("storm-%d", time.Now().UnixNano())
	kubectl(b, "create", "namespace", ns)
	seen := watchPods(b, kube, ns)
	defer seen.stop()
	first, second := pool[0], pool[1]
	spoteci(b, "market", "set", "--type", first, "--price", "0.1", "--stock", "100000")
	spoteci(b, "market", "set", "--type", second, "--price", "0.2", "--stock", "100000")
	defer func() {
		spoteci(b, "market", "set", "--type", first, "--reset")
		spoteci(b, "market", "set", "--type", second, "--reset")
	}()
	ann := map[string]string{specs: first + "," + second, strategy: "SpotAsPriceGo", duration: "0"}
	for k, v := range extra {
		ann[k] = v
	}
	apply(b, ns, job("storm", ann, "sleep 3600", fmt.Sprintf("  parallelism: %d\n  completions: %d\n%s", n, n, spec)))
	seen.waitFor(b, fmt.Sprintf("%d Job pods Running", n), func() bool { return seen.count("job-name=storm", running) >= n })
	original := seen.names("job-name=storm")

	requestsBefore := apiRequests(b)
	cpu := sampleCPU()
	defer cpu.stop()
	spoteci(b, "market", "set", "--type", first, "--stock", "0")
	start := time.Now()
	replaced := func() int { return seen.countExcept("job-name=storm", running, original) }
	deadline := time.Now().Add(15 * time.Minute)
	last, lastReport, lastLook, progress := 0, time.Now(), time.Now(), time.Now()
	for replaced() < n {
		// No new replacement for 11 minutes (longer than the Job's longest
		// back-off) is a stall: say what holds the pods.
		if time.Now().After(deadline) || time.Since(progress) > 11*time.Minute {
			b.Fatalf("%d of %d replacements Running after %s; the pods:\n%s", replaced(), n, time.Since(start).Round(time.Second),
				kubectl(b, "-n", ns, "get", "pods", "-o",
					"custom-columns=NAME:.metadata.name,PHASE:.status.phase,REASON:.status.reason,DELETING:.metadata.deletionTimestamp,GRACE:.metadata.deletionGracePeriodSeconds,FINALIZERS:.metadata.finalizers"))
		}
		if time.Since(lastLook) > 2*time.Second {
			// A Job whose backoffLimit the reclaims use up fails: its pods
			// are never replaced. That is the shape's figure.
			lastLook = time.Now()
			if why := kubectl(b, "-n", ns, "get", "job", "storm", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason}`); why != "" {
				b.ReportMetric(1, "job-failed")
				b.Logf("the Job failed (%s) %s after the stock ran out, with %d of %d replacements Running", why, time.Since(start).Round(100*time.Millisecond), replaced(), n)
				cleanupStorm(b, ns)
				return
			}
		}
		if k := replaced(); k != last {
			progress = time.Now()
		}
		if k := replaced(); k != last || time.Since(lastReport) > 30*time.Second {
			if time.Since(lastReport) > 5*time.Second {
				b.Logf("%5.0fs: %d of %d replacements Running", time.Since(start).Seconds(), k, n)
				lastReport = time.Now()
			}
			last = k
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	b.ReportMetric(took.Seconds(), "s-stockout-to-all-replaced-running")
	b.Logf("%d replacements Running %s after the stock ran out", n, took.Round(100*time.Millisecond))
	logRequests(b, requestsBefore, apiRequests(b), n)
	if late, before, ok := seen.afterRelease(original); ok {
		b.ReportMetric(late.Seconds(), "s-release-to-all-replaced-running")
		b.ReportMetric(float64(before), "replaced-before-release")
		b.Logf("each replacement Running at most %s after its predecessor's release (negative: before it); %d of %d before the release",
			late.Round(100*time.Millisecond), before, n)
	}

	plotStorm(b, seen, original, start, cpu.stop())
	cleanupStorm(b, ns)
}

// plotStorm draws the storm as cumulative counts over time (notices,
// releases, predecessors ended, replacements made, bound and Running) into
// bin/plots, where the time between the lines shows which step queues.
func plotStorm(b *testing.B, pt *podTimes, original map[string]bool, start time.Time, busy []plot.Point) {
	pt.mu.Lock()
	releases := map[string]time.Time{}
	for name := range original {
		if t, ok := pt.failed[name]; ok {
			releases[name] = t
		} else if t, ok := pt.noticed[name]; ok {
			releases[name] = t.Add(noticeLead())
		}
	}
	cumulative := func(name string, times map[string]time.Time, originals bool) plot.Series {
		var ts []time.Time
		for pod, t := range times {
			if original[pod] == originals && !t.Before(start) {
				ts = append(ts, t)
			}
		}
		slices.SortFunc(ts, time.Time.Compare)
		s := plot.Series{Name: name, Points: []plot.Point{{T: start, V: 0}}}
		for i, t := range ts {
			s.Points = append(s.Points, plot.Point{T: t, V: float64(i + 1)})
		}
		return s
	}
	chart := plot.Chart{Title: fmt.Sprintf("Reclaim storm of %d pods (%s)", len(original), b.Name()), YLabel: "pods", Step: true, Elapsed: true, Series: []plot.Series{
		cumulative("notices", pt.noticed, true),
		cumulative("releases", releases, true),
		cumulative("predecessors ended", pt.ended, true),
		cumulative("replacements made", pt.created, false),
		cumulative("replacements bound", pt.bound, false),
		cumulative("their instances made", pt.instanced, false),
		cumulative("their containers started", pt.started, false),
		cumulative("replacements Running", pt.running, false),
		// On the same scale: the machine at 1,000 is every core busy.
		{Name: "machine CPU busy (‰)", Points: busy},
	}}
	pt.mu.Unlock()
	logMilestones(b, chart.Series[:len(chart.Series)-1], start, len(original))
	made, ran := chart.Series[3].Points, chart.Series[7].Points
	if len(made) > 1 && len(ran) > 1 {
		from, to := made[1].T, ran[len(ran)-1].T
		b.Logf("the machine's cores were %.0f%% busy from the first replacement made to the last Running (%s)",
			100*meanBusy(busy, from, to), to.Sub(from).Round(time.Second))
	}
	dir := filepath.Join(env.bin, "plots")
	path := filepath.Join(dir, strings.NewReplacer("/", "-", " ", "_").Replace(b.Name())+fmt.Sprintf("-%d.svg", len(original)))
	var buf bytes.Buffer
	if err := chart.SVG(&buf); err != nil {
		b.Logf("no plot: %v", err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("plot: %s", path)
}

// logMilestones logs when each series reached its first, 10%, 50%, 90%
// and last pod, in seconds from start: the plot's lines as a table.
func logMilestones(b *testing.B, series []plot.Series, start time.Time, n int) {
	marks := []int{1, n / 10, n / 2, n * 9 / 10, n}
	var out strings.Builder
	fmt.Fprintf(&out, "%-28s", "seconds from the stock out")
	for _, m := range marks {
		fmt.Fprintf(&out, "%8s", "#"+strconv.Itoa(m))
	}
	for _, s := range series {
		fmt.Fprintf(&out, "\n%-28s", s.Name)
		for _, m := range marks {
			if m < len(s.Points) {
				fmt.Fprintf(&out, "%8.1f", s.Points[m].T.Sub(start).Seconds())
			} else {
				fmt.Fprintf(&out, "%8s", "-")
			}
		}
	}
	b.Logf("milestones:\n%s", out.String())
}

// cpuSampler reads how busy the machine's cores are (/proc/stat), once a
// second: whether a storm is bound by CPU or by waiting.
type cpuSampler struct {
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	points []plot.Point // busy, in thousandths
}

func sampleCPU() *cpuSampler {
	s := &cpuSampler{done: make(chan struct{})}
	go func() {
		busy0, total0, _ := procstat.Machine()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case now := <-t.C:
				busy, total, _ := procstat.Machine()
				if total > total0 {
					s.mu.Lock()
					s.points = append(s.points, plot.Point{T: now, V: 1000 * float64(busy-busy0) / float64(total-total0)})
					s.mu.Unlock()
				}
				busy0, total0 = busy, total
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the samples.
func (s *cpuSampler) stop() []plot.Point {
	s.once.Do(func() { close(s.done) })
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.points)
}

// mean is the mean busy fraction between from and to.
func meanBusy(points []plot.Point, from, to time.Time) float64 {
	sum, n := 0.0, 0
	for _, p := range points {
		if !p.T.Before(from) && !p.T.After(to) {
			sum += p.V / 1000
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// cleanupStorm deletes the storm before the next shape: its numbers are the
// machine's.
func cleanupStorm(b *testing.B, ns string) {
	kubectl(b, "delete", "namespace", ns, "--wait=false")
	eventually(b, 5*time.Minute, "the storm's instances gone", func() (bool, string) {
		left := len(groups(b, ns))
		return left == 0, strings.Repeat(".", min(left, 10))
	})
}

// afterRelease pairs each replacement with the pod of its completion index
// it replaced and returns the latest of (replacement Running − release),
// negative when every replacement ran before its predecessor's instance
// was released, and how many ran before. A release is the BidFailed the
// pod was seen to get, or, for a pod evicted at the notice (api-evict),
// its notice plus the notice lead. false for a Job without indexes.
func (pt *podTimes) afterRelease(original map[string]bool) (time.Duration, int, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	const indexLabel = "batch.kubernetes.io/job-completion-index"
	release := map[string]time.Time{}
	for name := range original {
		idx, ok := pt.labels[name][indexLabel]
		if !ok {
			return 0, 0, false
		}
		if t, ok := pt.failed[name]; ok {
			release[idx] = t
		} else if t, ok := pt.noticed[name]; ok {
			release[idx] = t.Add(noticeLead())
		}
	}
	latest, before, any := time.Duration(math.MinInt64), 0, false
	for name, ran := range pt.running {
		rel, ok := release[pt.labels[name][indexLabel]]
		if original[name] || !ok {
			continue
		}
		any = true
		latest = max(latest, ran.Sub(rel))
		if ran.Before(rel) {
			before++
		}
	}
	return latest, before, any
}

// apiRequests reads the apiserver's request counters (apiserver_request_total)
// by verb, resource and subresource.
func apiRequests(b *testing.B) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(kubectl(b, "get", "--raw", "/metrics"), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimPrefix(line, "apiserver_request_total{"), "} ")
		var verb, resource, sub string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "verb":
				verb = v
			case "resource":
				resource = v
			case "subresource":
				sub = v
			}
		}
		f, _ := strconv.ParseFloat(value, 64)
		out[verb+" "+resource+"/"+sub] += f
	}
	return out
}

// logRequests says which requests the storm sent the apiserver, per
// replaced pod: where the control plane's share of the work goes.
func logRequests(b *testing.B, before, after map[string]float64, n int) {
	type row struct {
		what string
		per  float64
	}
	var rows []row
	total := 0.0
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			rows = append(rows, row{k, d / float64(n)})
			total += d
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.per, a.per) })
	var sb strings.Builder
	for _, r := range rows[:min(len(rows), 12)] {
		fmt.Fprintf(&sb, "  %-40s %6.1f\n", r.what, r.per)
	}
	b.Logf("apiserver requests per replaced pod: %.1f; the most:\n%s", total/float64(n), sb.String())
}
