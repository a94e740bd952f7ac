package eci

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spoteci/spoteci/internal/market"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	notices   prometheus.Counter
	releases  *prometheus.CounterVec
	fallbacks prometheus.Counter
	billed    prometheus.Counter
	overrides prometheus.Counter
	latency   *prometheus.HistogramVec
}

func newMetrics(s *Service) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		notices: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoteci_spot_notices_total",
			Help: "SpotToBeReleased notices sent."}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoteci_spot_releases_total",
			Help: "Spot instances released by the market, by reason (price or stock)."}, []string{"reason"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoteci_spot_fallbacks_total",
			Help: "Pay-as-you-go instances created because spot stock was short (SpotDegraded)."}),
		billed: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoteci_billed_cny_total",
			Help: "Amount of the closed bill lines, in CNY."}),
		overrides: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoteci_market_overrides_total",
			Help: "Operator overrides of price or stock, per pool."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spoteci_api_request_duration_seconds",
			Help: "Latency of API requests by action and HTTP status.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)},
			[]string{"action", "code"}),
	}
	states := prometheus.NewDesc("spoteci_instances", "Container groups by status.", []string{"status"}, nil)
	m.registry.MustRegister(m.notices, m.releases, m.fallbacks, m.billed, m.overrides, m.latency,
		collectorFunc{desc: states, collect: func(ch chan<- prometheus.Metric) {
			counts := map[string]int{}
			s.mu.Lock()
			for _, g := range s.groups {
				switch {
				case g.Deleted:
				case g.Status != "":
					counts[g.Status]++
				case g.inst.State == market.ToBeReleased:
					counts["ToBeReleased"]++
				default:
					counts[eciapi.StatusRunning]++
				}
			}
			s.mu.Unlock()
			for status, n := range counts {
				ch <- prometheus.MustNewConstMetric(states, prometheus.GaugeValue, float64(n), status)
			}
		}},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) event(e market.Event) {
	switch e.Kind {
	case market.EventToBeReleased:
		m.notices.Inc()
	case market.EventDegraded:
		m.fallbacks.Inc()
	}
}

func (m *metrics) released(r market.Reason) { m.releases.WithLabelValues(string(r)).Inc() }

// collectorFunc is a collector computed at scrape time.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
