package eci

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/runtime/model"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// BenchmarkScrape10k measures a /metrics scrape of a service holding 10,000
// running instances of 100 Jobs in 10 namespaces (on the model runtime), and
// the part of it under the service's lock.
func BenchmarkScrape10k(b *testing.B) {
	const n = 10_000
	ctx, cancel := context.WithCancel(context.Background())
	dir := b.TempDir()
	rt, err := model.New(model.Config{Dir: filepath.Join(dir, "model"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, Config{StateDir: dir, TimeScale: 1, Runtime: rt})
	if err != nil {
		b.Fatal(err)
	}
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	b.Cleanup(func() {
		cancel()
		<-ran
		s.Close()
		rt.Close()
	})
	for i := range n {
		req := eciapi.CreateContainerGroupRequest{ContainerGroupName: fmt.Sprint("g", i), InstanceType: "2-4Gi", SpotStrategy: eciapi.SpotAsPriceGo,
			Containers: []eciapi.Container{{Name: "c", Image: "busybox"}},
			Tags:       []eciapi.Tag{{Key: eciapi.TagNamespace, Value: fmt.Sprint("ns", i%10)}, {Key: eciapi.TagJob, Value: fmt.Sprint("job", i%100)}}}
		if _, err := s.CreateContainerGroup(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	h := s.Handler(Credentials{Token: "t"})
	var scraped, locked time.Duration
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		scraped += time.Since(start)
		if rec.Code != http.StatusOK {
			b.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
		}
		start = time.Now()
		s.metrics.state.snapshot()
		locked += time.Since(start)
	}
	b.ReportMetric(float64(scraped.Microseconds())/1000/float64(b.N), "scrape-ms")
	b.ReportMetric(float64(locked.Microseconds())/1000/float64(b.N), "locked-ms")
}
