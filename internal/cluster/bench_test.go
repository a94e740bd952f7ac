package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkStart measures, with binaries already built, the time from Start to
// a usable cluster (apiserver ready, default service account present) on a
// fresh state folder and again on the same folder, and the resident memory of
// the whole control plane at rest. ns/op includes a 15 s pause at rest.
func BenchmarkStart(b *testing.B) {
	requireBinaries(b)
	ctx := context.Background()
	var fresh, restart time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		state := b.TempDir()
		began := time.Now()
		c, err := Start(ctx, Config{StateDir: state, BinDir: binDir})
		if err != nil {
			b.Fatal(err)
		}
		fresh += time.Since(began)

		// At rest: controllers have synced and the first bursts are over.
		time.Sleep(15 * time.Second)
		total, per, err := controlPlaneRSS(c)
		if err != nil {
			b.Fatal(err)
		}
		rss += total
		b.Logf("RSS at rest: %s", per)
		if err := c.Stop(ctx); err != nil {
			b.Fatal(err)
		}

		began = time.Now()
		c, err = Start(ctx, Config{StateDir: state, BinDir: binDir})
		if err != nil {
			b.Fatal(err)
		}
		restart += time.Since(began)
		if err := c.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(fresh.Seconds()/n, "ready-fresh-s")
	b.ReportMetric(restart.Seconds()/n, "ready-restart-s")
	b.ReportMetric(float64(rss)/n/(1<<20), "rss-MiB")
}

// controlPlaneRSS sums VmRSS of the components, from /proc.
func controlPlaneRSS(c *Cluster) (int64, string, error) {
	var total int64
	var per []string
	for _, comp := range c.comps {
		kb, err := vmRSSKiB(comp.pid())
		if err != nil {
			return 0, "", err
		}
		total += kb << 10
		per = append(per, fmt.Sprintf("%s=%dMiB", comp.name, kb>>10))
	}
	return total, strings.Join(per, " "), nil
}

func vmRSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
