package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// BenchmarkConsoleFollowsJob runs a Job of 1,000 model pods (each works 20
// wall seconds) from creation to completion on the model stack six times:
// twice with nobody looking, twice with the console's page of the Job
// following it, twice with the instance list of the Job following it (each
// page opened as a browser does, then its event stream read as a browser's
// EventSource reads it), in the order alone, Job page, list, list, Job
// page, alone. It reports the service process's CPU time in each and what
// each page added to it (target: at most 5%).
func BenchmarkConsoleFollowsJob(b *testing.B) {
	const n = 1000
	startModel(b)
	info, err := eciapi.ReadServerInfo(modelEnv.state)
	if err != nil || info.Console == "" {
		b.Fatalf("the model service's console: %+v %v", info, err)
	}
	const typ = "ecs.g7.large"
	modelCLI(b, "market", "set", "--type", typ, "--price", "0.1", "--stock", "100000")
	for i := 0; i < b.N; i++ {
		cpu, console := map[string]float64{}, map[string]float64{}
		events, bytes := map[string]int64{}, map[string]int64{}
		for run, page := range []string{"", "job", "list", "list", "job", ""} {
			ns := fmt.Sprintf("follow-%d-%d", run, time.Now().UnixNano())
			kubectl(b, "create", "namespace", ns)
			manifest := job("wide", map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: "20s"}, "sleep 20",
				fmt.Sprintf("  parallelism: %d\n  completions: %d\n  backoffLimit: %d\n", n, n, n))
			pid := modelEnv.server.cmd.Process.Pid
			before, drawnBefore := cpuSeconds(pid), consoleSeconds(b, info)
			start := time.Now()
			apply(b, ns, onModel(manifest))
			var f *follower
			if page != "" {
				f = followConsole(b, info, consolePage(page, ns, "wide"))
			}
			kubectl(b, "-n", ns, "wait", "job/wide", "--for=condition=complete", "--timeout=10m")
			used, drawn := cpuSeconds(pid)-before, consoleSeconds(b, info)-drawnBefore
			b.Logf("run %d (followed by %q): %d pods in %.1f s, service CPU %.2f s, of which the console %.3f s", run, page, n, time.Since(start).Seconds(), used, drawn)
			cpu[page] += used / 2
			console[page] += drawn / used / 2
			if f != nil {
				events[page] += f.events.Load()
				bytes[page] += f.bytes.Load()
				if f.events.Load() == 0 {
					b.Fatal("the console sent the follower nothing")
				}
				f.stop()
			}
			kubectl(b, "delete", "namespace", ns, "--wait=false")
			podsGone(b, ns, "")
		}
		b.ReportMetric(cpu[""], "cpu-s-alone")
		for _, page := range []string{"job", "list"} {
			b.ReportMetric(cpu[page], "cpu-s-"+page)
			b.ReportMetric(100*(cpu[page]-cpu[""])/cpu[""], "%-added-by-"+page)
			b.ReportMetric(100*console[page], "%-console-"+page)
			b.ReportMetric(float64(events[page])/2, "events-"+page)
			b.ReportMetric(float64(bytes[page])/2/1024, "KiB-"+page)
		}
	}
}

// consolePage is the console's page of Job name in ns: its own page
// ("job") or its instances in the list ("list").
func consolePage(page, ns, name string) string {
	if page == "job" {
		return "jobs/" + ns + "/" + name
	}
	return "instances?" + url.Values{"namespace": {ns}, "job": {name}}.Encode()
}

// follower reads the event streams of console pages, as a browser does.
type follower struct {
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	events, bytes atomic.Int64
}

// followConsole signs in to the console of info and follows pages.
func followConsole(b *testing.B, info eciapi.ServerInfo, pages ...string) *follower {
	b.Helper()
	c := signedIn(b, info).client
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel}
	for _, page := range pages {
		// As a browser: the page, once its Job has an instance, then its
		// stream from the page's cursor.
		var since string
		for deadline := time.Now().Add(time.Minute); since == ""; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				cancel()
				b.Fatalf("the console's page %s never came", page)
			}
			resp, err := c.Get(info.Console + page)
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			f.bytes.Add(int64(len(body)))
			if _, rest, ok := strings.Cut(string(body), `data-since="`); ok && resp.StatusCode == http.StatusOK {
				since, _, _ = strings.Cut(rest, `"`)
			}
		}
		sep := "?"
		if strings.Contains(page, "?") {
			sep = "&"
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, info.Console+page+sep+"since="+since, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			cancel()
			b.Fatalf("following %s: %v %v", page, resp, err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer resp.Body.Close()
			lines := bufio.NewScanner(resp.Body)
			lines.Buffer(nil, 64<<20)
			for lines.Scan() {
				f.bytes.Add(int64(len(lines.Bytes())) + 1)
				if strings.HasPrefix(lines.Text(), "event: ") {
					f.events.Add(1)
				}
			}
		}()
	}
	return f
}

func (f *follower) stop() {
	f.cancel()
	f.wg.Wait()
}

// consoleSeconds is the time the console of info's service has spent, by
// its own metric.
func consoleSeconds(b *testing.B, info eciapi.ServerInfo) float64 {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, info.Endpoint+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+info.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "spoteci_console_draw_duration_seconds_sum{"); ok {
			_, value, _ := strings.Cut(rest, "} ")
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				b.Fatalf("/metrics: %q", lines.Text())
			}
			sum += v
		}
	}
	return sum
}
