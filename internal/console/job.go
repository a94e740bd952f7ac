package console

// The Job page: a Job's instances over time by state, the pools it used,
// and its bill against pay-as-you-go.

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/spoteci/spoteci/internal/billing"
	"github.com/spoteci/spoteci/internal/plot"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// jobState is a state of a Job's instance on the Job page, in the chart's
// order (which gives each its color).
type jobState int

const (
	stateRunning   jobState = iota
	stateBidFailed          // released by the market (Expired): the pod ends BidFailed
	stateSucceeded
	stateNotified // after SpotToBeReleased, before the release
	statePending
	stateFailed
	stateGone     // deleted before it ended otherwise: off the chart
	chartedStates = stateGone
)

var stateNames = [chartedStates]string{"Running", eciapi.ReasonBidFailed, "Succeeded", "notified", "Pending", "Failed"}

// replacedName is the chart's series of released instances the Job replaced.
const replacedName = "replaced"

// chartSamples bounds the chart's points per series, whatever the Job's
// size or life.
const chartSamples = 300

// stateChange is an instance entering a state.
type stateChange struct {
	At time.Time
	To jobState
}

// stateChanges is what became of instance g, in time order: Pending at its
// creation, Running at its first container start, notified at its
// SpotToBeReleased, then how it ended: BidFailed at its release by the
// market (its SpotReleased event, kept after a delete), Succeeded or Failed
// when its containers ended, gone when it was deleted. A group deleted
// after it ended says Deleted, which hides a Succeeded or Failed: it then
// leaves the chart when it ended.
func stateChanges(g eciapi.ContainerGroup) []stateChange {
	created := g.CreationTime
	var notice, released time.Time
	if g.NoticeTime != nil {
		notice = *g.NoticeTime
	}
	for _, e := range g.Events {
		switch {
		case e.Reason == eciapi.ReasonSpotToBeReleased && notice.IsZero():
			notice = e.Timestamp
		case e.Reason == eciapi.ReasonSpotReleased:
			released = e.Timestamp
		}
	}
	if released.IsZero() && g.Status == eciapi.StatusExpired && g.ExpiredTime != nil {
		released = *g.ExpiredTime
	}
	var end *stateChange
	switch {
	case !released.IsZero():
		end = &stateChange{released, stateBidFailed}
	case g.SucceededTime != nil && g.Status == eciapi.StatusSucceeded:
		end = &stateChange{*g.SucceededTime, stateSucceeded}
	case g.SucceededTime != nil && g.Status == eciapi.StatusFailed:
		end = &stateChange{*g.SucceededTime, stateFailed}
	case g.SucceededTime != nil:
		end = &stateChange{*g.SucceededTime, stateGone}
	}
	out := []stateChange{{created, statePending}}
	if start := firstStart(g); !start.IsZero() {
		out = append(out, stateChange{start, stateRunning})
	}
	if !notice.IsZero() {
		out = append(out, stateChange{notice, stateNotified})
	}
	for i := range out {
		out[i].At = maxTime(out[i].At, created)
	}
	slices.SortStableFunc(out, func(a, b stateChange) int { return a.At.Compare(b.At) })
	if end != nil {
		end.At = maxTime(end.At, created)
		out = slices.DeleteFunc(out, func(c stateChange) bool { return c.At.After(end.At) })
		out = append(out, *end)
	}
	return out
}

// firstStart is when g's first container first started: the earliest start
// its containers tell (a restarted one tells its previous run's), the
// creation for a running group that tells none; zero if none started.
func firstStart(g eciapi.ContainerGroup) time.Time {
	var first time.Time
	see := func(t *time.Time) {
		if t != nil && !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = *t
		}
	}
	for _, c := range g.Containers {
		see(c.CurrentState.StartTime)
		if c.PreviousState != nil {
			see(c.PreviousState.StartTime)
		}
	}
	if first.IsZero() && g.Status == eciapi.StatusRunning {
		return g.CreationTime
	}
	return first
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// replacements is when the Job replaced the instances the market released:
// each, in the order of their notices, is matched to the Job's first
// instance created after its notice that replaces no other one (so one new
// pod replaces one), in time order. created is every instance's creation.
func replacements(changes [][]stateChange, created []time.Time) []time.Time {
	var noticed []time.Time
	for _, cs := range changes {
		if len(cs) == 0 || cs[len(cs)-1].To != stateBidFailed {
			continue
		}
		at := cs[len(cs)-1].At
		if i := slices.IndexFunc(cs, func(c stateChange) bool { return c.To == stateNotified }); i >= 0 {
			at = cs[i].At
		}
		noticed = append(noticed, at)
	}
	slices.SortFunc(noticed, time.Time.Compare)
	created = slices.SortedFunc(slices.Values(created), time.Time.Compare)
	var out []time.Time
	j := 0
	for _, n := range noticed {
		for j < len(created) && !created[j].After(n) {
			j++
		}
		if j == len(created) {
			break
		}
		out = append(out, created[j])
		j++
	}
	return out
}

// jobSeries samples, at samples+1 evenly spaced times from from to to, how
// many of the instances were in each state, and how many released ones the
// Job had replaced: one sweep of the sorted changes, O(c log c + samples)
// for c changes.
func jobSeries(changes [][]stateChange, replaced []time.Time, from, to time.Time, samples int) []plot.Series {
	type delta struct {
		at    time.Time
		state jobState
		n     int
	}
	var deltas []delta
	for _, cs := range changes {
		for i, c := range cs {
			if i > 0 {
				deltas = append(deltas, delta{c.At, cs[i-1].To, -1})
			}
			deltas = append(deltas, delta{c.At, c.To, 1})
		}
	}
	slices.SortFunc(deltas, func(a, b delta) int { return a.at.Compare(b.at) })
	series := make([]plot.Series, chartedStates+1)
	for s := range chartedStates {
		series[s].Name = stateNames[s]
	}
	series[chartedStates].Name = replacedName
	var count [stateGone + 1]int
	d, r := 0, 0
	span := to.Sub(from)
	for k := 0; k <= samples; k++ {
		t := from.Add(time.Duration(float64(span) * float64(k) / float64(max(samples, 1))))
		for ; d < len(deltas) && !deltas[d].at.After(t); d++ {
			count[deltas[d].state] += deltas[d].n
		}
		for r < len(replaced) && !replaced[r].After(t) {
			r++
		}
		for s := range chartedStates {
			series[s].Points = append(series[s].Points, plot.Point{T: t, V: float64(count[s])})
		}
		series[chartedStates].Points = append(series[chartedStates].Points, plot.Point{T: t, V: float64(r)})
	}
	return series
}

// stateCount is how many of a Job's instances are in a state now.
type stateCount struct {
	Name string
	N    int
}

// poolRow is what a Job spent in one pool with one strategy.
type poolRow struct {
	Zone, Type, Strategy string
	billing.Row
}

type jobData struct {
	Namespace, Name string
	Time            time.Time // market time of the listing
	Instances       int
	Counts          []stateCount // now, by state, and the replaced
	Chart           template.HTML
	Pools           []poolRow
	Bill            billing.Row // the Job's, with its deadline if it has one
	Currency        string
}

// job is the Job page: the instances tagged with the Job's namespace and
// name, deleted ones included while the service keeps them.
func (c *Console) job(r *http.Request) (string, string, any, error) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	tags := jobTags(r)
	// The bill has every group the service keeps, deleted ones too.
	bill, err := c.cfg.Service.DescribeBill(r.Context(), eciapi.DescribeBillRequest{Tags: tags})
	if err != nil {
		return "", "", nil, err
	}
	// A listing by tags leaves deleted groups out; named by ID they are
	// shown (status Deleted, their events kept), so the Job's history asks
	// for the billed ones the listing lacks.
	list, err := c.cfg.Service.DescribeContainerGroups(r.Context(), eciapi.DescribeContainerGroupsRequest{Tags: tags})
	if err != nil {
		return "", "", nil, err
	}
	groups := list.ContainerGroups
	listed := make(map[string]bool, len(groups))
	for _, g := range groups {
		listed[g.ContainerGroupId] = true
	}
	var gone []string
	for _, it := range bill.Items {
		if !listed[it.ContainerGroupId] {
			gone = append(gone, it.ContainerGroupId)
		}
	}
	if len(gone) > 0 {
		deleted, err := c.cfg.Service.DescribeContainerGroups(r.Context(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: gone, Tags: tags})
		if err != nil {
			return "", "", nil, err
		}
		groups = append(groups, deleted.ContainerGroups...)
	}
	if len(groups) == 0 {
		return "", "", nil, &inputError{fmt.Sprintf("no instance of Job %s/%s", ns, name)}
	}

	d := jobData{Namespace: ns, Name: name, Time: list.Time, Instances: len(groups), Currency: bill.Currency}
	chart, counts, err := jobChart(ns+"/"+name, groups, list.Time)
	if err != nil {
		return "", "", nil, err
	}
	d.Chart, d.Counts = chart, counts

	strategy := make(map[string]string, len(groups))
	for _, g := range groups {
		strategy[g.ContainerGroupId] = newInstanceRow(g).Strategy
	}
	pools := map[string]poolRow{}
	key := func(it eciapi.BillItem) string {
		s := cmp.Or(strategy[it.ContainerGroupId], it.SpotStrategy)
		k := it.ZoneId + " " + it.InstanceType + " " + s
		pools[k] = poolRow{Zone: it.ZoneId, Type: it.InstanceType, Strategy: s}
		return k
	}
	for _, row := range billing.Sum(bill.Items, key) {
		p := pools[row.Key]
		p.Row = row
		d.Pools = append(d.Pools, p)
	}
	if rows := billing.By(bill, billing.ByJob); len(rows) == 1 {
		d.Bill = rows[0]
	}
	return "job.html", "Job " + ns + "/" + name, d, nil
}

// jobChart draws the Job's instances by state over its life (until now, or
// its last change once every instance ended) and counts them at its end.
func jobChart(job string, groups []eciapi.ContainerGroup, now time.Time) (template.HTML, []stateCount, error) {
	changes := make([][]stateChange, len(groups))
	created := make([]time.Time, len(groups))
	from, last, ended := now, time.Time{}, true
	for i, g := range groups {
		changes[i] = stateChanges(g)
		created[i] = g.CreationTime
		from = minTime(from, g.CreationTime)
		end := changes[i][len(changes[i])-1]
		last = maxTime(last, end.At)
		ended = ended && (end.To == stateBidFailed || end.To == stateSucceeded || end.To == stateFailed || end.To == stateGone)
	}
	to := now
	if ended {
		to = last
	}
	replaced := replacements(changes, created)
	series := jobSeries(changes, replaced, from, to, chartSamples)
	var counts []stateCount
	for _, s := range series {
		counts = append(counts, stateCount{Name: s.Name, N: int(s.Points[len(s.Points)-1].V)})
	}
	chart := plot.Chart{Title: "Job " + job + ": its instances by state", YLabel: "instances", Step: true, Counts: true, Elapsed: true, End: to, Series: series}
	var b bytes.Buffer
	if err := chart.SVG(&b); err != nil {
		return "", nil, fmt.Errorf("drawing the Job's chart: %w", err)
	}
	return template.HTML(b.String()), counts, nil // internal/plot escapes the text it draws
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// jobTags are the tags of the instances of the Job of r's path.
func jobTags(r *http.Request) []eciapi.Tag {
	return []eciapi.Tag{{Key: eciapi.TagNamespace, Value: r.PathValue("namespace")}, {Key: eciapi.TagJob, Value: r.PathValue("name")}}
}

// jobScope is the groups of a Job's page.
func jobScope(r *http.Request) (eciapi.DescribeContainerGroupStatusRequest, error) {
	return eciapi.DescribeContainerGroupStatusRequest{Tags: jobTags(r)}, nil
}
