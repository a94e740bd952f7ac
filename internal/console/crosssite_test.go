package console_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestBrowserCrossSitePost: in a browser signed in to the console, a page
// of another site (http://localhost:PORT, the console being on 127.0.0.1)
// submits the market's override form to the console by script, with a
// guessed CSRF token: the console refuses it with a 403 before it reads
// the form, and the pool's stock stays as it was.
func TestBrowserCrossSitePost(t *testing.T) {
	f := start(t)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(f.url+"signin"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#instances")); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	stock := func() int {
		t.Helper()
		res, err := f.svc.DescribeAvailableResource(context.Background(), eciapi.DescribeAvailableResourceRequest{InstanceType: "ecs.c5.large", ZoneId: f.zone})
		if err != nil || len(res.Resources) != 1 {
			t.Fatalf("the pool: %+v %v", res, err)
		}
		return res.Resources[0].Stock
	}
	before := stock()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s">
<input name="type" value="ecs.c5.large"><input name="zone" value="%s"><input name="stock" value="0"><input name="csrf" value="guessed">
</form><script>document.getElementById("f").submit()</script>`, html.EscapeString(f.url+"market"), html.EscapeString(f.zone))
	}))
	defer evil.Close()
	page := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`location.href.startsWith(`+fmt.Sprintf("%q", f.url)+`) && document.body.innerText.includes("cross-site request refused")`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("the cross-site post was not refused: at %s: %q", loc, body)
	}
	if after := stock(); after != before {
		t.Errorf("the pool's stock went from %d to %d", before, after)
	}
}
