package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoteci/spoteci/internal/console"
	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/runtime/model"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

const token = "test-admin-token"

// webLine is the line each run of the fixture's web instance logs.
const webLine = "GET / 200 <b>ok</b>"

// scale makes a market minute a tenth of a wall second: a check every half
// second, the 5-minute notice half a second long.
const scale = 600

// fixture is a real service on the model runtime, with the console on a
// loopback listener as spoteci server mounts it.
type fixture struct {
	svc *eci.Service
	url string // of the console
	// victim is a spot instance without protection, on ecs.c5.large in
	// zone: the one a test reclaims.
	victim, zone string
	ids          []string
	// metrics is the console's registry.
	metrics *prometheus.Registry
}

func start(t testing.TB) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A short back-off, so that web's runs (and its log lines) come quickly.
	rt, err := model.New(model.Config{Dir: filepath.Join(dir, "model"), RestartBackoff: 100 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := eci.Open(ctx, eci.Config{StateDir: dir, TimeScale: scale, Runtime: rt, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	go func() { svc.Run(ctx); close(ran) }()
	f := &fixture{svc: svc, metrics: prometheus.NewRegistry()}
	con, err := console.New(console.Config{Service: svc, Token: token, Poll: 100 * time.Millisecond, Log: log, Metrics: f.metrics})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, con)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		<-ran
		svc.Close()
	})
	f.url = srv.URL + console.Prefix
	zero := eciapi.Decimal("0")
	limit := eciapi.Decimal("0.9")
	pod := func(ns, name, job string) []eciapi.Tag {
		return []eciapi.Tag{{Key: eciapi.TagNamespace, Value: ns}, {Key: eciapi.TagPod, Value: name}, {Key: eciapi.TagJob, Value: job}}
	}
	for _, req := range []eciapi.CreateContainerGroupRequest{
		{ContainerGroupName: "pi-victim", InstanceType: "ecs.c5.large", SpotStrategy: eciapi.SpotWithPriceLimit, SpotPriceLimit: limit,
			SpotDuration: &zero, Tags: pod("default", "pi-abcde", "pi")},
		{ContainerGroupName: "pi-other", InstanceType: "ecs.g6.large", SpotStrategy: eciapi.SpotAsPriceGo, Tags: pod("default", "pi-fghij", "pi")},
		// web serves, on the model, by printing a line a run: a run of
		// 300 ms, then another after the back-off, so its log grows.
		{ContainerGroupName: "web", InstanceType: "ecs.c6.large", RestartPolicy: "Always",
			Tags: append(pod("shop", "web-1", ""), eciapi.Tag{Key: eciapi.ModelLog, Value: webLine}, eciapi.Tag{Key: eciapi.ModelRunFor, Value: "300ms"})},
	} {
		req.Containers = []eciapi.Container{{Name: "main", Image: "busybox", Commands: []string{"sleep", "3600"}}}
		resp, err := svc.CreateContainerGroup(ctx, req)
		if err != nil {
			t.Fatalf("creating %s: %v", req.ContainerGroupName, err)
		}
		f.ids = append(f.ids, resp.ContainerGroupId)
	}
	f.victim = f.ids[0]
	got, err := svc.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{f.victim}})
	if err != nil || len(got.ContainerGroups) != 1 {
		t.Fatalf("describing the victim: %v", err)
	}
	f.zone = got.ContainerGroups[0].ZoneId
	f.waitStatus(t, f.victim, eciapi.StatusRunning)
	return f
}

// waitStatus waits until group id has status.
func (f *fixture) waitStatus(t testing.TB, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := f.svc.DescribeContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}})
		if err == nil && len(resp.ContainerGroups) == 1 && resp.ContainerGroups[0].Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never got to %s: %+v %v", id, status, resp.ContainerGroups, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is an HTTP client that keeps cookies and does not follow redirects.
func client(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs c in and returns the session's CSRF token, read from a page.
func (f *fixture) signIn(t testing.TB, c *http.Client) string {
	t.Helper()
	resp, err := c.PostForm(f.url+"signin", url.Values{"token": {token}, "next": {console.Prefix + "market"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %s", resp.Status)
	}
	body := f.get(t, c, "market", http.StatusOK)
	_, rest, ok := strings.Cut(body, `name="csrf" value="`)
	csrf, _, _ := strings.Cut(rest, `"`)
	if !ok || len(csrf) < 40 {
		t.Fatalf("no CSRF token on the market page")
	}
	return csrf
}

// get fetches path of the console and checks the status.
func (f *fixture) get(t testing.TB, c *http.Client, path string, want int) string {
	t.Helper()
	resp, err := c.Get(f.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d: %s", path, resp.Status, want, b)
	}
	return string(b)
}
