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
	owners := []string{"namespace", "job"}
	billed := prometheus.NewDesc("spoteci_bill_amount_cny", "The bill so far of the container groups of a namespace and Job (the virtual node's tags; empty for others), in CNY.", owners, nil)
	payg := prometheus.NewDesc("spoteci_bill_payg_equivalent_cny", "What the same instance time would have cost pay-as-you-go, by namespace and Job, in CNY.", owners, nil)
	m.registry.MustRegister(m.notices, m.releases, m.fallbacks, m.billed, m.overrides, m.latency,
		collectorFunc{descs: []*prometheus.Desc{billed, payg}, collect: func(ch chan<- prometheus.Metric) {
			type owner struct{ namespace, job string }
			amounts, paygs := map[owner]float64{}, map[owner]float64{}
			s.mu.Lock()
			now := s.core.Now()
			for _, g := range s.groups {
				o := owner{tagValue(g.Request.Tags, eciapi.TagNamespace), tagValue(g.Request.Tags, eciapi.TagJob)}
				amounts[o] += amount(s.book, g, now)
				end := now
				if g.inst.State.Ended() {
					end = g.inst.Ended
				}
				paygs[o] += end.Sub(g.inst.Created).Seconds() * g.inst.Offering.OnDemand / 3600
			}
			s.mu.Unlock()
			for o, v := range amounts {
				ch <- prometheus.MustNewConstMetric(billed, prometheus.GaugeValue, v, o.namespace, o.job)
				ch <- prometheus.MustNewConstMetric(payg, prometheus.GaugeValue, paygs[o], o.namespace, o.job)
			}
		}},
		collectorFunc{descs: []*prometheus.Desc{states}, collect: func(ch chan<- prometheus.Metric) {
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
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// tagValue is the value of tag key, or "".
func tagValue(tags []eciapi.Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
