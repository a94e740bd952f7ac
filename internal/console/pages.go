package console

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/billing"
	"github.com/spoteci/spoteci/internal/plot"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

var funcs = template.FuncMap{
	"money": func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"price": func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"hours": func(s float64) string { return fmt.Sprintf("%.3f", s/3600) },
	"when":  when,
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return when(*t)
	},
	"saved":   billing.Saved,
	"lower":   strings.ToLower,
	"percent": func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" },
}

// when is a market time as the pages show it.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// instanceFilter is the instance list's filters and page, as the query
// string has them.
type instanceFilter struct {
	Status, Namespace, Job, Tag string
	// Limit is the page's size; Page the service's NextToken of the page
	// before (empty: the first page).
	Limit int
	Page  string
}

// Pages of the instance list: a browser draws a table of 10,000 rows in
// seconds, one of 500 in a tenth of that (BENCHMARKS.md).
const (
	defaultPageSize = 500
	maxPageSize     = 2000
)

// request turns the filters into the service's listing request.
func (f instanceFilter) request() (eciapi.DescribeContainerGroupsRequest, error) {
	req := eciapi.DescribeContainerGroupsRequest{Status: f.Status, Limit: f.Limit, NextToken: f.Page}
	if f.Namespace != "" {
		req.Tags = append(req.Tags, eciapi.Tag{Key: eciapi.TagNamespace, Value: f.Namespace})
	}
	if f.Job != "" {
		req.Tags = append(req.Tags, eciapi.Tag{Key: eciapi.TagJob, Value: f.Job})
	}
	if f.Tag != "" {
		k, v, ok := strings.Cut(f.Tag, "=")
		if !ok || k == "" {
			return req, &inputError{fmt.Sprintf("tag %q: want KEY=VALUE", f.Tag)}
		}
		req.Tags = append(req.Tags, eciapi.Tag{Key: k, Value: v})
	}
	return req, nil
}

// instanceRow is one line of the instance list.
type instanceRow struct {
	eciapi.ContainerGroup
	Strategy, Bid string
	Namespace     string
	Pod, Job      string
	// PodStatus is what a virtual node shows of the pod, where it says
	// more than the instance's status: the notice, and BidFailed.
	PodStatus string
}

func newInstanceRow(g eciapi.ContainerGroup) instanceRow {
	r := instanceRow{ContainerGroup: g, Strategy: g.SpotStrategy, Bid: "-",
		Namespace: eciapi.TagValue(g.Tags, eciapi.TagNamespace), Pod: eciapi.TagValue(g.Tags, eciapi.TagPod), Job: eciapi.TagValue(g.Tags, eciapi.TagJob)}
	switch {
	case g.Degraded:
		r.Strategy = "PayAsYouGo (SpotDegraded)"
	case g.SpotStrategy == eciapi.NoSpot || g.SpotStrategy == "":
		r.Strategy = "PayAsYouGo"
	case g.SpotStrategy == eciapi.SpotWithPriceLimit:
		r.Bid = fmt.Sprintf("%.3f", g.SpotPriceLimit)
	case g.SpotStrategy == eciapi.SpotAsPriceGo:
		r.Bid = "market"
	}
	switch {
	case g.Status == eciapi.StatusExpired:
		r.PodStatus = eciapi.ReasonBidFailed
	case g.NoticeTime != nil && g.ExpiredTime != nil:
		r.PodStatus = eciapi.ReasonSpotToBeReleased + ": to be released at " + when(*g.ExpiredTime)
	}
	return r
}

type instancesData struct {
	Filter   instanceFilter
	Statuses []string
	Time     time.Time // market time of the listing
	Rows     []instanceRow
	// Total counts the instances on every page; First and Next link to the
	// first page and the next ("" when there is none).
	Total       int
	First, Next string
}

// filterOf is the instance list's filters in r's query.
func filterOf(r *http.Request) (instanceFilter, error) {
	q := r.URL.Query()
	f := instanceFilter{Status: q.Get("status"), Namespace: q.Get("namespace"), Job: q.Get("job"), Tag: q.Get("tag"),
		Limit: defaultPageSize, Page: q.Get("page")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxPageSize {
			return f, &inputError{fmt.Sprintf("limit %q: want a page size from 1 to %d", l, maxPageSize)}
		}
		f.Limit = n
	}
	return f, nil
}

// CustomLimit is the page size when it is not the default, else 0.
func (f instanceFilter) CustomLimit() int {
	if f.Limit == defaultPageSize {
		return 0
	}
	return f.Limit
}

// link is the list's URL with these filters and page.
func (f instanceFilter) link(page string) string {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "namespace": f.Namespace, "job": f.Job, "tag": f.Tag, "page": page} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if l := f.CustomLimit(); l != 0 {
		q.Set("limit", strconv.Itoa(l))
	}
	if len(q) == 0 {
		return Prefix + "instances"
	}
	return Prefix + "instances?" + q.Encode()
}

func (c *Console) instances(r *http.Request) (string, string, any, error) {
	f, err := filterOf(r)
	if err != nil {
		return "", "", nil, err
	}
	req, err := f.request()
	if err != nil {
		return "", "", nil, err
	}
	resp, err := c.cfg.Service.DescribeContainerGroups(r.Context(), req)
	if err != nil {
		return "", "", nil, err
	}
	d := instancesData{Filter: f, Time: resp.Time, Total: resp.TotalCount,
		Statuses: []string{eciapi.StatusPending, eciapi.StatusRunning, eciapi.StatusSucceeded, eciapi.StatusFailed, eciapi.StatusExpired}}
	if f.Page != "" {
		d.First = f.link("")
	}
	if resp.NextToken != "" {
		d.Next = f.link(resp.NextToken)
	}
	d.Rows = make([]instanceRow, 0, len(resp.ContainerGroups))
	for _, g := range resp.ContainerGroups {
		d.Rows = append(d.Rows, newInstanceRow(g))
	}
	return "instances.html", "Instances", d, nil
}

// instancesScope is the groups the list's filters pick, but for the status,
// which a change moves a group in or out of.
func instancesScope(r *http.Request) (eciapi.DescribeContainerGroupStatusRequest, error) {
	f, err := filterOf(r)
	if err != nil {
		return eciapi.DescribeContainerGroupStatusRequest{}, err
	}
	req, err := f.request()
	return eciapi.DescribeContainerGroupStatusRequest{Tags: req.Tags}, err
}

// instanceRows draws the list's rows of changed groups: a group deleted, or
// whose status the filter no longer takes, leaves the list. A new group
// comes in on the first page only (its tbody says data-rows="new first"); a
// later page updates the rows it has.
func (c *Console) instanceRows(r *http.Request, changed []eciapi.ContainerGroup) ([]byte, error) {
	f, err := filterOf(r)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, g := range changed {
		if g.Status == eciapi.StatusDeleted || f.Status != "" && g.Status != f.Status {
			b.WriteString(`<tr data-id="` + template.HTMLEscapeString(g.ContainerGroupId) + `" data-gone></tr>` + "\n")
			continue
		}
		if err := c.pages["instances.html"].ExecuteTemplate(&b, "row", newInstanceRow(g)); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// instanceScope is the one group of an instance's page.
func instanceScope(r *http.Request) (eciapi.DescribeContainerGroupStatusRequest, error) {
	return eciapi.DescribeContainerGroupStatusRequest{ContainerGroupIds: []string{r.PathValue("id")}}, nil
}

type instanceData struct {
	Row      instanceRow
	Time     time.Time
	Timeline []moment
	Bill     *eciapi.BillItem
}

func (c *Console) instance(r *http.Request) (string, string, any, error) {
	id := r.PathValue("id")
	resp, err := c.cfg.Service.DescribeContainerGroups(r.Context(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		return "", "", nil, err
	}
	if len(resp.ContainerGroups) == 0 {
		return "", "", nil, &inputError{fmt.Sprintf("no instance %q", id)}
	}
	g := resp.ContainerGroups[0]
	d := instanceData{Row: newInstanceRow(g), Time: resp.Time, Timeline: timeline(g, resp.Time, resp.CheckInterval)}
	bill, err := c.cfg.Service.DescribeBill(r.Context(), eciapi.DescribeBillRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		return "", "", nil, err
	}
	if len(bill.Items) == 1 {
		d.Bill = &bill.Items[0]
	}
	return "instance.html", g.ContainerGroupName + " " + id, d, nil
}

type billsData struct {
	By    string
	Bill  eciapi.DescribeBillResponse
	Rows  []billing.Row // by pod, Job or namespace; nil per instance
	Query string        // the query string of the CSV link
}

func (c *Console) billsOf(r *http.Request) (billsData, error) {
	by := r.URL.Query().Get("by")
	if by != "" && by != billing.ByPod && by != billing.ByJob && by != billing.ByNamespace {
		return billsData{}, &inputError{fmt.Sprintf("by %q: want pod, job or namespace", by)}
	}
	resp, err := c.cfg.Service.DescribeBill(r.Context(), eciapi.DescribeBillRequest{})
	if err != nil {
		return billsData{}, err
	}
	d := billsData{By: by, Bill: resp}
	if by != "" {
		d.Rows = billing.By(resp, by)
		d.Query = "?" + url.Values{"by": {by}}.Encode()
	}
	return d, nil
}

func (c *Console) bills(r *http.Request) (string, string, any, error) {
	d, err := c.billsOf(r)
	return "bills.html", "Bills", d, err
}

// billsCSV is the bills page as CSV, for a spreadsheet.
func (c *Console) billsCSV(w http.ResponseWriter, r *http.Request, _ string, sess session) {
	d, err := c.billsOf(r)
	if err != nil {
		c.fail(w, sess, err)
		return
	}
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	if d.Rows != nil {
		head := []string{d.By, "instances", "hours", "amount", "payg", "saved"}
		if d.By == billing.ByJob {
			head = append(head, "deadline", "met")
		}
		cw.Write(head)
		for _, row := range d.Rows {
			line := []string{cell(row.Key), strconv.Itoa(row.Instances), f(row.Seconds / 3600), f(row.Amount), f(row.OnDemandAmount), billing.Saved(row.Amount, row.OnDemandAmount)}
			if d.By == billing.ByJob {
				deadline := ""
				if row.Deadline != nil {
					deadline = row.Deadline.Format(time.RFC3339)
				}
				line = append(line, deadline, row.Met)
			}
			cw.Write(line)
		}
	} else {
		cw.Write([]string{"id", "name", "status", "type", "zone", "strategy", "hours", "amount", "payg", "saved", "namespace", "pod", "job"})
		for _, it := range d.Bill.Items {
			cw.Write([]string{it.ContainerGroupId, cell(it.ContainerGroupName), it.Status, it.InstanceType, it.ZoneId, it.SpotStrategy,
				f(it.Seconds / 3600), f(it.Amount), f(it.OnDemandAmount), billing.Saved(it.Amount, it.OnDemandAmount),
				cell(eciapi.TagValue(it.Tags, eciapi.TagNamespace)), cell(eciapi.TagValue(it.Tags, eciapi.TagPod)), cell(eciapi.TagValue(it.Tags, eciapi.TagJob))})
		}
	}
	cw.Flush()
	name := "bill.csv"
	if d.By != "" {
		name = "bill-by-" + d.By + ".csv"
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b.Bytes())
}

// cell keeps a name from being read as a formula by a spreadsheet.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+@\t\r", rune(s[0])) || len(s) > 1 && s[0] == '-' {
		return "'" + s
	}
	return s
}

// defaultType is the market page's type when none is asked: the one the
// guides use.
const defaultType = "ecs.c5.large"

type marketData struct {
	Type, Zone string
	Time       time.Time
	Resources  []eciapi.Resource
	Advice     map[string]*eciapi.SpotAdvice // DescribeSpotAdvice's, by zone
	Zones      []string
	Chart      template.HTML
	Changed    bool
	Error      string
}

func (c *Console) marketOf(r *http.Request, typ, zone string) (marketData, error) {
	d := marketData{Type: cmp.Or(typ, defaultType), Zone: zone}
	res, err := c.cfg.Service.DescribeAvailableResource(r.Context(), eciapi.DescribeAvailableResourceRequest{InstanceType: d.Type})
	if err != nil {
		return d, err
	}
	d.Time, d.Resources = res.Time, res.Resources
	if len(d.Resources) == 0 {
		return d, &inputError{fmt.Sprintf("no pool sells %q", d.Type)}
	}
	for _, p := range res.Resources {
		d.Zones = append(d.Zones, p.ZoneId)
	}
	advice, err := c.cfg.Service.DescribeSpotAdvice(r.Context(), eciapi.DescribeSpotAdviceRequest{InstanceTypes: []string{d.Type}})
	if err != nil {
		return d, err
	}
	d.Advice = map[string]*eciapi.SpotAdvice{}
	for i, a := range advice.Advice {
		d.Advice[a.ZoneId] = &advice.Advice[i]
	}
	hist, err := c.cfg.Service.DescribeSpotPriceHistory(r.Context(), eciapi.DescribeSpotPriceHistoryRequest{InstanceType: d.Type, ZoneId: zone})
	if err != nil {
		return d, err
	}
	chart := plot.Chart{Title: d.Type + ": spot price, last 30 days", YLabel: "CNY/h", Step: true, End: res.Time}
	byZone := map[string]int{}
	payg := 0.0
	for _, p := range hist.SpotPrices {
		i, ok := byZone[p.ZoneId]
		if !ok {
			i = len(chart.Series)
			byZone[p.ZoneId] = i
			chart.Series = append(chart.Series, plot.Series{Name: p.ZoneId})
		}
		chart.Series[i].Points = append(chart.Series[i].Points, plot.Point{T: p.Timestamp, V: p.SpotPrice})
		payg = p.OriginPrice
	}
	if len(hist.SpotPrices) > 0 {
		from := hist.SpotPrices[0].Timestamp
		for _, p := range hist.SpotPrices {
			if p.Timestamp.Before(from) {
				from = p.Timestamp
			}
		}
		chart.Series = append(chart.Series, plot.Series{Name: "pay-as-you-go", Points: []plot.Point{{T: from, V: payg}, {T: res.Time, V: payg}}})
		var b bytes.Buffer
		if err := chart.SVG(&b); err != nil {
			return d, fmt.Errorf("drawing the price chart: %w", err)
		}
		d.Chart = template.HTML(b.String()) // internal/plot escapes the text it draws
	}
	return d, nil
}

func (c *Console) market(r *http.Request) (string, string, any, error) {
	q := r.URL.Query()
	d, err := c.marketOf(r, q.Get("type"), q.Get("zone"))
	d.Changed = q.Get("changed") == "1"
	return "market.html", "Market", d, err
}

// modifyMarket applies the override form through ModifySpotMarket, then
// shows the market again (POST, redirect, GET: a reload posts nothing).
func (c *Console) modifyMarket(w http.ResponseWriter, r *http.Request, _ string, sess session) {
	req := eciapi.ModifySpotMarketRequest{InstanceType: r.PostFormValue("type"), ZoneId: r.PostFormValue("zone"), Reset: r.PostFormValue("reset") == "on"}
	var err error
	if p := strings.TrimSpace(r.PostFormValue("price")); p != "" {
		price := eciapi.Decimal(p)
		req.SpotPrice = &price
	}
	if s := strings.TrimSpace(r.PostFormValue("stock")); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil {
			err = &inputError{fmt.Sprintf("stock %q: want a whole number", s)}
		}
		req.Stock = &n
	}
	if err == nil {
		_, err = c.cfg.Service.ModifySpotMarket(r.Context(), req)
	}
	if err != nil {
		d, derr := c.marketOf(r, req.InstanceType, req.ZoneId)
		if derr != nil {
			c.fail(w, sess, derr)
			return
		}
		d.Error = err.Error()
		c.render(w, http.StatusBadRequest, "market.html", view{Title: "Market", CSRF: sess.csrf, Now: c.cfg.Clock.Now(), Data: d})
		return
	}
	http.Redirect(w, r, Prefix+"market?"+url.Values{"type": {req.InstanceType}, "zone": {req.ZoneId}, "changed": {"1"}}.Encode(), http.StatusSeeOther)
}
