package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestConsoleJobReclaimed: a Job of three pods on the model node, in the
// cheaper of two pools; that pool's stock taken. The Job controller
// replaces the BidFailed pods in the other pool, and the console's page of
// the Job says so: three BidFailed, three replaced, both pools in its bill;
// the instance list says BidFailed of the reclaimed ones. With Chromium
// there, a screenshot of the page goes to bin/screenshots/cluster-job.png.
func TestConsoleJobReclaimed(t *testing.T) {
	startModel(t)
	ns := namespace(t)
	info, err := eciapi.ReadServerInfo(modelEnv.state)
	if err != nil {
		t.Fatal(err)
	}
	const first, second = "ecs.r6.large", "ecs.r7.large" // this test's own pools
	modelCLI(t, "market", "set", "--type", first, "--price", "0.05", "--stock", "100")
	modelCLI(t, "market", "set", "--type", second, "--price", "0.1", "--stock", "100")
	apply(t, ns, onModel(job("work", map[string]string{specs: first + "," + second, strategy: "SpotAsPriceGo", duration: "0",
		eciapi.ModelRunFor: "10m"}, "sleep 600", "  parallelism: 3\n  completions: 3\n  backoffLimit: 6\n")))
	web := signedIn(t, info)
	page := "jobs/" + ns + "/work"
	eventually(t, 60*time.Second, "three instances Running on the Job's page", func() (bool, string) {
		body := web.get(t, page)
		return count(body, "running") == "3", body
	})
	modelCLI(t, "market", "set", "--type", first, "--stock", "0")
	eventually(t, 90*time.Second, "three BidFailed and three replaced on the Job's page", func() (bool, string) {
		body := web.get(t, page)
		return count(body, "bidfailed") == "3" && count(body, "replaced") == "3" && count(body, "running") == "3", body
	})
	body := web.get(t, page)
	for _, pool := range []string{first, second} {
		if !strings.Contains(body, ">"+pool+"</a>") {
			t.Errorf("the Job's pools lack %s", pool)
		}
	}
	if list := web.get(t, "instances?"+url.Values{"namespace": {ns}, "job": {"work"}, "status": {eciapi.StatusExpired}}.Encode()); strings.Count(list, eciapi.ReasonBidFailed) != 3 {
		t.Errorf("the instance list of the Job's Expired instances names BidFailed %d times, want 3", strings.Count(list, eciapi.ReasonBidFailed))
	}
	web.screenshot(t, page, "cluster-job.png")
	deleteJobs(t, ns, "work")
}

// count is a count of the Job page's, by its state's id.
func count(page, state string) string {
	m := regexp.MustCompile(`id="count-` + state + `">(\d+)<`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// consoleClient is a signed-in session of a service's console.
type consoleClient struct {
	info   eciapi.ServerInfo
	client *http.Client
}

func signedIn(t testing.TB, info eciapi.ServerInfo) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar} // no timeout: it follows event streams too
	resp, err := c.PostForm(info.Console+"signin", url.Values{"token": {info.Token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in to the console: %s", resp.Status)
	}
	return &consoleClient{info: info, client: c}
}

// get is a page of the console, whatever its status.
func (c *consoleClient) get(t *testing.T, page string) string {
	t.Helper()
	resp, err := c.client.Get(c.info.Console + page)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%s\n%s", resp.Status, body)
}

// screenshot saves a console page as a browser draws it, under
// bin/screenshots; without Chromium, nothing.
func (c *consoleClient) screenshot(t *testing.T, page, name string) {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Log("no chromium: no screenshot")
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.WindowSize(1500, 1000), chromedp.NoSandbox)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel = context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.info.Console+"signin?next="+url.QueryEscape("/console/"+page)), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", c.info.Token), chromedp.Click("#signin"), chromedp.WaitVisible("#job-chart svg")); err != nil {
		t.Fatalf("the page in chromium: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(env.bin, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
