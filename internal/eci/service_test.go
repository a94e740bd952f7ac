package eci_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/ecisdk"
	"github.com/spoteci/spoteci/internal/runtime"
	"github.com/spoteci/spoteci/internal/runtime/runtimetest"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// env is the containerd and registry every test's runtime uses.
var env *runtimetest.Env

func TestMain(m *testing.M) {
	if spec := os.Getenv(envDescribers); spec != "" { // a benchmark's client process
		if err := runDescribers(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var err error
	if env, err = runtimetest.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// The credentials of the test servers: the admin token, and the AccessKey
// pair the SDK signs with.
const (
	token           = "test-token"
	accessKeyID     = "LTAItestkey"
	accessKeySecret = "test-secret"
)

// server is a real ECI service on a loopback port with its SQLite file.
type server struct {
	*ecisdk.Client // ECI's and ECS's actions, through the official SDK
	admin          *eciapi.Client
	svc            *eci.Service
	timed          *timedHandler
	stop           func()
}

// timedHandler records how long the server took for each OpenAPI action,
// from the request's arrival to its answer's last byte: the server's share
// of a call's latency.
type timedHandler struct {
	next  http.Handler
	mu    sync.Mutex
	times map[string][]time.Duration
}

func (h *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.next.ServeHTTP(w, r)
	if action := r.URL.Query().Get("Action"); action != "" {
		h.mu.Lock()
		h.times[action] = append(h.times[action], time.Since(start))
		h.mu.Unlock()
	}
}

// took returns and forgets the server's times of action.
func (h *timedHandler) took(action string) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.times[action]
	delete(h.times, action)
	return t
}

// scale makes a market hour one wall second, and the 5-minute lead 83 ms.
const scale = 3600

func startServer(t *testing.T, dir string) *server {
	return startServerWith(t, eci.Config{StateDir: dir, TimeScale: scale})
}

// startServerWith runs the service of cfg on a loopback port until the test
// ends or stop is called.
func startServerWith(tb testing.TB, cfg eci.Config) *server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rt, _ := cfg.Runtime.(*runtime.Containerd) // the caller's, set up its own way
	if rt == nil {
		rt = openRuntime(tb, cfg.StateDir)
	}
	tb.Cleanup(func() { destroyRuntime(tb, cfg.StateDir) })
	cfg.Runtime = rt
	svc, err := eci.Open(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	timed := &timedHandler{next: svc.Handler(eci.Credentials{Token: token, AccessKeys: map[string]string{accessKeyID: accessKeySecret}}),
		times: map[string][]time.Duration{}}
	srv := &http.Server{Handler: timed}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	ran := make(chan struct{})
	go func() { svc.Run(ctx); close(ran) }()
	// Keep connections for concurrent clients (the create benchmark).
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	s := &server{admin: &eciapi.Client{Endpoint: "http://" + ln.Addr().String(), Token: token, HTTP: &http.Client{Transport: transport}}, svc: svc, timed: timed}
	sdkConfig := s.sdkConfig()
	sdkConfig.Clients = 16 // the create benchmark's concurrent clients
	sdk, err := ecisdk.New(sdkConfig)
	if err != nil {
		tb.Fatal(err)
	}
	s.Client = sdk
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		srv.Close()
		<-served
		<-ran
		svc.Close()
		rt.Close()
		transport.CloseIdleConnections()
		sdk.Close()
	}
	tb.Cleanup(s.stop)
	return s
}

// sdkConfig is how the official SDK reaches the server.
func (s *server) sdkConfig() ecisdk.Config {
	return ecisdk.Config{Endpoint: s.admin.Endpoint, Region: eci.DefaultRegion, AccessKeyID: accessKeyID, AccessKeySecret: accessKeySecret}
}

// openRuntime opens the containerd runtime of a state folder, pulling
// through the test registry.
func openRuntime(tb testing.TB, stateDir string) *runtime.Containerd {
	return openRuntimeWith(tb, stateDir, runtime.Config{})
}

// openRuntimeWith is openRuntime with cfg's settings (log caps, ...).
func openRuntimeWith(tb testing.TB, stateDir string, cfg runtime.Config) *runtime.Containerd {
	tb.Helper()
	var regs runtime.Registries
	if err := regs.AddMirror(env.Mirror()); err != nil {
		tb.Fatal(err)
	}
	cfg.Dir, cfg.Address, cfg.ContainerdState, cfg.Registries = filepath.Join(stateDir, "runtime"), env.Daemon.Address, env.Daemon.State(), regs
	rt, err := runtime.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return rt
}

// destroyRuntime removes what the runtime of a state folder holds: every
// instance, its network namespace and cgroup, the bridge.
func destroyRuntime(tb testing.TB, stateDir string) {
	rt := openRuntime(tb, stateDir)
	defer rt.Close()
	if err := rt.Destroy(context.Background()); err != nil {
		tb.Error(err)
	}
}

// eventually polls f every 20 ms until it returns nil or 15 s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) group(t *testing.T, id string) wire.ContainerGroup {
	t.Helper()
	resp, err := s.DescribeContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ContainerGroups) != 1 {
		t.Fatalf("describe %s: %d groups", id, len(resp.ContainerGroups))
	}
	return resp.ContainerGroups[0]
}

func (s *server) waitStatus(t *testing.T, id, status string) wire.ContainerGroup {
	t.Helper()
	var g wire.ContainerGroup
	eventually(t, id+" "+status, func() error {
		g = s.group(t, id)
		if g.Status != status {
			return fmt.Errorf("status %s", g.Status)
		}
		return nil
	})
	return g
}

func (s *server) waitLog(t *testing.T, id, want string) {
	t.Helper()
	eventually(t, "log of "+id+" shows "+want, func() error {
		resp, err := s.DescribeContainerLog(context.Background(), eciapi.DescribeContainerLogRequest{ContainerGroupId: id})
		if err != nil {
			return err
		}
		if !strings.Contains(resp.Content, want) {
			return fmt.Errorf("log is %q", resp.Content)
		}
		return nil
	})
}

// looper prints a line, then ticks until SIGTERM, which it reports.
var looper = []string{"sh", "-c", `echo started; trap 'echo got SIGTERM; exit 0' TERM; while :; do echo tick; sleep 0.05; done`}

func spotRequest(name, limit string) eciapi.CreateContainerGroupRequest {
	return eciapi.CreateContainerGroupRequest{
		ContainerGroupName: name, InstanceType: "ecs.c5.large",
		SpotStrategy: eciapi.SpotWithPriceLimit, SpotPriceLimit: eciapi.Decimal(limit),
		Containers: []eciapi.Container{{Name: name, Image: "busybox", Commands: looper}},
	}
}

func findEvent(g wire.ContainerGroup, reason string) (wire.Event, bool) {
	for _, e := range g.Events {
		if e.Reason == reason {
			return e, true
		}
	}
	return wire.Event{}, false
}

// The guide's reclaim over the real API: create, Running, logs, the price
// raised above the limit, the notice, Expired, SIGTERM, and the bill.
func TestReclaimOverAPI(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	// Pin the price: at this time scale the model moves every wall second.
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal("0.056"))}); err != nil {
		t.Fatal(err)
	}
	created, err := s.CreateContainerGroup(ctx, spotRequest("pi", "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	id := created
	g := s.waitStatus(t, id, eciapi.StatusRunning)
	if g.InstanceType != "ecs.c5.large" || g.ZoneId != "cn-hangzhou-i" || g.Spoteci.PurchasePrice != 0.056 {
		t.Fatalf("landed on %s in %s at %v, want ecs.c5.large in cn-hangzhou-i at 0.056", g.InstanceType, g.ZoneId, g.Spoteci.PurchasePrice)
	}
	s.waitLog(t, id, "started")

	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal("0.5"))}); err != nil {
		t.Fatal(err)
	}
	g = s.waitStatus(t, id, eciapi.StatusExpired)
	notice, ok := findEvent(g, "SpotToBeReleased")
	if !ok || notice.Type != "Warning" || notice.Message != "Spot ECI will be released in 5 minutes" {
		t.Fatalf("events %+v: want a Warning SpotToBeReleased 'Spot ECI will be released in 5 minutes'", g.Events)
	}
	// The price rose within protection: the first check, at its end, decides.
	if notice.FirstTimestamp != g.Spoteci.ProtectionEnd || !at(t, g.ExpiredTime).Equal(at(t, notice.FirstTimestamp).Add(5*time.Minute)) {
		t.Errorf("notice %v, release %v; want the notice at the end of protection %v and the release 5 minutes later", notice.FirstTimestamp, g.ExpiredTime, g.Spoteci.ProtectionEnd)
	}
	s.waitLog(t, id, "got SIGTERM")

	bill, err := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.056*1 + 0.5*5/60; math.Abs(bill.Amount-want) > 1e-9 || math.Abs(g.Spoteci.Amount-want) > 1e-9 {
		t.Errorf("bill %v (group says %v), want an hour at 0.056 and 5 minutes at 0.5 = %v", bill.Amount, g.Spoteci.Amount, want)
	}
	if n := len(bill.Items[0].Lines); n != 2 {
		t.Errorf("%d bill lines, want 2 (protection, then the market price)", n)
	}
}

// A restart of the service in the middle loses no group, event, bill line or
// price point, and the containers run on.
func TestRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := startServer(t, dir)
	keep, err := a.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: "keep", InstanceType: "2-4Gi",
		SpotStrategy: eciapi.SpotAsPriceGo, Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: looper}}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := a.CreateContainerGroup(ctx, spotRequest("gone", "0.06"))
	if err != nil {
		t.Fatal(err)
	}
	a.waitLog(t, keep, "tick")
	if _, err := a.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal("0.07"))}); err != nil {
		t.Fatal(err)
	}
	a.waitStatus(t, gone, eciapi.StatusExpired)
	var goneBefore wire.ContainerGroup
	eventually(t, "the reclaimed container's exit recorded", func() error {
		goneBefore = a.group(t, gone)
		if _, ok := findEvent(goneBefore, "Completed"); !ok {
			return fmt.Errorf("events %+v", goneBefore.Events)
		}
		return nil
	})
	billBefore, err := a.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{gone}})
	if err != nil {
		t.Fatal(err)
	}
	logBefore, _ := a.DescribeContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: keep})
	a.stop()

	b := startServer(t, dir)
	keepAfter := b.waitStatus(t, keep, eciapi.StatusRunning)
	goneAfter := b.group(t, gone)
	if goneAfter.Status != eciapi.StatusExpired || len(goneAfter.Events) != len(goneBefore.Events) {
		t.Fatalf("after restart: %s with %d events, want Expired with %d", goneAfter.Status, len(goneAfter.Events), len(goneBefore.Events))
	}
	for i := range goneBefore.Events {
		if !reflect.DeepEqual(goneBefore.Events[i], goneAfter.Events[i]) {
			t.Errorf("event %d: %+v became %+v", i, goneBefore.Events[i], goneAfter.Events[i])
		}
	}
	billAfter, err := b.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{gone}})
	if err != nil {
		t.Fatal(err)
	}
	if billAfter.Amount != billBefore.Amount || len(billAfter.Items[0].Lines) != len(billBefore.Items[0].Lines) {
		t.Errorf("bill %v with %d lines became %v with %d", billBefore.Amount, len(billBefore.Items[0].Lines), billAfter.Amount, len(billAfter.Items[0].Lines))
	}
	history, err := b.DescribeSpotPriceHistory(ctx, wire.DescribeSpotPriceHistoryRequest{ZoneId: "cn-hangzhou-i", InstanceType: "ecs.c5.large"})
	if err != nil {
		t.Fatal(err)
	}
	if points := history.SpotPrices.SpotPriceType; len(points) == 0 || points[len(points)-1].SpotPrice != 0.07 {
		t.Errorf("price history %+v, want it to end at the override 0.07 kept across the restart", points)
	}
	// The container kept running through the restart: its log grows.
	b.waitLog(t, keep, logBefore.Content+"tick")
	if keepAfter.Spoteci.Amount <= 0 {
		t.Errorf("the running group's bill is %v", keepAfter.Spoteci.Amount)
	}
	if err := b.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: keep}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{keep}}); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// at parses a time of the wire.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := wire.ParseTime(s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

// Bad input is a 4xx naming the field and the value; nothing is created.
func TestBadInput(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	base := func() eciapi.CreateContainerGroupRequest { return spotRequest("bad", "0.1") }
	cases := []struct {
		name   string
		mutate func(*eciapi.CreateContainerGroupRequest)
		status int
		want   []string // substrings of the message
	}{
		{"unknown strategy", func(r *eciapi.CreateContainerGroupRequest) { r.SpotStrategy = "SpotCheapest" }, 400, []string{"SpotStrategy", `"SpotCheapest"`}},
		{"limit without SpotWithPriceLimit", func(r *eciapi.CreateContainerGroupRequest) { r.SpotStrategy = eciapi.SpotAsPriceGo }, 400, []string{"SpotPriceLimit", `"0.1"`}},
		{"limit with 4 decimals", func(r *eciapi.CreateContainerGroupRequest) { r.SpotPriceLimit = "0.2555" }, 400, []string{"SpotPriceLimit", `"0.2555"`, "3 decimals"}},
		{"negative duration", func(r *eciapi.CreateContainerGroupRequest) { r.SpotDuration = ptr(eciapi.Decimal("-1")) }, 400, []string{"SpotDuration", `"-1"`}},
		{"non-integer duration", func(r *eciapi.CreateContainerGroupRequest) { r.SpotDuration = ptr(eciapi.Decimal("1.5")) }, 400, []string{"SpotDuration", `"1.5"`}},
		{"unknown type", func(r *eciapi.CreateContainerGroupRequest) { r.InstanceType = "ecs.nope.large" }, 400, []string{"InstanceType", "ecs.nope.large"}},
		{"malformed spec", func(r *eciapi.CreateContainerGroupRequest) { r.InstanceType = "2-4G" }, 400, []string{"InstanceType", `"2-4G"`}},
		{"too small spec", func(r *eciapi.CreateContainerGroupRequest) { r.InstanceType = "1-2Gi" }, 400, []string{"InstanceType", `"1-2Gi"`}},
		{"unknown zone", func(r *eciapi.CreateContainerGroupRequest) { r.ZoneId = "cn-hangzhou-z" }, 400, []string{"ZoneId", `"cn-hangzhou-z"`}},
		{"zone of another region", func(r *eciapi.CreateContainerGroupRequest) { r.ZoneId = "cn-beijing-h" }, 400, []string{"ZoneId", `"cn-beijing-h"`}},
		{"no image", func(r *eciapi.CreateContainerGroupRequest) { r.Containers[0].Image = "" }, 400, []string{"Image", "has no Image"}},
		{"bad pull policy", func(r *eciapi.CreateContainerGroupRequest) { r.Containers[0].ImagePullPolicy = "Sometimes" }, 400, []string{"ImagePullPolicy", "Sometimes"}},
		{"host IP field", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].EnvironmentVars = []eciapi.EnvironmentVar{{Key: "H", FieldRef: &eciapi.FieldRef{FieldPath: "status.hostIP"}}}
		}, 400, []string{"FieldPath", "status.hostIP"}},
		{"no container", func(r *eciapi.CreateContainerGroupRequest) { r.Containers = nil }, 400, []string{"container"}},
		{"21 containers", func(r *eciapi.CreateContainerGroupRequest) {
			for i := range 20 {
				c := r.Containers[0]
				c.Name = fmt.Sprint("c", i)
				r.Containers = append(r.Containers, c)
			}
		}, 400, []string{"Container", "at most 20"}},
		{"price limit above the bound", func(r *eciapi.CreateContainerGroupRequest) { r.SpotPriceLimit = "1000000" }, 400, []string{"SpotPriceLimit", "up to 100000"}},
		{"protection without spot", func(r *eciapi.CreateContainerGroupRequest) {
			r.SpotStrategy, r.SpotPriceLimit, r.SpotDuration = "", "", ptr(eciapi.Decimal("1"))
		}, 400, []string{"SpotDuration", "spot strategy"}},
		{"empty env key", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].EnvironmentVars = []eciapi.EnvironmentVar{{Key: "", Value: "x"}}
		}, 400, []string{"EnvironmentVar.Key"}},
		{"env key with =", func(r *eciapi.CreateContainerGroupRequest) {
			r.Containers[0].EnvironmentVars = []eciapi.EnvironmentVar{{Key: "A=B", Value: "x"}}
		}, 400, []string{"EnvironmentVar.Key", `"A=B"`}},
		{"volume name with a slash", func(r *eciapi.CreateContainerGroupRequest) {
			r.Volumes = []eciapi.Volume{{Name: "a/b", Type: eciapi.VolumeEmptyDir}}
		}, 400, []string{"Volume.Name", `"a/b"`}},
		{"oversized specs, quoted short", func(r *eciapi.CreateContainerGroupRequest) {
			r.InstanceType = strings.Repeat("2-4Gi\x01", 20000)
		}, 400, []string{"InstanceType", "(120000 bytes)"}},
		{"bid below market", func(r *eciapi.CreateContainerGroupRequest) { r.SpotPriceLimit = "0.01" }, 403, []string{"SpotPriceLimit"}},
	}
	// Container names as ECI and Kubernetes name them; nothing that could
	// not name the container's folders. Each was once accepted and then
	// never started, billed forever.
	for _, name := range []string{"a/b", "../../etc", ".hidden", "x y", "é", "Upper", "-lead", "trail-", strings.Repeat("n", 129)} {
		cases = append(cases, struct {
			name   string
			mutate func(*eciapi.CreateContainerGroupRequest)
			status int
			want   []string
		}{"container name " + name[:min(len(name), 12)], func(r *eciapi.CreateContainerGroupRequest) { r.Containers[0].Name = name }, 400,
			[]string{"Container.Name", annotation.Quote(name)}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := base()
			c.mutate(&req)
			_, err := s.CreateContainerGroup(ctx, req)
			var e *eciapi.Error
			if !errors.As(err, &e) || e.HTTPStatus != c.status {
				t.Fatalf("err %v, want HTTP %d", err, c.status)
			}
			for _, w := range c.want { // the field is in the code or the message
				if !strings.Contains(e.Code+" "+e.Message, w) {
					t.Errorf("%s %q does not name %s", e.Code, e.Message, w)
				}
			}
			if len(e.Message) > 1000 {
				t.Errorf("a message of %d bytes: the input is not quoted short", len(e.Message))
			}
		})
	}
	all, err := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{})
	if err != nil || all.TotalCount != 0 {
		t.Fatalf("after bad requests: %d groups, %v", all.TotalCount, err)
	}

	raw := func(auth, action, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.admin.Endpoint+eciapi.APIPrefix+action, bytes.NewBufferString(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		auth, action, body string
		status             int
		want               string
	}{
		{"", eciapi.ActionDescribeBill, "{}", 401, "token"},
		{"Bearer wrong", eciapi.ActionDescribeBill, "{}", 401, "token"},
		{"Bearer " + token, "RunEverything", "{}", 404, "RunEverything"},
		// ECI's own actions are answered at / only, through the SDK.
		{"Bearer " + token, eciapi.ActionCreateContainerGroup, "{}", 404, "CreateContainerGroup"},
		{"Bearer " + token, eciapi.ActionModifySpotMarket, "{not json", 400, "malformed"},
		{"Bearer " + token, eciapi.ActionModifySpotMarket, `{"InstanceTpye": "typo"}`, 400, "InstanceTpye"},
		{"Bearer " + token, eciapi.ActionModifySpotMarket, `{"InstanceType": "ecs.c5.large", "Stock": -1}`, 400, "Stock"},
		{"Bearer " + token, eciapi.ActionModifySpotMarket, `{"InstanceType": "ecs.nope", "Stock": 1}`, 400, "ecs.nope"},
		{"Bearer " + token, eciapi.ActionDescribeBill, `{"ContainerGroupIds": ["eci-nope"]}`, 404, "eci-nope"},
		{"Bearer " + token, eciapi.ActionDescribeBill, `{} {"ContainerGroupIds": ["eci-nope"]}`, 400, "after the JSON"},
		// Money is bounded where it enters: 1e308 once made every bill +Inf.
		{"Bearer " + token, eciapi.ActionModifySpotMarket, `{"InstanceType": "ecs.c5.large", "SpotPrice": "1e308"}`, 400, "SpotPrice"},
		{"Bearer " + token, eciapi.ActionModifySpotMarket, `{"InstanceType": "ecs.c5.large", "SpotPrice": "NaN"}`, 400, "SpotPrice"},
	} {
		status, body := raw(c.auth, c.action, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want %d naming %s", c.action, c.body, status, body, c.status, c.want)
		}
	}
	// The metrics show billed totals: the admin token reads them.
	if resp, err := http.Get(s.admin.Endpoint + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %v %v, want 401", resp, err)
	}
	if _, err := s.admin.Metrics(ctx); err != nil {
		t.Errorf("/metrics with the token: %v", err)
	}
}

// ClientToken makes creation idempotent; fallback creates pay-as-you-go when
// spot stock is short, and without it the request fails with NoStock.
func TestClientTokenAndFallback(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	req := spotRequest("once", "0.1")
	req.ClientToken = "pod-uid-1"
	first, err := s.CreateContainerGroup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.CreateContainerGroup(ctx, req)
	if err != nil || second != first {
		t.Fatalf("same ClientToken: %v %v, want %s again", second, err, first)
	}
	if all, _ := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{}); all.TotalCount != 1 {
		t.Fatalf("%d groups after a repeated ClientToken", all.TotalCount)
	}

	// One unit of stock, in cn-hangzhou-i, held by the first group.
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", Stock: ptr(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateContainerGroup(ctx, spotRequest("nostock", "0.1"))
	var e *eciapi.Error
	if !errors.As(err, &e) || e.HTTPStatus != 403 || e.Code != "OperationDenied.NoStock" {
		t.Fatalf("no stock, no fallback: %v, want 403 OperationDenied.NoStock", err)
	}
	req = spotRequest("fallback", "0.1")
	req.SpotFallback = true
	fb, err := s.CreateContainerGroup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	g := s.waitStatus(t, fb, eciapi.StatusRunning)
	if ev, ok := findEvent(g, "SpotDegraded"); !g.Spoteci.Degraded || g.Spoteci.PurchasePrice != 0.622 || !ok || ev.Type != "Warning" {
		t.Fatalf("fallback group degraded=%v price=%v events=%+v, want pay-as-you-go at 0.622 with a SpotDegraded warning", g.Spoteci.Degraded, g.Spoteci.PurchasePrice, g.Events)
	}
	price, err := s.DescribeContainerGroupPrice(ctx, eciapi.DescribeContainerGroupPriceRequest{InstanceType: "ecs.c5.large", SpotStrategy: eciapi.SpotAsPriceGo})
	if err != nil || price.Spoteci == nil || price.Spoteci.ZoneId != "" || !strings.Contains(price.Spoteci.Reason, "stock") {
		t.Fatalf("price with no stock: %+v %v, want no placement for want of stock", price, err)
	}
	body, err := s.admin.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"spoteci_spot_fallbacks_total 1", `spoteci_instances{capacity_type="spot",status="Running"} 1`, `spoteci_instances{capacity_type="payg",status="Running"} 1`, "spoteci_api_request_duration_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// What the node needs beyond ECI: groups found by tag, a log that streams
// while the container runs, and a delete with a grace period of its own.
func TestTagsStreamAndDeleteGrace(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	req := spotRequest("tagged", "0.1")
	req.Tags = []eciapi.Tag{{Key: "spoteci.io/node", Value: "n1"}, {Key: "spoteci.io/pod", Value: "default/pi"}}
	created, err := s.CreateContainerGroup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainerGroup(ctx, spotRequest("untagged", "0.1")); err != nil {
		t.Fatal(err)
	}
	byTag, err := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{Tags: []eciapi.Tag{{Key: "spoteci.io/node", Value: "n1"}}})
	if err != nil || byTag.TotalCount != 1 || byTag.ContainerGroups[0].ContainerGroupId != created || byTag.Spoteci.TimeScale != scale {
		t.Fatalf("describe by tag: %+v %v", byTag, err)
	}
	s.waitStatus(t, created, eciapi.StatusRunning)
	stream, err := s.admin.StreamContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: created, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	buf := make([]byte, 4096)
	var got strings.Builder
	for strings.Count(got.String(), "tick") < 3 {
		n, err := stream.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended early after %q: %v", got.String(), err)
		}
	}
	// Grace 0: SIGKILL at once, so the trap never prints and the stream ends.
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: created, GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(stream)
	if err != nil {
		t.Fatalf("reading the rest of the stream: %v", err)
	}
	if strings.Contains(string(rest), "got SIGTERM") {
		t.Errorf("grace 0 still let the container handle SIGTERM: %q", rest)
	}
}

// TestDescribeBillByTags: a bill asked by tags has the groups that carry
// them all, deleted ones too, and no other.
func TestDescribeBillByTags(t *testing.T) {
	s, train, _ := mlJobs(t)
	ctx := context.Background()
	s.waitStatus(t, train[0], eciapi.StatusRunning)
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: train[0]}); err != nil {
		t.Fatal(err)
	}
	bill, err := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{Tags: []eciapi.Tag{{Key: eciapi.TagNamespace, Value: "ml"}, {Key: eciapi.TagJob, Value: "train"}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range bill.Items {
		got = append(got, it.ContainerGroupId)
	}
	slices.Sort(got)
	slices.Sort(train)
	if !slices.Equal(got, train) {
		t.Errorf("bill of Job ml/train: %v, want %v", got, train)
	}
}

// mlJobs starts a server with three groups in namespace ml: two of Job
// train, one of Job etl.
func mlJobs(t *testing.T) (s *server, train []string, etl string) {
	t.Helper()
	s = startServer(t, t.TempDir())
	for i := range 2 {
		id, err := s.CreateContainerGroup(context.Background(), jobRequest(fmt.Sprint("train-", i), "ml", "train"))
		if err != nil {
			t.Fatal(err)
		}
		train = append(train, id)
	}
	etl, err := s.CreateContainerGroup(context.Background(), jobRequest("etl", "ml", "etl"))
	if err != nil {
		t.Fatal(err)
	}
	return s, train, etl
}
