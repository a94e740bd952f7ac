package eci_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/eciprovider"
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
