package console_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spoteci/spoteci/internal/console"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func TestSignIn(t *testing.T) {
	f := start(t)
	c := client(t)
	// Signed out, a page sends the browser to sign in and back; a stream or
	// a download is refused.
	resp, err := c.Get(f.url + "instances?status=Running")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != console.Prefix+"signin?next="+url.QueryEscape(console.Prefix+"instances?status=Running") {
		t.Fatalf("signed out: %s to %q", resp.Status, loc)
	}
	checkHeaders(t, resp.Header)
	f.get(t, c, "bills.csv", http.StatusUnauthorized)

	// A wrong token gets the form again, with an error and a 401, and no cookie.
	resp, err = c.PostForm(f.url+"signin", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: %s, cookies %v", resp.Status, resp.Cookies())
	}
	checkHeaders(t, resp.Header)
	f.get(t, c, "bills.csv", http.StatusUnauthorized)

	// The right one opens a session in a cookie that scripts and other sites
	// cannot use, and goes where it was asked (only within the console).
	resp, err = c.PostForm(f.url+"signin", url.Values{"token": {token}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != console.Prefix+"instances" {
		t.Fatalf("sign-in: %s to %q", resp.Status, loc)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != console.Prefix ||
		len(cookies[0].Value) < 40 || strings.Contains(cookies[0].Value, token) {
		t.Fatalf("session cookie: %+v", cookies)
	}
	page := f.get(t, c, "instances", http.StatusOK)
	for _, id := range f.ids {
		if !strings.Contains(page, id) {
			t.Errorf("the instance list lacks %s", id)
		}
	}
	if strings.Contains(page, token) {
		t.Error("a page shows the admin token")
	}
	// Filters are in the query string.
	page = f.get(t, c, "instances?namespace=shop", http.StatusOK)
	if !strings.Contains(page, f.ids[2]) || strings.Contains(page, f.ids[0]) {
		t.Errorf("namespace filter: %s", page)
	}

	// The bill as CSV, per Job.
	body := f.get(t, c, "bills.csv?by=job", http.StatusOK)
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "job" || rows[1][0] != "-" || rows[2][0] != "default/pi" || rows[2][1] != "2" {
		t.Errorf("bill by job: %q", rows)
	}
	body = f.get(t, c, "bills.csv", http.StatusOK)
	if rows, err := csv.NewReader(strings.NewReader(body)).ReadAll(); err != nil || len(rows) != 4 {
		t.Errorf("bill per instance: %q %v", rows, err)
	}

	// Signing out ends the session.
	csrf := f.signIn(t, c)
	resp, err = c.PostForm(f.url+"signout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	f.get(t, c, "bills.csv", http.StatusUnauthorized)
}

// checkHeaders checks the security headers every answer carries.
func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
}

// A state-changing request from another site is refused, whatever cookie it
// carries: by its Origin or Sec-Fetch-Site, and without the session's CSRF
// token.
func TestCrossSitePostRefused(t *testing.T) {
	f := start(t)
	c := client(t)
	csrf := f.signIn(t, c)
	form := url.Values{"type": {"ecs.c5.large"}, "zone": {f.zone}, "stock": {"0"}}
	for name, tc := range map[string]struct {
		csrf   string
		header map[string]string
	}{
		"foreign Origin, right token": {csrf, map[string]string{"Origin": "http://evil.example"}},
		"cross-site fetch":            {csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"no CSRF token":               {"", nil},
		"wrong CSRF token":            {csrf[:len(csrf)-1] + "x", nil},
		"foreign Origin, no token":    {"", map[string]string{"Origin": "http://evil.example"}},
	} {
		body := url.Values{"csrf": {tc.csrf}}
		for k, v := range form {
			body[k] = v
		}
		req, _ := http.NewRequest(http.MethodPost, f.url+"market", strings.NewReader(body.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", name, resp.Status)
		}
	}
	res, err := f.svc.DescribeAvailableResource(context.Background(), eciapi.DescribeAvailableResourceRequest{ZoneId: f.zone, InstanceType: "ecs.c5.large"})
	if err != nil || len(res.Resources) != 1 || res.Resources[0].Stock == 0 {
		t.Fatalf("a refused POST changed the market: %+v %v", res.Resources, err)
	}
	// The same form from the console itself goes through.
	form.Set("csrf", csrf)
	form.Set("stock", "7")
	req, _ := http.NewRequest(http.MethodPost, f.url+"market", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(f.url, console.Prefix))
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin POST: %s", resp.Status)
	}
	res, err = f.svc.DescribeAvailableResource(context.Background(), eciapi.DescribeAvailableResourceRequest{ZoneId: f.zone, InstanceType: "ecs.c5.large"})
	if err != nil || res.Resources[0].Stock != 7 {
		t.Fatalf("override not applied: %+v %v", res.Resources, err)
	}
}
