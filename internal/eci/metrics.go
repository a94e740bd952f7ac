package eci

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// The label sets are bounded: docs/metrics.md lists every metric, its labels
// and these caps. A Job's label is job_name, as kube-state-metrics names it:
// Prometheus gives every scraped series a job label of its own (the scrape
// job), and renames a job label of the target's to exported_job.
const (
	// maxOwnerNamespaces and maxOwnerJobs cap the namespace and job_name labels
	// of the bill metrics: the first namespaces and (namespace, Job) pairs
	// seen since the service started get series of their own, the rest are
	// counted under otherOwner.
	maxOwnerNamespaces = 100
	maxOwnerJobs       = 1000
	// otherOwner is the label value of the owners past the caps. Kubernetes
	// names have no underscore, so no namespace or Job is called that.
	otherOwner = "_other"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	notices   prometheus.Counter
	releases  *prometheus.CounterVec
	fallbacks prometheus.Counter
	billed    *prometheus.CounterVec
	overrides prometheus.Counter
	latency   *prometheus.HistogramVec
	owners    owners
	state     *stateCollector
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
		billed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spoteci_billed_cny_total",
			Help: "Amount of the closed bill lines, in CNY, by the namespace and Job of the virtual node's tags (empty for others; capped, the rest under _other)."},
			[]string{"namespace", "job_name"}),
		overrides: prometheus.NewCounter(prometheus.CounterOpts{Name: "spoteci_market_overrides_total",
			Help: "Operator overrides of price or stock, per pool."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spoteci_api_request_duration_seconds",
			Help: "Latency of API requests by action and HTTP status.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)},
			[]string{"action", "code"}),
		owners: owners{namespaces: map[string]bool{}, jobs: map[owner]bool{}},
	}
	// Both reasons exist from the start, so that rate() sees the first release.
	for _, r := range []market.Reason{market.ReasonPrice, market.ReasonStock} {
		m.releases.WithLabelValues(string(r))
	}
	var pools []*catalog.Offering // the region's
	for _, o := range s.cat.Offerings() {
		if s.zones[o.Zone] {
			pools = append(pools, o)
		}
	}
	m.state = newStateCollector(s, &m.owners, pools)
	m.registry.MustRegister(m.notices, m.releases, m.fallbacks, m.billed, m.overrides, m.latency, m.state,
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

// bill counts a closed bill line of g.
func (m *metrics) bill(g *group, amount float64) {
	o := m.owners.labels(ownerOf(g))
	m.billed.WithLabelValues(o.namespace, o.job).Add(amount)
}

// owner is the namespace and Job a group serves, from the virtual node's
// tags; empty for groups created otherwise.
type owner struct{ namespace, job string }

func ownerOf(g *group) owner {
	return owner{eciapi.TagValue(g.Request.Tags, eciapi.TagNamespace), eciapi.TagValue(g.Request.Tags, eciapi.TagJob)}
}

// owners admits owners as label values up to the caps. Admission is for the
// life of the process: a counter's series must not move between labels.
type owners struct {
	mu         sync.Mutex
	namespaces map[string]bool
	jobs       map[owner]bool
}

// labels is o as label values: o itself while the caps allow, else its Job
// (and past the namespace cap, its namespace too) as otherOwner.
func (ow *owners) labels(o owner) owner {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	if !ow.namespaces[o.namespace] {
		if len(ow.namespaces) >= maxOwnerNamespaces {
			return owner{otherOwner, otherOwner}
		}
		ow.namespaces[o.namespace] = true
	}
	if !ow.jobs[o] {
		if len(ow.jobs) >= maxOwnerJobs {
			return owner{o.namespace, otherOwner}
		}
		ow.jobs[o] = true
	}
	return o
}

// stateCollector reports, at scrape time, what the service holds: groups by
// status, bills by owner, prices of the pools in use. It copies what it needs
// under the service's lock and computes outside it.
type stateCollector struct {
	s      *Service
	owners *owners
	pools  []*catalog.Offering

	instances, billAmount, billPayg, spotPrice, paygPrice, stock *prometheus.Desc
}

func newStateCollector(s *Service, owners *owners, pools []*catalog.Offering) *stateCollector {
	byOwner := []string{"namespace", "job_name"}
	byPool := []string{"zone", "instance_type"}
	return &stateCollector{s: s, owners: owners, pools: pools,
		instances: prometheus.NewDesc("spoteci_instances",
			"Container groups not deleted, by status and capacity type (spot, or payg: NoSpot and spot fallbacks).", []string{"status", "capacity_type"}, nil),
		billAmount: prometheus.NewDesc("spoteci_bill_amount_cny",
			"The bill so far of the container groups held, by the namespace and Job of the virtual node's tags (empty for others; capped, the rest under _other), in CNY.", byOwner, nil),
		billPayg: prometheus.NewDesc("spoteci_bill_payg_equivalent_cny",
			"What the same instance time would have cost pay-as-you-go, by namespace and Job as spoteci_bill_amount_cny, in CNY.", byOwner, nil),
		spotPrice: prometheus.NewDesc("spoteci_spot_price_cny_per_hour",
			"The spot price now of the pools that hold a live instance or were overridden, in CNY an hour.", byPool, nil),
		paygPrice: prometheus.NewDesc("spoteci_payg_price_cny_per_hour",
			"The pay-as-you-go price of the same pools as spoteci_spot_price_cny_per_hour, in CNY an hour.", byPool, nil),
		stock: prometheus.NewDesc("spoteci_spot_stock",
			"The spot stock now of the same pools as spoteci_spot_price_cny_per_hour, in instances.", byPool, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.instances, c.billAmount, c.billPayg, c.spotPrice, c.paygPrice, c.stock} {
		ch <- d
	}
}

// groupState is what a scrape needs of a group, copied under the lock.
type groupState struct {
	status  string
	owner   owner
	inst    market.Instance // a copy: the market changes its own
	amount  float64         // closed bill lines
	deleted bool
}

// scrapeState is what a scrape reads of the service, copied under its lock.
type scrapeState struct {
	now    time.Time
	groups []groupState
	held   []int // instances held in each of c.pools
}

// snapshot copies what a scrape needs; the only part under the lock.
func (c *stateCollector) snapshot() scrapeState {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := scrapeState{now: s.core.Now(), groups: make([]groupState, 0, len(s.groups)), held: make([]int, len(c.pools))}
	for _, g := range s.groups {
		st.groups = append(st.groups, groupState{status: g.Status, owner: ownerOf(g), inst: *g.inst, amount: g.Amount,
			deleted: g.Deleted})
	}
	for i, o := range c.pools {
		st.held[i] = s.core.Held(o)
	}
	return st
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := c.snapshot()
	now, groups, held := st.now, st.groups, st.held
	type instanceKey struct{ status, capacity string }
	instances := map[instanceKey]int{}
	amounts, paygs := map[owner]float64{}, map[owner]float64{}
	for i := range groups {
		g := &groups[i]
		o := c.owners.labels(g.owner)
		if g.inst.State.Ended() {
			amounts[o] += g.amount
		} else {
			amounts[o] += market.Total(market.Bill(s.book, &g.inst, now))
		}
		paygs[o] += paygEquivalent(&g.inst, now)
		if g.deleted {
			continue
		}
		k := instanceKey{g.status, "spot"}
		if !g.inst.Spot {
			k.capacity = "payg"
		}
		switch {
		case g.status != "":
		case g.inst.State == market.ToBeReleased:
			k.status = "ToBeReleased"
		default:
			k.status = eciapi.StatusRunning
		}
		instances[k]++
	}
	for k, n := range instances {
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(n), k.status, k.capacity)
	}
	for o, v := range amounts {
		ch <- prometheus.MustNewConstMetric(c.billAmount, prometheus.GaugeValue, v, o.namespace, o.job)
		ch <- prometheus.MustNewConstMetric(c.billPayg, prometheus.GaugeValue, paygs[o], o.namespace, o.job)
	}
	for i, o := range c.pools {
		if held[i] == 0 && !s.book.Overridden(o) {
			continue
		}
		q := s.book.Quote(o, now)
		ch <- prometheus.MustNewConstMetric(c.spotPrice, prometheus.GaugeValue, q.Price, o.Zone, o.Type.Name)
		ch <- prometheus.MustNewConstMetric(c.paygPrice, prometheus.GaugeValue, o.OnDemand, o.Zone, o.Type.Name)
		ch <- prometheus.MustNewConstMetric(c.stock, prometheus.GaugeValue, float64(q.Stock), o.Zone, o.Type.Name)
	}
}

// paygEquivalent is what in's time until now (or its end) costs at the
// pool's pay-as-you-go price.
func paygEquivalent(in *market.Instance, now time.Time) float64 {
	end := now
	if in.State.Ended() {
		end = in.Ended
	}
	return paygAmount(in.Offering, end.Sub(in.Created).Seconds())
}
