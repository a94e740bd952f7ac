package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestBrowser drives the console in a real headless Chromium (Debian's
// chromium, installed by hack/deps.sh): a wrong token refused, sign-in, the
// instance list and its filters, an instance and its log followed, the bills
// and their CSV, a Job's page, the market's chart and an override through its
// form, an instance followed without reloading from Running through the
// notice to Expired while another tab takes its pool's stock away, and its
// Job's page counting it BidFailed. It saves a screenshot of each page under
// bin/screenshots/ for people to look at.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	f := start(t)
	shots := screenshotDir(t)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(what, sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	eval := func(what, js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	shot := func(tab context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A wrong token: the form again, with an error.
	run("wrong token", chromedp.Navigate(f.url+"instances?job=pi"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", "not-the-token"), chromedp.Click("#signin"), chromedp.WaitVisible("#error"))
	if msg := text("wrong token", "#error"); msg != "Wrong token." {
		t.Errorf("wrong token: %q", msg)
	}
	shot(ctx, "signin-refused.png")

	// Signed in, back to the page asked for, its filter in the URL.
	const countRows = `document.querySelectorAll("#instances tbody tr[data-id]").length`
	run("sign in", chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#instances"))
	if loc, rows := location(), eval("rows", countRows); !strings.HasSuffix(loc, "/console/instances?job=pi") || rows != 2.0 || strings.Contains(loc, token) {
		t.Errorf("after sign-in: %s with %v rows", loc, rows)
	}
	run("all instances", chromedp.Navigate(f.url+"instances"), chromedp.WaitVisible("#instances"))
	if rows := eval("rows", countRows); rows != 3.0 {
		t.Errorf("%v instances listed, want 3", rows)
	}
	shot(ctx, "instances.png")

	// An instance.
	run("an instance", chromedp.Click(`a[href="/console/instances/`+f.ids[1]+`"]`), chromedp.WaitVisible("#timeline"))
	if timeline := text("timeline", "#timeline"); !strings.Contains(timeline, "Created") {
		t.Errorf("timeline: %q", timeline)
	}
	shot(ctx, "instance.png")
	run("back", chromedp.NavigateBack(), chromedp.WaitVisible("#instances"))
	if loc := location(); !strings.HasSuffix(loc, "/console/instances") {
		t.Errorf("back: %s", loc)
	}

	// An instance's log followed: web prints a line a run; the panel fills
	// with them as text.
	run("a log", chromedp.Navigate(f.url+"instances/"+f.ids[2]), chromedp.WaitVisible("#log"))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#log div").length >= 3`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the log panel never filled: %v", err)
	}
	if first, tags := text("log", "#log div"), eval("markup", `document.querySelectorAll("#log b").length`); first != webLine || tags != 0.0 {
		t.Errorf("log line %q, %v elements made of it", first, tags)
	}
	shot(ctx, "instance-logs.png")

	// The bills, and the CSV with the browser's session.
	run("bills", chromedp.Navigate(f.url+"bills?by=job"), chromedp.WaitVisible("#bills"))
	if total := text("total", "#total"); total == "" {
		t.Error("no total on the bills page")
	}
	shot(ctx, "bills.png")
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{f.url}})
	if err != nil || len(cookies.Cookies) != 1 {
		t.Fatalf("cookies: %+v %v", cookies, err)
	}
	req, _ := http.NewRequest(http.MethodGet, f.url+"bills.csv?by=job", nil)
	for _, c := range cookies.Cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
			t.Errorf("cookie %s: HttpOnly %v SameSite %v", c.Name, c.HTTPOnly, c.SameSite)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(records) != 3 || records[2][0] != "default/pi" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="bill-by-job.csv"` {
		t.Errorf("bill CSV: %s %q %v", resp.Status, records, err)
	}

	// The Job page, from its line of the bills per Job: its instances by
	// state over time.
	run("the Job", chromedp.Click(`a[href="/console/jobs/default/pi"]`), chromedp.WaitVisible("#job-chart svg"))
	if pools := text("Job pools", "#pools"); !strings.Contains(pools, "ecs.c5.large") || !strings.Contains(pools, "ecs.g6.large") {
		t.Errorf("the Job's pools: %q", pools)
	}
	shot(ctx, "job.png")

	// The market: the chart of a pool, and a price override through the form.
	run("market", chromedp.Navigate(f.url+"market?type=ecs.c6.large"), chromedp.WaitVisible("#chart svg"))
	if pools := text("pools", "#pools"); !strings.Contains(pools, "% of pay-as-you-go") || !strings.Contains(pools, "0-3%") {
		t.Errorf("pools without DescribeSpotAdvice's rate and discount: %q", pools)
	}
	shot(ctx, "market.png")
	run("price override", chromedp.SendKeys("#price", "0.123"), chromedp.Click("#apply"), chromedp.WaitVisible("#changed"))
	if pools := text("pools", "#pools"); !strings.Contains(pools, "0.123") {
		t.Errorf("pools after the override: %q", pools)
	}

	// A forced reclaim followed live: one tab on the instance, another takes
	// its pool's stock away.
	run("the victim", chromedp.Navigate(f.url+"instances/"+f.victim), chromedp.WaitVisible("#status"))
	// The page records what it shows of the pod, change by change.
	eval("mark the page", `window.notReloaded = true;
		window.podSeen = [document.getElementById("pod-status").textContent];
		new MutationObserver(() => {
			const now = document.getElementById("pod-status").textContent;
			if (now !== window.podSeen[window.podSeen.length - 1]) window.podSeen.push(now);
		}).observe(document.getElementById("live"), {subtree: true, childList: true, characterData: true})`)
	if status := text("status", "#status"); status != "Running" {
		t.Fatalf("victim %s", status)
	}
	// A third tab follows the newest two instances: the victim is older.
	const listRows = `Array.from(document.querySelectorAll("#instances tbody tr[data-id]"), r => r.dataset.id).join(" ")`
	list, cancelList := chromedp.NewContext(ctx)
	defer cancelList()
	if err := chromedp.Do(list, chromedp.Navigate(f.url+"instances?limit=2"), chromedp.WaitVisible("#instances")); err != nil {
		t.Fatal(err)
	}
	newest, err := chromedp.Run(list, chromedp.Evaluate[string](listRows))
	if err != nil || newest != f.ids[2]+" "+f.ids[1] {
		t.Fatalf("the newest two: %q %v, want %s %s", newest, err, f.ids[2], f.ids[1])
	}
	other, cancelOther := chromedp.NewContext(ctx)
	defer cancelOther()
	if err := chromedp.Do(other, chromedp.Navigate(f.url+"market?type=ecs.c5.large&zone="+f.zone), chromedp.WaitVisible("#stock"),
		chromedp.SendKeys("#stock", "0"), chromedp.Click("#apply"), chromedp.WaitVisible("#changed")); err != nil {
		t.Fatalf("stock 0: %v", err)
	}
	shot(other, "market-override.png")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("status").textContent === "Expired"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("never Expired: %v", err)
	}
	if kept := eval("the mark", `window.notReloaded === true`); kept != true {
		t.Error("the page reloaded")
	}
	// Running, then the notice, then BidFailed, as the pod goes.
	seen := fmt.Sprint(eval("what the page showed of the pod", `window.podSeen`))
	if !regexp.MustCompile(`^\[Running SpotToBeReleased: to be released at [-0-9: ]+ BidFailed\]$`).MatchString(seen) {
		t.Errorf("the page showed the pod as %s, want Running, the notice, BidFailed", seen)
	}
	// The list of the newest two did not take in the older victim when it
	// changed; it takes in an instance made now, first, without a reload.
	if rows, err := chromedp.Run(list, chromedp.Evaluate[string](listRows)); err != nil || rows != newest {
		t.Errorf("the newest two after the reclaim: %q %v", rows, err)
	}
	late, err := f.svc.CreateContainerGroup(context.Background(), eciapi.CreateContainerGroupRequest{ContainerGroupName: "late", InstanceType: "ecs.c6.large",
		Containers: []eciapi.Container{{Name: "main", Image: "busybox"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(list, chromedp.Poll[bool](listRows+` === "`+late.ContainerGroupId+" "+newest+`"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		rows, _ := chromedp.Run(list, chromedp.Evaluate[string](listRows))
		t.Errorf("the new instance never came first: %q", rows)
	}
	timeline := text("timeline", "#timeline")
	for _, want := range []string{"Check passed", "checks passed", "SpotToBeReleased", "SpotReleased"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline lacks %s: %q", want, timeline)
		}
	}
	shot(ctx, "instance-reclaimed.png")

	// The Job page counts the reclaimed instance BidFailed.
	run("the Job reclaimed", chromedp.Navigate(f.url+"jobs/default/pi"), chromedp.WaitVisible("#job-chart svg"))
	if n := text("BidFailed", "#count-bidfailed"); n != "1" {
		t.Errorf("the Job page counts %q BidFailed, want 1", n)
	}
	shot(ctx, "job-reclaimed.png")
	t.Logf("screenshots in %s", shots)
}

// screenshotDir is bin/screenshots of the repository, else a temporary folder.
func screenshotDir(t *testing.T) string {
	if fi, err := os.Stat("../../bin"); err == nil && fi.IsDir() {
		dir, _ := filepath.Abs("../../bin/screenshots")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir
		}
	}
	return t.TempDir()
}
