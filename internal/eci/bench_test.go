package eci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/eciprovider"
	"github.com/spoteci/spoteci/internal/ecisdk"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// BenchmarkCreateContainerGroup creates groups running `true` in busybox over
// loopback HTTP with 8 concurrent clients, each a real container under
// containerd, persisted in SQLite. Target: at least 300 creates a second. It
// also reports the rate at which the groups ran to Succeeded.
func BenchmarkCreateContainerGroup(b *testing.B) {
	s := startBenchServer(b, b.TempDir())
	ctx := context.Background()
	req := eciapi.CreateContainerGroupRequest{ContainerGroupName: "bench", InstanceType: "2-4Gi", SpotStrategy: eciapi.SpotAsPriceGo,
		Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"true"}}}}
	var failed atomic.Int64
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 clients
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.CreateContainerGroup(ctx, req); err != nil {
				failed.Add(1)
			}
		}
	})
	created := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d creates failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/created.Seconds(), "creates/s")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{Status: eciapi.StatusSucceeded})
		if err != nil {
			b.Fatal(err)
		}
		if resp.TotalCount == b.N {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d groups Succeeded after 5 minutes", resp.TotalCount, b.N)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "completed/s")
}

// BenchmarkRestart10k measures how long a service holding 10,000 groups takes
// from Open to answering DescribeContainerGroups over HTTP (target: under 2 s).
// The groups are live records whose image is not on the machine and may not
// be pulled (ImagePullPolicy Never): they hold no container, only state.
func BenchmarkRestart10k(b *testing.B) {
	const n = 10_000
	dir := b.TempDir()
	s := startBenchServer(b, dir)
	ctx := context.Background()
	for i := range n {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "2-4Gi", SpotStrategy: eciapi.SpotAsPriceGo,
			Containers: []eciapi.Container{{Name: "c", Image: "not-pulled:1", ImagePullPolicy: "Never"}}}
		if _, err := s.CreateContainerGroup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	s.stop()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		s := startBenchServer(b, dir)
		resp, err := s.DescribeAvailableResource(ctx, wire.DescribeAvailableResourceRequest{DestinationResource: "Zone", ZoneId: "cn-hangzhou-i", InstanceType: "ecs.c5.large"})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/restart")
		if len(resp.AvailableZones.AvailableZone) != 1 {
			b.Fatal("no answer")
		}
		s.stop()
	}
}

func startBenchServer(b *testing.B, dir string) *server {
	return startServerWith(b, eci.Config{StateDir: dir, TimeScale: 1})
}

// BenchmarkDescribePaged lists, through the official SDK, the 500 groups of
// one node tag among 1,000, 100 a page (what a virtual node's poll does),
// and reports the time of one page and of the whole listing. Target: a page
// within 50 ms. The groups hold no container (ImagePullPolicy Never on an
// image that is not there): only their state is listed.
func BenchmarkDescribePaged(b *testing.B) {
	s := startBenchServer(b, b.TempDir())
	ctx := context.Background()
	for i := range 1000 {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "2-4Gi",
			Tags:       []eciapi.Tag{{Key: "spoteci.io/node", Value: fmt.Sprint("node-", i%2)}},
			Containers: []eciapi.Container{{Name: "c", Image: "not-pulled:1", ImagePullPolicy: "Never"}}}
		if _, err := s.CreateContainerGroup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	c := s.sdk(b)
	pages := 0
	b.ResetTimer()
	for b.Loop() {
		token, listed := "", 0
		for {
			req := sdkeci.CreateDescribeContainerGroupsRequest()
			req.Tag = &[]sdkeci.DescribeContainerGroupsTag{{Key: "spoteci.io/node", Value: "node-0"}}
			req.Limit = requests.NewInteger(100)
			req.NextToken = token
			resp, err := c.DescribeContainerGroups(req)
			if err != nil {
				b.Fatal(err)
			}
			pages++
			listed += len(resp.ContainerGroups)
			if token = resp.NextToken; token == "" {
				break
			}
		}
		if listed != 500 {
			b.Fatalf("listed %d, want 500", listed)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(pages), "ms/page")
}

// BenchmarkProviderList is the virtual node's poll: the provider lists the
// 1,000 groups of one node through the SDK, one page, into the node's types.
func BenchmarkProviderList(b *testing.B) {
	s := startBenchServer(b, b.TempDir())
	ctx := context.Background()
	for i := range 1000 {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "2-4Gi",
			Tags:       []eciapi.Tag{{Key: "spoteci.io/node", Value: "node-0"}},
			Containers: []eciapi.Container{{Name: "c", Image: "not-pulled:1", ImagePullPolicy: "Never"}}}
		if _, err := s.CreateContainerGroup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	p, err := eciprovider.New(eciprovider.Config{Config: s.sdkConfig(), PageSize: eci.MaxPageSize})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		list, err := p.List(ctx, map[string]string{"spoteci.io/node": "node-0"})
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != 1000 {
			b.Fatalf("listed %d", len(list))
		}
	}
}

// BenchmarkProviderChanged is the virtual node's poll at 10,000 groups of
// one node: what changed in its last seconds (DescribeContainerGroupStatus
// with SinceSecond, through the SDK: 10 groups deleted) against the full
// listing a resync reads, both into the node's types. The groups hold no
// container (ImagePullPolicy Never on an image that is not there).
func BenchmarkProviderChanged(b *testing.B) {
	const n, changed = 10_000, 10
	wall := &fakeWall{t: time.Now().UTC()}
	s := startServerWith(b, eci.Config{StateDir: b.TempDir(), TimeScale: 1, Wall: wall.now})
	ctx := context.Background()
	tags := map[string]string{"spoteci.io/node": "node-0"}
	var ids []string
	for i := range n {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "2-4Gi",
			Tags:       []eciapi.Tag{{Key: "spoteci.io/node", Value: "node-0"}},
			Containers: []eciapi.Container{{Name: "c", Image: "not-pulled:1", ImagePullPolicy: "Never"}}}
		id, err := s.CreateContainerGroup(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	p, err := eciprovider.New(eciprovider.Config{Config: s.sdkConfig(), PageSize: eci.MaxPageSize})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	// Once the runtime has tried every group (each waits for its image), a
	// minute passes with no change.
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Second) {
		list, err := p.List(ctx, tags)
		if err != nil {
			b.Fatal(err)
		}
		tried := 0
		for _, in := range list {
			if in.Containers[0].State.Reason == "ErrImageNeverPull" {
				tried++
			}
		}
		if tried == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the runtime tried %d groups of %d in 10 minutes", tried, n)
		}
	}
	wall.advance(2 * time.Minute)
	since := eci.MinSinceSecond
	if resp, err := s.DescribeContainerGroupStatus(ctx, eciapi.DescribeContainerGroupStatusRequest{SinceSecond: &since, Limit: 1}); err != nil || resp.TotalCount != 0 {
		b.Fatalf("%d groups changed in a minute without a change (%v)", resp.TotalCount, err)
	}
	for _, id := range ids[:changed] {
		if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Changed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			list, err := p.Changed(ctx, tags, 3*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != changed {
				b.Fatalf("%d changed, want %d", len(list), changed)
			}
		}
	})
	b.Run("List", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			list, err := p.List(ctx, tags)
			if err != nil {
				b.Fatal(err)
			}
			if len(list) != n-changed {
				b.Fatalf("listed %d, want %d", len(list), n-changed)
			}
		}
	})
}

// BenchmarkDescribeWhileCreating runs 20 clients that each list every group
// (DescribeContainerGroups through the SDK, one page) once a second, as 20
// virtual nodes polling, while 100 groups of real busybox containers are
// created one after another and until they all run. It reports the
// listing's p99 and the creates' p50 against the p50 of 100 creates on an
// idle service. Targets: describe p99 at most 20 ms; create p50 within 2x of
// idle. The clients run in a process of their own, as clients do: in the
// server's process their JSON decoding would queue the server's goroutines.
// It also reports the server's own p99 (arrival to last byte), which leaves
// out the client's decoding and its wait for a CPU.
func BenchmarkDescribeWhileCreating(b *testing.B) {
	const creates = 100
	ctx := context.Background()
	create := func(s *server, name string) time.Duration {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: name, InstanceType: "2-4Gi",
			Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"sleep", "600"}}}}
		start := time.Now()
		if _, err := s.CreateContainerGroup(ctx, req); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	allRunning := func(s *server) {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			resp, err := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{Status: eciapi.StatusRunning})
			if err != nil {
				b.Fatal(err)
			}
			if resp.TotalCount == creates {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d groups Running after 5 minutes", resp.TotalCount, creates)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var describeP50, describeP99, servedP99, createP50, idleP50 []float64
	for b.Loop() {
		b.StopTimer()
		idle := startBenchServer(b, b.TempDir())
		var idleTimes []time.Duration
		for i := range creates {
			idleTimes = append(idleTimes, create(idle, fmt.Sprint("idle-", i)))
		}
		allRunning(idle)
		idle.stop()
		s := startBenchServer(b, b.TempDir())
		b.StartTimer()

		s.timed.took(eciapi.ActionDescribeContainerGroups)
		clients := startDescribers(b, s.sdkConfig(), creates)
		var createTimes []time.Duration
		for i := range creates {
			createTimes = append(createTimes, create(s, fmt.Sprint("busy-", i)))
		}
		allRunning(s) // the launches load the machine too
		listTimes := clients.stop()
		served := s.timed.took(eciapi.ActionDescribeContainerGroups) // the clients' and allRunning's
		b.StopTimer()
		s.stop()
		b.StartTimer()
		describeP50 = append(describeP50, quantileMs(listTimes, 0.5))
		describeP99 = append(describeP99, quantileMs(listTimes, 0.99))
		servedP99 = append(servedP99, quantileMs(served, 0.99))
		createP50 = append(createP50, quantileMs(createTimes, 0.5))
		idleP50 = append(idleP50, quantileMs(idleTimes, 0.5))
	}
	b.ReportMetric(slices.Max(describeP50), "describe-p50-ms")
	b.ReportMetric(slices.Max(describeP99), "describe-p99-ms")
	b.ReportMetric(slices.Max(servedP99), "describe-server-p99-ms")
	b.ReportMetric(slices.Max(createP50), "create-p50-ms")
	b.ReportMetric(slices.Max(idleP50), "idle-create-p50-ms")
}

// describers is the process of the listing clients.
type describers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bytes.Buffer
	tb    testing.TB
}

// envDescribers, set, makes the test binary the describers' process: the
// SDK endpoint and credentials, the clients, the period and the page size.
const envDescribers = "SPOTECI_BENCH_DESCRIBERS"

// startDescribers starts 20 clients listing limit groups once a second, in
// this test binary run again as another process.
func startDescribers(tb testing.TB, cfg ecisdk.Config, limit int) *describers {
	spec, _ := json.Marshal(describerSpec{SDK: cfg, Clients: 20, Every: time.Second, Limit: limit})
	d := &describers{cmd: exec.Command(os.Args[0], "-test.run=^$"), out: &bytes.Buffer{}, tb: tb}
	d.cmd.Env = append(os.Environ(), envDescribers+"="+string(spec))
	d.cmd.Stdout, d.cmd.Stderr = d.out, os.Stderr
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return d
}

// stop ends the clients and returns the time of every listing.
func (d *describers) stop() []time.Duration {
	d.stdin.Close()
	if err := d.cmd.Wait(); err != nil {
		d.tb.Fatalf("describers: %v", err)
	}
	var out []time.Duration
	for _, f := range strings.Fields(d.out.String()) {
		us, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			d.tb.Fatalf("describers said %q", f)
		}
		out = append(out, time.Duration(us)*time.Microsecond)
	}
	return out
}

type describerSpec struct {
	SDK     ecisdk.Config
	Clients int
	Every   time.Duration
	Limit   int
}

// runDescribers is the describers' process: each client lists once every
// period, the clients spread over it, until stdin closes, then every listing's time goes to stdout in
// microseconds.
func runDescribers(spec string) error {
	var sp describerSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return err
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	var mu sync.Mutex
	var times []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, sp.Clients)
	for i := range sp.Clients {
		c, err := ecisdk.New(sp.SDK) // each client its own, as separate programs
		if err != nil {
			return err
		}
		defer c.Close()
		wg.Go(func() {
			// Spread over the period, as independent pollers are.
			time.Sleep(time.Duration(i) * sp.Every / time.Duration(sp.Clients))
			tick := time.NewTicker(sp.Every)
			defer tick.Stop()
			for {
				start := time.Now()
				if _, err := c.DescribeContainerGroups(context.Background(), eciapi.DescribeContainerGroupsRequest{Limit: sp.Limit}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				times = append(times, time.Since(start))
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	for _, t := range times {
		fmt.Println(t.Microseconds())
	}
	return nil
}

// quantileMs is the q quantile of ds, in milliseconds.
func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}
