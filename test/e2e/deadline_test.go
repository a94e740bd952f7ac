package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// The deadline annotations of issue 22.
const (
	deadlineAt       = "spoteci.io/deadline"
	expectedDuration = "spoteci.io/expected-duration"
	deadlinePolicy   = "spoteci.io/deadline-policy"
)

// TestModelDeadlineJob runs a deadline Job on the model runtime through a
// reclaim storm: its pods start on spot, the storm takes the stock away,
// each pod is replaced at its notice, and the replacements, behind the
// uniform schedule with no spot to be had, run pay-as-you-go and finish
// before the deadline. A Job beside it without the annotations runs as
// before: on spot, waiting for stock after the storm.
func TestModelDeadlineJob(t *testing.T) {
	startModel(t)
	ns := namespace(t)
	const typ = "ecs.c5.large"
	modelCLI(t, "market", "set", "--type", typ, "--price", "0.05", "--stock", "100000")
	defer modelCLI(t, "market", "set", "--type", typ, "--reset")

	// Each pod works 20 s; the Job must be done 120 s after it starts. No
	// protection period: the storm reclaims at the next check.
	spot := map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: "20s"}
	withDeadline := map[string]string{deadlineAt: "120s", expectedDuration: "20s"}
	for k, v := range spot {
		withDeadline[k] = v
	}
	shape := "  parallelism: 3\n  completions: 3\n" + indexedPerIndex + ignoreDisruption
	apply(t, ns, onModel(job("report", withDeadline, "sleep 20", shape)))
	apply(t, ns, onModel(job("plain", spot, "sleep 20", shape)))
	eventually(t, 60*time.Second, "both Jobs' pods Running", func() (bool, string) {
		return runningCount(t, ns, "job-name=report") == 3 && runningCount(t, ns, "job-name=plain") == 3, kubectl(t, "-n", ns, "get", "pods")
	})
	first := map[string]bool{}
	for _, p := range pods(t, ns, "job-name=report") {
		first[p.Metadata.Name] = true
		if price := p.Metadata.Annotations["spoteci.io/price"]; !strings.HasSuffix(price, " spot") {
			t.Errorf("pod %s runs at %q, want spot", p.Metadata.Name, price)
		}
	}
	decisions := func() string {
		return kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=DeadlinePolicy", "-o", "jsonpath={range .items[*]}{.involvedObject.name}: {.message}{\"\\n\"}{end}")
	}
	if got := decisions(); strings.Count(got, "uniform-progress: spot;") != 3 {
		t.Errorf("DeadlinePolicy events at creation:\n%s\nwant 3 that chose spot", got)
	}

	modelCLI(t, "market", "set", "--type", typ, "--stock", "0")
	eventually(t, 90*time.Second, "the deadline Job Complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "report", "-o", `jsonpath={.status.succeeded} {.status.conditions[?(@.type=="Complete")].status}`)
		return out == "3 True", out + "\n" + kubectl(t, "-n", ns, "get", "pods", "-o", "wide") + decisions()
	})
	var replaced int
	for _, p := range pods(t, ns, "job-name=report") {
		if first[p.Metadata.Name] || p.Status.Phase != "Succeeded" {
			continue
		}
		replaced++
		if price := p.Metadata.Annotations["spoteci.io/price"]; !strings.HasSuffix(price, " pay-as-you-go") {
			t.Errorf("replacement %s ran at %q, want pay-as-you-go", p.Metadata.Name, price)
		}
	}
	if replaced != 3 {
		t.Errorf("%d replacements succeeded, want 3:\n%s", replaced, kubectl(t, "-n", ns, "get", "pods"))
	}
	if got := decisions(); strings.Count(got, "uniform-progress: pay-as-you-go;") < 3 {
		t.Errorf("DeadlinePolicy events:\n%s\nwant 3 that chose pay-as-you-go", got)
	}
	times := kubectl(t, "-n", ns, "get", "job", "report", "-o", "jsonpath={.status.startTime} {.status.completionTime}")
	f := strings.Fields(times)
	started, _ := time.Parse(time.RFC3339, f[0])
	completed, _ := time.Parse(time.RFC3339, f[1])
	if done := completed.Sub(started); done > 120*time.Second {
		t.Errorf("the deadline Job took %v, past its 120 s deadline", done)
	} else {
		t.Logf("the deadline Job completed %v after its start (deadline 120 s)", done)
	}
	for _, g := range groupsOf(t, modelEnv.state, ns) {
		if tags := tagMap(g.Tags); tags["spoteci.io/job"] == "report" && tags[eciapi.TagDeadline] == "" {
			t.Errorf("instance %s of the deadline Job has no %s tag: %v", g.ContainerGroupId, eciapi.TagDeadline, tags)
		}
	}

	// The bill judges the Job: deadline met, at less than pay-as-you-go
	// (its first instances ran on spot).
	var rows []struct {
		Key                    string
		Amount, OnDemandAmount float64
		Met                    string
	}
	if err := json.Unmarshal([]byte(modelCLI(t, "bill", "--by", "job", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.Key == ns+"/report" {
			found = true
			if r.Met != "yes" || r.Amount <= 0 || r.Amount >= r.OnDemandAmount {
				t.Errorf("bill of the deadline Job: %+v, want met, and cheaper than pay-as-you-go", r)
			}
		}
	}
	if !found {
		t.Errorf("no bill row %s/report in %+v", ns, rows)
	}

	// Without the annotations nothing changes: no decision, and the plain
	// Job's replacements wait for spot stock.
	if got := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=DeadlinePolicy,involvedObject.name="+firstName(t, ns, "job-name=plain"), "-o", "name"); got != "" {
		t.Errorf("a pod without a deadline got DeadlinePolicy events: %s", got)
	}
	eventually(t, 60*time.Second, "a plain replacement waiting for spot stock", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pods", "-l", "job-name=plain", "-o", "jsonpath={range .items[*]}{.status.containerStatuses[0].state.waiting.reason} {end}")
		return strings.Contains(out, "WaitingForSpotStock"), out
	})
	deleteJobs(t, ns, "report", "plain")
}

// deleteJobs deletes the Jobs and waits for their pods to go, while the
// namespace is whole: deleted with their namespace, a Job's failed pods can
// keep its tracking finalizer for minutes, and later tests wait for every
// pod being deleted to go.
func deleteJobs(t testing.TB, ns string, jobs ...string) {
	t.Helper()
	kubectl(t, append([]string{"-n", ns, "delete", "job", "--wait=true"}, jobs...)...)
	eventually(t, 60*time.Second, "the Jobs' pods gone", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pods", "-o", "name")
		return strings.TrimSpace(out) == "", out
	})
}

// A wrong deadline annotation is a Warning naming it and its value; the pod
// does not run.
func TestDeadlineAnnotationRefused(t *testing.T) {
	startModel(t)
	ns := namespace(t)
	apply(t, ns, onModel(job("late", map[string]string{deadlineAt: "tomorrow", expectedDuration: "1h", eciapi.ModelRunFor: "1s"}, "true", "")))
	eventually(t, 30*time.Second, "the InvalidAnnotation Warning", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=InvalidAnnotation", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, `spoteci.io/deadline="tomorrow"`), out
	})
	if got := groupsOf(t, modelEnv.state, ns); len(got) != 0 {
		t.Errorf("%d instances for a pod with a wrong deadline, want none", len(got))
	}
}

func runningCount(t testing.TB, ns, selector string) int {
	n := 0
	for _, p := range pods(t, ns, selector) {
		if p.Status.Phase == "Running" {
			n++
		}
	}
	return n
}

func firstName(t testing.TB, ns, selector string) string {
	ps := pods(t, ns, selector)
	if len(ps) == 0 {
		t.Fatalf("no pod of %s", selector)
	}
	return ps[0].Metadata.Name
}

func tagMap(tags []wire.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// A pod that checkpoints (spoteci.io/progress on the template) says what
// it saved by patching the annotation; the replacement of its index, after
// a reclaim, is decided for with that progress: ahead of the uniform
// schedule with little work left, it waits for spot.
func TestModelDeadlineCheckpoint(t *testing.T) {
	startModel(t)
	ns := namespace(t)
	const typ = "ecs.g8ae.large"
	modelCLI(t, "market", "set", "--type", typ, "--price", "0.1", "--stock", "100000")
	defer modelCLI(t, "market", "set", "--type", typ, "--reset")
	ann := map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0", eciapi.ModelRunFor: "40s",
		deadlineAt: "100s", expectedDuration: "40s", "spoteci.io/progress": "0s"}
	apply(t, ns, onModel(job("saved", ann, "sleep 40", indexedPerIndex+ignoreDisruption)))
	eventually(t, 60*time.Second, "the pod Running", func() (bool, string) {
		return runningCount(t, ns, "job-name=saved") == 1, kubectl(t, "-n", ns, "get", "pods")
	})
	first := firstName(t, ns, "job-name=saved")
	// What the pod itself would do: kubectl annotate --overwrite pod $HOSTNAME.
	kubectl(t, "-n", ns, "annotate", "--overwrite", "pod", first, "spoteci.io/progress=30s")
	// The node reads it at its next look at the pod (a tick: 1.25 s at x240).
	time.Sleep(3 * time.Second)
	modelCLI(t, "market", "set", "--type", typ, "--stock", "0")
	eventually(t, 60*time.Second, "the replacement waiting for spot with 10 s of work left", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=DeadlinePolicy", "-o", `jsonpath={range .items[*]}{.involvedObject.name}: {.message}{"\n"}{end}`)
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, first+":") && strings.Contains(line, "wait for spot; work left 10s of 40s") {
				return true, out
			}
		}
		return false, out + kubectl(t, "-n", ns, "get", "pods")
	})
	deleteJobs(t, ns, "saved")
}
