package eci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// jobRequest is a spot group of Job job in namespace ns, tagged as the
// virtual node tags its pods' groups.
func jobRequest(name, ns, job string) eciapi.CreateContainerGroupRequest {
	req := spotRequest(name, "0.1")
	req.Tags = []eciapi.Tag{{Key: eciapi.TagNamespace, Value: ns}, {Key: eciapi.TagJob, Value: job}}
	return req
}

// TestPrometheusScrapesTheService runs Debian's prometheus against a real
// service: it scrapes /metrics with the admin token from a file, and its
// query API answers the groups by status and the spend per Job that the test
// made through the official SDK.
func TestPrometheusScrapesTheService(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("no prometheus binary: hack/deps.sh installs Debian's (make test runs it)")
	}
	s, train, etl := mlJobs(t)
	ctx := context.Background()
	for _, id := range append(train, etl) {
		s.waitStatus(t, id, eciapi.StatusRunning)
	}
	// The deleted group's bill is closed: its amount no longer moves.
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: etl}); err != nil {
		t.Fatal(err)
	}
	bill, err := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{etl}})
	if err != nil || len(bill.Items) != 1 || bill.Items[0].EndTime == nil || bill.Items[0].Amount <= 0 {
		t.Fatalf("bill of the deleted group: %+v %v, want one closed line", bill, err)
	}
	etlAmount := bill.Items[0].Amount
	if text, err := s.admin.Metrics(ctx); err != nil || !strings.Contains(text, `spoteci_billed_cny_total{job_name="etl",namespace="ml"}`) {
		t.Fatalf("/metrics lacks the etl Job's closed bill (%v):\n%s", err, text)
	}

	prom := startPrometheus(t, bin, strings.TrimPrefix(s.admin.Endpoint, "http://"))
	prom.waitFor(t, `up{job="spoteci"}`, func(v float64) bool { return v == 1 })
	prom.waitFor(t, `spoteci_instances{status="Running",capacity_type="spot"}`, func(v float64) bool { return v == 2 })
	prom.waitFor(t, `sum by (job_name) (spoteci_billed_cny_total{namespace="ml",job_name="etl"})`, func(v float64) bool {
		return math.Abs(v-etlAmount) <= 1e-9*etlAmount
	})
	// The running Job's bill so far grows with market time; it is positive.
	prom.waitFor(t, `spoteci_bill_amount_cny{namespace="ml",job_name="train"}`, func(v float64) bool { return v > 0 })
}

// promServer is a running Debian prometheus and its query API.
type promServer struct {
	api string
	log string
}

// startPrometheus runs bin scraping target every second with the admin token
// from a file, storage in a temporary folder, until the test ends.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
  - job_name: spoteci
    scrape_interval: 1s
    authorization:
      credentials_file: %s
    static_configs:
      - targets: [%q]
`, tokenFile, target)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	})
	p := &promServer{api: "http://" + addr, log: logFile.Name()}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.api + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s: %v\n%s", err, p.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *promServer) logTail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// query answers an instant query whose result is one sample.
func (p *promServer) query(query string) (float64, error) {
	resp, err := http.Get(p.api + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("decoding the answer: %w", err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("%s: %s", body.Status, body.Error)
	}
	if len(body.Data.Result) != 1 {
		return 0, fmt.Errorf("%d samples, want 1", len(body.Data.Result))
	}
	v, _ := body.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(v, 64)
}

// waitFor polls query until ok holds for its value; 30 s, a few scrapes.
func (p *promServer) waitFor(t *testing.T, query string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := p.query(query)
		if err == nil && ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %s = %v (%v) after 30 s\n%s", query, v, err, p.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDashboardQueriesExposedMetrics checks that every PromQL expression of
// the Grafana dashboard names metrics that the service's /metrics exposes.
func TestDashboardQueriesExposedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/spoteci.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard any
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	walkExprs(dashboard, &exprs)
	if len(exprs) < 5 {
		t.Fatalf("%d queries in the dashboard, want one per panel at least", len(exprs))
	}

	// A service that has something of each: a Job's group, a closed bill
	// line, an override.
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	id, err := s.CreateContainerGroup(ctx, jobRequest("etl", "ml", "etl"))
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, id, eciapi.StatusRunning)
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainerGroup(ctx, jobRequest("train", "ml", "train")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	text, err := s.admin.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exposed := exposedNames(text)
	for _, expr := range exprs {
		names := promqlMetricNames(expr)
		if len(names) == 0 {
			t.Errorf("query %q names no metric", expr)
		}
		for _, name := range names {
			if !exposed[name] {
				t.Errorf("query %q names %s, which /metrics does not expose", expr, name)
			}
		}
	}
}

// walkExprs appends every "expr" string of a dashboard's JSON.
func walkExprs(v any, exprs *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				*exprs = append(*exprs, s)
				continue
			}
			walkExprs(x, exprs)
		}
	case []any:
		for _, x := range v {
			walkExprs(x, exprs)
		}
	}
}

// exposedNames are the sample names of a text exposition: each family's,
// and a histogram's or summary's _bucket, _sum and _count.
func exposedNames(text string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		names[f[2]] = true
		switch f[3] {
		case "histogram":
			names[f[2]+"_bucket"] = true
			fallthrough
		case "summary":
			names[f[2]+"_sum"], names[f[2]+"_count"] = true, true
		}
	}
	return names
}

var (
	// What is not a metric name in PromQL: strings, label matchers, ranges,
	// grouping clauses, Grafana's variables.
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	grafanaVars    = regexp.MustCompile(`\$\{?\w+\}?`)
	promqlNumbers  = regexp.MustCompile(`\b[0-9][0-9a-zA-Z_.]*`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promqlKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// promqlMetricNames are the metric names an expression selects: its
// identifiers that are no function, keyword or label.
func promqlMetricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promqlStrings, grafanaVars, promqlMatchers, promqlGrouping, promqlNumbers} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range promqlIdent.FindAllStringSubmatch(expr, -1) {
		if m[1] != "" || promqlKeywords[strings.ToLower(m[0])] {
			continue // a function call, or a keyword
		}
		names = append(names, m[0])
	}
	return names
}

// The dashboard check's parser finds the metric names of an expression and
// nothing else.
func TestDashboardPromQLMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.99, sum by (le, action) (rate(spoteci_api_request_duration_seconds_bucket[$__rate_interval])))`: "spoteci_api_request_duration_seconds_bucket",
		`sum(spoteci_bill_payg_equivalent_cny) - sum without (job_name) (spoteci_bill_amount_cny{namespace="a b"})`:           "spoteci_bill_payg_equivalent_cny spoteci_bill_amount_cny",
		`topk(10, spoteci_x offset 5m) * 1e3 > bool 0`:                                                                        "spoteci_x",
		`rate(spotecci_typo_total[5m]) * 60`:                                                                                  "spotecci_typo_total",
	} {
		if got := strings.Join(promqlMetricNames(expr), " "); got != want {
			t.Errorf("%s: %q, want %q", expr, got, want)
		}
	}
}
