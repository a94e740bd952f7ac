package eci_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// printer is a container that prints about mb megabytes of 64-byte lines,
// then "done".
func printer(name string, mb int) eciapi.CreateContainerGroupRequest {
	script := fmt.Sprintf(`yes %s | head -c %d; echo done`, strings.Repeat("x", 63), mb<<20)
	return eciapi.CreateContainerGroupRequest{ContainerGroupName: name, InstanceType: "2-4Gi",
		Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"sh", "-c", script}}}}
}

// DescribeContainerLog answers at most 1 MiB, or LimitBytes, as ECI does: a
// big log is no longer read whole into the server's memory.
func TestDescribeLogCapped(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	id, err := s.CreateContainerGroup(ctx, printer("chatty", 3))
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, id, eciapi.StatusSucceeded)
	for _, c := range []struct{ limit, want int }{{0, eciapi.MaxLogBytes}, {100, 100}} {
		resp, err := s.DescribeContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: id, LimitBytes: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Content) != c.want {
			t.Errorf("LimitBytes %d: %d bytes, want %d", c.limit, len(resp.Content), c.want)
		}
	}
	_, err = s.DescribeContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: id, LimitBytes: 2 << 20})
	if e := (*eciapi.Error)(nil); !errors.As(err, &e) || e.HTTPStatus != 400 || !strings.Contains(e.Code, "LimitBytes") {
		t.Errorf("LimitBytes 2 MiB: %v, want 400 naming LimitBytes", err)
	}
	// The followed stream has no limit: all of it, to the last line.
	rc, err := s.admin.StreamContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: id, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "done\n" {
		t.Errorf("the last line streamed is %q, want done", b)
	}
}

// BenchmarkLogStream200MB streams a 200 MB log (StreamContainerLog) and
// reads 1 MiB of it (DescribeContainerLog) and reports the peak growth of
// the server's heap meanwhile. Target: at most 16 MB. The container's log cap
// is raised so that the whole 200 MB is on disk.
func BenchmarkLogStream200MB(b *testing.B) {
	dir := b.TempDir()
	rt := openRuntimeWith(b, dir, runtime.Config{LogMaxSize: 400 << 20})
	s := startServerWith(b, eci.Config{StateDir: dir, TimeScale: 1, Runtime: rt})
	ctx := context.Background()
	id, err := s.CreateContainerGroup(ctx, printer("big", 200))
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := s.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}})
		if err != nil {
			b.Fatal(err)
		}
		if resp.ContainerGroups[0].Status == eciapi.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the 200 MB log was not written within 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var streamPeak, describePeak float64
	b.ResetTimer()
	for b.Loop() {
		var streamed int64
		streamPeak = max(streamPeak, heapGrowth(func() {
			rc, err := s.admin.StreamContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: id})
			if err != nil {
				b.Fatal(err)
			}
			streamed, _ = io.Copy(io.Discard, rc)
			rc.Close()
		}))
		if streamed < 200<<20 {
			b.Fatalf("streamed %d bytes, want the whole 200 MB", streamed)
		}
		describePeak = max(describePeak, heapGrowth(func() {
			if _, err := s.DescribeContainerLog(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: id}); err != nil {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(streamPeak, "stream-heap-MB")
	b.ReportMetric(describePeak, "describe-heap-MB")
}

// heapGrowth runs f and returns the peak growth of the heap in use while it
// ran, in MB, sampled every 5 ms.
func heapGrowth(f func()) float64 {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	base := m.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m goruntime.MemStats
			goruntime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak.Load() {
				peak.Store(m.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return float64(peak.Load()) / 1e6
}
