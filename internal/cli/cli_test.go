package cli_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/cli"
	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/ecisdk"
	"github.com/spoteci/spoteci/internal/images"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// binary is spoteci, built for the tests; imageCache holds
// the busybox image its server publishes.
var binary, imageCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "spoteci-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "spoteci")
	build := exec.Command("go", "build", "-o", binary, "github.com/spoteci/spoteci/cmd/spoteci")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("building spoteci: " + err.Error())
	}
	imageCache = filepath.Join(dir, "images")
	if _, err := images.Build(context.Background(), imageCache, images.Options{}, "busybox"); err != nil {
		panic("building the busybox image: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServer runs the real binary's server on a state folder and returns
// once its eci.json is written.
func startServer(t *testing.T, stateDir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "server", "--state-dir", stateDir, "--time-scale", "3600", "--image-cache", imageCache)
	t.Cleanup(func() { exec.Command(binary, "down", "--state-dir", stateDir, "--image-cache", imageCache).Run() })
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	// Bounds for a machine loaded by other tests: polled, they cost nothing
	// when things are quick.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := eciapi.ReadServerInfo(stateDir); err == nil {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not write eci.json:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run calls the CLI in-process, as a user's shell would the binary.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), cli.Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("spoteci %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// The by-hand session of the issue, through the CLI: the guide's pi
// container with SpotWithPriceLimit, a forced reclaim, and the bill.
func TestCLIByHand(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	sd := "--state-dir=" + dir

	prices := mustRun(t, "market", "prices", "--type", "ecs.c5.large", sd)
	if !strings.Contains(prices, "cn-hangzhou-i") || !strings.Contains(prices, "0.622") || !strings.HasPrefix(prices, "ZONE") {
		t.Fatalf("market prices:\n%s", prices)
	}
	mustRun(t, "market", "set", "--type", "ecs.c5.large", "--zone", "cn-hangzhou-i", "--price", "0.056", sd)
	id := strings.TrimSpace(mustRun(t, "create", "pi", "--specs", "ecs.c5.large,2-4Gi", "--spot-strategy", "SpotWithPriceLimit",
		"--price-limit", "0.06", "--image", "busybox", sd, "--", "sh", "-c", "echo 3.14159; while :; do sleep 0.05; done"))
	if !strings.HasPrefix(id, "eci-") {
		t.Fatalf("create printed %q", id)
	}
	waitFor(t, "pi Running", func() bool { return strings.Contains(mustRun(t, "instances", sd), "Running") })
	// At once: at this time scale each second is an hour, and the bill
	// below counts the hour of protection at the bid's price.
	mustRun(t, "market", "set", "--type", "ecs.c5.large", "--price", "0.5", sd)
	waitFor(t, "pi Expired", func() bool { return strings.Contains(mustRun(t, "instances", sd), "Expired") })
	// The log outlives the instance; waited for, as Running meant the task
	// had started, not that its first line had reached the file.
	waitFor(t, "pi's first line in its log", func() bool { return strings.Contains(mustRun(t, "logs", id, sd), "3.14159") })
	describe := mustRun(t, "describe", id, sd)
	for _, want := range []string{"SpotToBeReleased", "Spot ECI will be released in 5 minutes", "SpotReleased", "Release Notice:"} {
		if !strings.Contains(describe, want) {
			t.Errorf("describe lacks %q:\n%s", want, describe)
		}
	}
	bill := mustRun(t, "bill", sd)
	if !strings.Contains(bill, "TOTAL") || !strings.Contains(bill, id) {
		t.Errorf("bill:\n%s", bill)
	}
	var resp eciapi.DescribeBillResponse
	if err := json.Unmarshal([]byte(mustRun(t, "bill", "-o", "json", sd)), &resp); err != nil {
		t.Fatal(err)
	}
	// The protection hour at the bid's price, then the market's 0.5 from
	// the change (at once: at the end of the hour; on a loaded machine
	// perhaps later) to the release: the 5 minutes of the notice, and up to
	// 5 more if the change came between two checks.
	if len(resp.Items) != 1 || len(resp.Items[0].Lines) < 2 {
		t.Fatalf("bill -o json: %+v, want one item of two lines or more", resp)
	}
	lines := resp.Items[0].Lines
	if first := lines[0]; first.Price != 0.056 || first.To.Sub(first.From) < time.Hour {
		t.Errorf("first bill line %+v, want the protection hour at 0.056", first)
	}
	if last := lines[len(lines)-1]; last.Price != 0.5 || last.To.Sub(last.From) < 5*time.Minute || last.To.Sub(last.From) > 10*time.Minute {
		t.Errorf("last bill line %+v, want 5 to 10 minutes at 0.5 up to the release", last)
	}
	sum := 0.0
	for _, l := range lines {
		if want := l.Price * l.To.Sub(l.From).Hours(); math.Abs(l.Amount-want) > 1e-9 {
			t.Errorf("bill line %+v: amount, want %v", l, want)
		}
		sum += l.Amount
	}
	if math.Abs(resp.Amount-sum) > 1e-9 || resp.Amount < 0.056+0.5*5/60-1e-9 {
		t.Errorf("bill -o json amount %v, want its lines' %v, at least %v", resp.Amount, sum, 0.056+0.5*5/60)
	}
	plot := filepath.Join(dir, "history.svg")
	mustRun(t, "market", "history", "--type", "ecs.c5.large", "--zone", "cn-hangzhou-i", "--plot", plot, sd)
	if svg, err := os.ReadFile(plot); err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("history plot: %v", err)
	}
}

// The bill of deadline Jobs on the real server: instances tagged as the
// node tags a deadline Job's, and whether each Job met its deadline (a wall
// time, while the market runs 3,600 times faster).
func TestCLIBillDeadlineJobs(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	sd := "--state-dir=" + dir
	info, err := eciapi.ReadServerInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkConsole(t, info)
	info.Region = cmp.Or(info.Region, eci.DefaultRegion)
	sdk, err := ecisdk.Local(info, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sdk.Close()
	now := time.Now().UTC()
	for _, j := range []struct {
		job      string
		deadline time.Duration // from now; 0: none
		command  string
	}{
		{"met", time.Hour, "true"},
		{"missed", -time.Hour, "true"},
		{"pending", time.Hour, "while :; do sleep 0.05; done"},
		{"plain", 0, "true"},
	} {
		tags := []eciapi.Tag{{Key: eciapi.TagNamespace, Value: "default"}, {Key: eciapi.TagJob, Value: j.job}, {Key: eciapi.TagPod, Value: j.job + "-1"}}
		if j.deadline != 0 {
			tags = append(tags, eciapi.Tag{Key: eciapi.TagDeadline, Value: now.Add(j.deadline).Format(time.RFC3339)})
		}
		if _, err := sdk.CreateContainerGroup(context.Background(), eciapi.CreateContainerGroupRequest{ContainerGroupName: j.job + "-1",
			InstanceType: "ecs.c5.large", Tags: tags, Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"sh", "-c", j.command}}}}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"default/met": "yes", "default/missed": "no", "default/pending": "pending", "default/plain": ""}
	var rows []struct {
		Key      string
		Deadline *time.Time
		Met      string
		Amount   float64
	}
	waitFor(t, "the Jobs judged", func() bool {
		if err := json.Unmarshal([]byte(mustRun(t, "bill", "--by", "job", "-o", "json", sd)), &rows); err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if want[r.Key] != r.Met {
				return false
			}
		}
		return len(rows) == len(want)
	})
	for _, r := range rows {
		if (r.Deadline == nil) != (r.Key == "default/plain") || r.Amount <= 0 {
			t.Errorf("row %+v", r)
		}
	}
	table := mustRun(t, "bill", "--by", "job", sd)
	lines := strings.Split(table, "\n")
	if f := strings.Fields(lines[0]); len(f) != 8 || f[6] != "DEADLINE" || f[7] != "MET" {
		t.Errorf("header %q, want DEADLINE and MET last", lines[0])
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 8 && f[0] == "default/plain" && (f[6] != "-" || f[7] != "-") {
			t.Errorf("a Job without a deadline: %q", l)
		}
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	sd := "--state-dir=" + dir
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"instances", "-o", "yaml", sd}, "--output must be 'table' or 'json'"},
		{[]string{"instances", "--state-dir", filepath.Join(dir, "nope")}, "is `spoteci server --state-dir"},
		{[]string{"create", "pi", "--image", "busybox", "--spot-strategy", "SpotWithPriceLimit", "--price-limit", "0.2555", sd, "--", "true"}, `SpotPriceLimit "0.2555"`},
		{[]string{"create", "pi", "--image", "busybox", "--spot-duration", "-1", "--spot-strategy", "SpotAsPriceGo", sd, "--", "true"}, `SpotDuration "-1"`},
		{[]string{"market", "set", "--type", "ecs.c5.large", "--stock", "-3", sd}, "Stock -3"},
		{[]string{"market", "history", "--type", "ecs.c5.large", "--zone", "mars-1a", sd}, `"mars-1a"`},
		{[]string{"server", "--container-log-max-size", "10", "--state-dir", t.TempDir()}, "--container-log-max-size"},
		{[]string{"server", "--container-log-max-files", "1", "--state-dir", t.TempDir()}, "--container-log-max-files 1"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("spoteci %s: %v, want an error naming %s", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkConsole checks that the server serves the web console where eci.json
// says, behind its sign-in.
func checkConsole(t *testing.T, info eciapi.ServerInfo) {
	t.Helper()
	if info.Console != info.Endpoint+"/console/" {
		t.Fatalf("eci.json: Console %q for endpoint %q", info.Console, info.Endpoint)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(info.Console + "instances")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/signin?") {
		t.Errorf("the console signed out: %s to %q", resp.Status, loc)
	}
}
