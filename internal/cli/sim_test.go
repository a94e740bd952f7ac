package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoteci/spoteci/internal/cli"
)

// runSim calls the CLI in-process and returns stdout and stderr.
func runSim(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), cli.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return out.String(), errOut.String(), err
}

// simTraces writes two small availability traces of 10-minute ticks.
func simTraces(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i, pattern := range []string{"1111111000", "1100111111111100000"} {
		data := strings.TrimSuffix(strings.Repeat(strings.Join(strings.Split(pattern, ""), ", ")+", ", 20), ", ")
		content := fmt.Sprintf(`{"metadata": {"gap_seconds": 600}, "data": [%s]}`, data)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("zone-%c_gpu_1.json", 'a'+i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSimDeadline(t *testing.T) {
	dir := simTraces(t)
	args := []string{"sim", "deadline", "--traces", dir, "--job-hours", "8", "--deadline-hours", "11", "--changeover-hours", "0.2",
		"--starts", "6", "--seed", "3", "--od-price", "3.06", "--spot-price", "0.9731", "--rules", "aws", "-o", "json"}
	out, _, err := runSim(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version  int    `json:"version"`
		Kind     string `json:"kind"`
		Params   map[string]any
		Policies []map[string]any `json:"policies"`
		ByTrace  []map[string]any `json:"by_trace"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Version != 1 || got.Kind != "deadline" || got.Params["rules"] != "aws" || len(got.Policies) != 5 || len(got.ByTrace) != 10 {
		t.Fatalf("output %+v", got)
	}
	for i, name := range []string{"on-demand", "greedy", "uniform-progress", "protected-progress", "optimal"} {
		p := got.Policies[i]
		if p["policy"] != name || p["runs"] != 12.0 || p["deadline_met_fraction"] != 1.0 {
			t.Errorf("policy %d: %v", i, p)
		}
		for _, key := range []string{"od_hours_mean", "spot_hours_mean", "cost_mean", "savings_vs_on_demand", "preemptions_mean"} {
			if _, ok := p[key].(float64); !ok {
				t.Errorf("policy %s has no number %s", name, key)
			}
		}
	}
	// The same seed, the same bytes, whatever the workers.
	again, _, err := runSim(t, append(args, "--workers", "1")...)
	if err != nil || again != out {
		t.Errorf("a second run with one worker differs (%v)", err)
	}

	table, errOut, err := runSim(t, "sim", "deadline", "--traces", filepath.Join(dir, "zone-a_gpu_1.json"), "--job-hours", "8",
		"--deadline-hours", "11", "--starts", "4", "--policy", "greedy,uniform-progress", "--by-trace", "--plot", filepath.Join(dir, "plots"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TRACE", "POLICY", "zone-a_gpu_1", "greedy", "uniform-progress"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "on-demand") {
		t.Errorf("the table shows a policy not asked for:\n%s", table)
	}
	for _, name := range []string{"cost.svg", "timeline-greedy.svg", "timeline-uniform-progress.svg"} {
		data, err := os.ReadFile(filepath.Join(dir, "plots", name))
		if err != nil || !bytes.HasPrefix(data, []byte("<svg")) {
			t.Errorf("plot %s: %v", name, err)
		}
		if !strings.Contains(errOut, name) {
			t.Errorf("stderr does not name %s: %q", name, errOut)
		}
	}
}

func TestSimDeadlineErrors(t *testing.T) {
	t.Setenv("SPOTECI_TRACES", "")
	dir := simTraces(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no traces":        {[]string{}, "--traces"},
		"unknown policy":   {[]string{"--traces", dir, "--policy", "greedy,lazy"}, "lazy"},
		"output":           {[]string{"--traces", dir, "-o", "yaml"}, "--output"},
		"rules":            {[]string{"--traces", dir, "--rules", "gcp"}, "gcp"},
		"tight deadline":   {[]string{"--traces", dir, "--job-hours", "10", "--deadline-hours", "10"}, "deadline"},
		"short trace":      {[]string{"--traces", dir, "--deadline-hours", "1000"}, "shorter than the deadline"},
		"prices":           {[]string{"--traces", dir, "--spot-price", "5"}, "spot price"},
		"protection":       {[]string{"--traces", dir, "--protection-hours", "7"}, "protection"},
		"missing trace":    {[]string{"--traces", filepath.Join(dir, "nope")}, "nope"},
		"negative changes": {[]string{"--traces", dir, "--changeover-hours", "-1"}, "changeover"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runSim(t, append([]string{"sim", "deadline", "--starts", "2", "--job-hours", "8", "--deadline-hours", "11"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestSimJobs(t *testing.T) {
	out, _, err := runSim(t, "sim", "jobs", "--jobs", "3", "--interval", "1h", "--completions", "2", "--work", "1h",
		"--specs", "ecs.c5.large", "--zones", "cn-hangzhou-i", "--strategy", "SpotAsPriceGo", "--horizon", "24h", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Version  int              `json:"version"`
		Kind     string           `json:"kind"`
		Policies []map[string]any `json:"policies"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got.Version != 1 || got.Kind != "jobs" || len(got.Policies) != 1 {
		t.Fatalf("output %s", out)
	}
	p := got.Policies[0]
	if p["runs"] != 3.0 || p["jobs_finished"] != 3.0 || p["pods"] != 6.0 || p["completion_hours_p95"] != 1.0 {
		t.Errorf("summary %v", p)
	}

	dir := t.TempDir()
	workload := filepath.Join(dir, "workload.yaml")
	os.WriteFile(workload, []byte(`
zones: [cn-hangzhou-i]
horizon: 48h
jobs:
- name: etl
  count: 4
  interval: 2h
  completions: 3
  parallelism: 2
  work: 90m
  checkpointInterval: 30m
  checkpointCost: 1m
  annotations: {k8s.aliyun.com/eci-use-specs: ecs.c5.large}
policies:
- {name: payg, annotations: {}}
- {name: spot, annotations: {k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo}}
`), 0o644)
	args := []string{"sim", "jobs", "-f", workload, "--seed", "2", "--plot", filepath.Join(dir, "plots")}
	table, errOut, err := runSim(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "COST/JOB") || !strings.Contains(table, "payg") || !strings.Contains(table, "spot") {
		t.Errorf("table:\n%s", table)
	}
	for _, name := range []string{"cost.svg", "timeline-payg.svg", "timeline-spot.svg"} {
		if !strings.Contains(errOut, name) {
			t.Errorf("no plot %s: %q", name, errOut)
		}
	}
	again, _, _ := runSim(t, args...)
	if again != table {
		t.Error("a second run differs")
	}
	if _, _, err := runSim(t, "sim", "jobs", "-f", workload, "--work", "1h"); err == nil || !strings.Contains(err.Error(), "--work") {
		t.Errorf("-f with --work: %v", err)
	}
	if _, _, err := runSim(t, "sim", "jobs", "--jobs", "2"); err == nil || !strings.Contains(err.Error(), "--work") {
		t.Errorf("no work: %v", err)
	}
	if _, _, err := runSim(t, "sim", "jobs", "--work", "1h", "--strategy", "SpotWithPriceLimit", "--price-limit", "0.0625"); err == nil ||
		!strings.Contains(err.Error(), "eci-spot-price-limit") {
		t.Errorf("a limit of 4 decimals: %v", err)
	}
	if _, _, err := runSim(t, "sim", "jobs", "--work", "1h", "--market", "random"); err == nil || !strings.Contains(err.Error(), "random") {
		t.Errorf("an unknown market: %v", err)
	}
}
