package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// BenchmarkBrowserInstances10k opens the instance list of a service holding
// 10,000 instances (on the model runtime) in a real headless Chromium and
// reports the time from the navigation's start to the first frame drawn
// after the page loaded: the server's answer, the transfer, parsing, layout
// and paint (target: within 1 s), for a page of the default size and of the
// largest.
func BenchmarkBrowserInstances10k(b *testing.B) {
	const n = 10_000
	f := start(b)
	addInstances(b, f, n-len(f.ids))
	ctx := browser(b)
	if err := chromedp.Do(ctx, chromedp.Navigate(f.url+"signin"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#instances")); err != nil {
		b.Fatalf("sign in: %v", err)
	}
	for _, page := range []int{500, 2000} {
		b.Run(fmt.Sprint("page-", page), func(b *testing.B) {
			var server, drawn float64
			for b.Loop() {
				if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprint(f.url, "instances?limit=", page))); err != nil {
					b.Fatal(err)
				}
				// Two animation frames after load: the first frame drawn
				// with the whole table laid out.
				t, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](`new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => {
					const nav = performance.getEntriesByType("navigation")[0];
					done([nav.responseStart - nav.requestStart, performance.now(),
						document.querySelectorAll("#instances tbody tr[data-id]").length, document.getElementById("count").textContent]);
				})))`, chromedp.EvalAwaitPromise))
				if err != nil {
					b.Fatal(err)
				}
				if rows, total := t[2].(float64), t[3].(string); int(rows) != page || total != fmt.Sprint(n) {
					b.Fatalf("%v rows drawn of %s, want %d of %d", rows, total, page, n)
				}
				server += t[0].(float64)
				drawn += t[1].(float64)
			}
			b.ReportMetric(server/float64(b.N), "ms-server")
			b.ReportMetric(drawn/float64(b.N), "ms-to-drawn")
		})
	}
}

// addInstances creates n more running instances in f's service, in 100
// Jobs of 10 namespaces.
func addInstances(tb testing.TB, f *fixture, n int) {
	tb.Helper()
	ctx := context.Background()
	for i := range n {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "ecs.c6.large", SpotStrategy: eciapi.SpotAsPriceGo,
			Containers: []eciapi.Container{{Name: "main", Image: "busybox", Commands: []string{"sleep", "3600"}}},
			Tags: []eciapi.Tag{{Key: eciapi.TagNamespace, Value: fmt.Sprint("ns", i%10)}, {Key: eciapi.TagPod, Value: fmt.Sprint("job", i%100, "-", i)},
				{Key: eciapi.TagJob, Value: fmt.Sprint("job", i%100)}}}
		if _, err := f.svc.CreateContainerGroup(ctx, req); err != nil {
			tb.Fatal(err)
		}
	}
}

// browser starts a headless Chromium (Debian's, from hack/deps.sh) for tb,
// or skips tb without one.
func browser(tb testing.TB) context.Context {
	tb.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		tb.Skip("no chromium: run hack/deps.sh")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1500, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(cancel)
	// The first call starts the browser: without a timeout, which would stop it.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// BenchmarkJobPage1000 draws the page of a Job of 1,000 instances, half of
// them ended (their bills closed and stored), the block a live Job page
// sends again when the Job changes.
func BenchmarkJobPage1000(b *testing.B) {
	f := start(b)
	ctx := context.Background()
	var ids []string
	for i := range 1000 {
		resp, err := f.svc.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("wide-", i), InstanceType: "ecs.c6.large",
			SpotStrategy: eciapi.SpotAsPriceGo, Containers: []eciapi.Container{{Name: "main", Image: "busybox"}},
			Tags: []eciapi.Tag{{Key: eciapi.TagNamespace, Value: "big"}, {Key: eciapi.TagPod, Value: fmt.Sprint("wide-", i)}, {Key: eciapi.TagJob, Value: "wide"}}})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, resp.ContainerGroupId)
	}
	for _, id := range ids[:500] {
		if _, err := f.svc.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
			b.Fatal(err)
		}
	}
	c := client(b)
	f.signIn(b, c)
	for b.Loop() {
		f.get(b, c, "jobs/big/wide", http.StatusOK)
	}
}
