package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// BenchmarkConsoleFollowsJob runs a Job of 1,000 model pods (each works 20
// wall seconds) from creation to completion on the model stack four times:
// twice with nobody looking, twice with the console following it (the Job's
// page and the instance list of the Job, over the console's event streams,
// as a browser's EventSource reads them), in the order alone, followed,
// followed, alone. It reports the service process's CPU time in each and
// what the console added to it (target: at most 5%).
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
		var alone, followed []float64
		var events, bytes int64
		for run, follow := range []bool{false, true, true, false} {
			ns := fmt.Sprintf("follow-%d-%d", run, time.Now().UnixNano())
			kubectl(b, "create", "namespace", ns)
			manifest := job("wide", map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: "20s"}, "sleep 20",
				fmt.Sprintf("  parallelism: %d\n  completions: %d\n  backoffLimit: %d\n", n, n, n))
			pid := modelEnv.server.cmd.Process.Pid
			before := cpuSeconds(pid)
			start := time.Now()
			apply(b, ns, onModel(manifest))
			var f *follower
			if follow {
				f = followConsole(b, info, console(ns, "wide"))
			}
			kubectl(b, "-n", ns, "wait", "job/wide", "--for=condition=complete", "--timeout=10m")
			cpu := cpuSeconds(pid) - before
			b.Logf("run %d (followed: %v): %d pods in %.1f s, service CPU %.2f s", run, follow, n, time.Since(start).Seconds(), cpu)
			if follow {
				followed = append(followed, cpu)
				events, bytes = events+f.events.Load(), bytes+f.bytes.Load()
				if f.events.Load() == 0 {
					b.Fatal("the console sent the follower nothing")
				}
				f.stop()
			} else {
				alone = append(alone, cpu)
			}
			kubectl(b, "delete", "namespace", ns, "--wait=false")
			podsGone(b, ns, "")
		}
		a, f := (alone[0]+alone[1])/2, (followed[0]+followed[1])/2
		b.ReportMetric(a, "cpu-s-alone")
		b.ReportMetric(f, "cpu-s-followed")
		b.ReportMetric(100*(f-a)/a, "%-added-by-console")
		b.ReportMetric(float64(events)/2, "events-per-run")
		b.ReportMetric(float64(bytes)/2/1024, "KiB-per-run")
	}
}

// console is the console's pages of Job name in ns that follow it.
func console(ns, name string) []string {
	return []string{"jobs/" + ns + "/" + name, "instances?" + url.Values{"namespace": {ns}, "job": {name}}.Encode()}
}

// follower reads the event streams of console pages, as a browser does.
type follower struct {
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	events, bytes atomic.Int64
}

// followConsole signs in to the console of info and follows pages.
func followConsole(b *testing.B, info eciapi.ServerInfo, pages []string) *follower {
	b.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(info.Console+"signin", url.Values{"token": {info.Token}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("signing in to the console: %s", resp.Status)
	}
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
