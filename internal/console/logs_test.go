package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLogs follows the log of the fixture's web instance, which prints a
// line each run, over server-sent events, and downloads its last lines.
func TestLogs(t *testing.T) {
	f := start(t)
	c := client(t)
	web := f.ids[2]
	stream := func(c *http.Client, query string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"instances/"+web+"/logs"+query, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if resp := stream(c, "?container=main"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed out, the stream: %s", resp.Status)
	}
	csrf := f.signIn(t, c)

	// The lines come as they are printed, run after run, as text.
	resp := stream(c, "?container=main")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	seen, began := 0, time.Now()
	for seen < 3 && sc.Scan() {
		if line := sc.Text(); line == "data: "+webLine {
			seen++
		} else if line != "" {
			t.Fatalf("unexpected line in the stream: %q", line)
		}
	}
	if seen < 3 {
		t.Fatalf("saw %d lines, want 3: %v", seen, sc.Err())
	}
	t.Logf("3 lines in %s", time.Since(began))

	// The last lines as a download.
	body := f.get(t, c, "instances/"+web+"/logs?container=main", http.StatusOK)
	if !strings.HasPrefix(body, webLine+"\n") {
		t.Errorf("download: %q", body)
	}
	dl, err := c.Get(f.url + "instances/" + web + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	dl.Body.Close()
	if ct, cd := dl.Header.Get("Content-Type"), dl.Header.Get("Content-Disposition"); ct != "text/plain; charset=utf-8" || cd != `attachment; filename="`+web+`-main.log"` {
		t.Errorf("download headers: %q %q", ct, cd)
	}

	// A container the instance does not have is refused, by name.
	if page := f.get(t, c, "instances/"+web+"/logs?container=nope", http.StatusBadRequest); !strings.Contains(page, `no container &#34;nope&#34;`) {
		t.Errorf("unknown container page: %q", page)
	}
	if resp := stream(c, "?container=nope"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown container stream: %s", resp.Status)
	}

	// The instance page has the panel, outside the live block.
	page := f.get(t, c, "instances/"+web, http.StatusOK)
	if !strings.Contains(page, `id="log" data-log="/console/instances/`+web+`/logs"`) || !strings.Contains(page, `src="/console/static/logs.js"`) {
		t.Errorf("no log panel on the instance page")
	}

	// Signing out ends the streams of the session.
	resp = stream(c, "?container=main")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		}
	}()
	out, err := c.PostForm(f.url+"signout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the stream outlived its session")
	}
}
