package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/examples"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

const (
	strategy = "k8s.aliyun.com/eci-spot-strategy"
	limit    = "k8s.aliyun.com/eci-spot-price-limit"
	duration = "k8s.aliyun.com/eci-spot-duration"
	fallback = "k8s.aliyun.com/eci-spot-fallback"
	specs    = "k8s.aliyun.com/eci-use-specs"
	release  = "k8s.aliyun.com/eci-spot-release-strategy"
)

// 1. The guide's Job as the guide prints it (examples/ack-spot-job.yaml):
// its image pulled, Completed, and kubectl logs prints pi to 2,000 digits.
func TestGuideJob(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	apply(t, ns, examples.ACKSpotJob)
	eventually(t, 60*time.Second, "pi Completed", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod")
		return strings.Contains(out, "Completed"), out
	})
	logs := kubectl(t, "-n", ns, "logs", "job/pi")
	if !strings.HasPrefix(logs, "3.14159265358979") || len(strings.TrimSpace(logs)) != 2001 {
		t.Fatalf("kubectl logs: %d characters, want 3.14159... with 2,000 digits: %q", len(strings.TrimSpace(logs)), tail(logs, 80))
	}
	if logs := kubectl(t, "-n", ns, "logs", "-f", "--tail=1", "job/pi"); !strings.HasPrefix(logs, "3.14159265358979") || strings.Count(logs, "\n") != 1 {
		t.Fatalf("kubectl logs -f --tail=1: %q", logs)
	}
	eventually(t, 30*time.Second, "the Job complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "pi")
		return strings.Contains(out, "Complete"), out
	})
	// The kubelet's events of an image pull, from the image the guide names.
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Pod", "-o", "custom-columns=REASON:.reason,MESSAGE:.message")
	for _, want := range []string{`Pulling image "registry-vpc.cn-beijing.aliyuncs.com/ostest/perl"`, "Successfully pulled image", "Created container: pi", "Started container pi"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
	g := groups(t, ns)
	if len(g) != 1 || g[0].InstanceType != "ecs.c5.large" || g[0].SpotStrategy != "SpotAsPriceGo" {
		t.Fatalf("instances %+v: want one ecs.c5.large SpotAsPriceGo", g)
	}
	if c := g[0].Containers[0]; c.Spoteci == nil || !strings.HasPrefix(c.Spoteci.ImageID, "sha256:") {
		t.Errorf("the instance ran no pulled image: %+v", g[0].Containers[0])
	}
}

// 2. Reclaim: the price goes above the limit after protection; the notice
// shows in events and describe, the pod ends BidFailed with its message and
// conditions, the Job controller replaces it, and the Job completes once the
// price falls.
func TestReclaim(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const typ = "ecs.c7.large"
	setPrice(t, typ, "0.1")
	apply(t, ns, job("work", map[string]string{specs: typ, strategy: "SpotWithPriceLimit", limit: "0.2", duration: "0"},
		"echo started; sleep 8", ""))
	var first pod
	eventually(t, 30*time.Second, "first pod Running", func() (bool, string) {
		ps := pods(t, ns, "job-name=work")
		if len(ps) == 1 && ps[0].Status.Phase == "Running" {
			first = ps[0]
			return true, ""
		}
		return false, kubectl(t, "-n", ns, "get", "pod")
	})
	setPrice(t, typ, "0.5")
	eventually(t, 30*time.Second, "BidFailed in kubectl get pod", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", first.Metadata.Name)
		return strings.Contains(out, "BidFailed"), out
	})
	events := kubectl(t, "-n", ns, "get", "events")
	if !strings.Contains(events, "SpotToBeReleased") || !strings.Contains(events, "Spot ECI will be released in 5 minutes") {
		t.Errorf("kubectl get events:\n%s", events)
	}
	describe := kubectl(t, "-n", ns, "describe", "pod", first.Metadata.Name)
	// kubectl 1.37 shows only the source component ("kubelet"); the guide's
	// older kubectl also showed the host, which the event carries ("eci").
	if !strings.Contains(describe, "Warning  SpotToBeReleased") || !strings.Contains(describe, "kubelet  ") {
		t.Errorf("kubectl describe pod lacks the warning from the kubelet:\n%s", describe)
	}
	host := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=SpotToBeReleased", "-o", "jsonpath={.items[0].source.host}")
	if host != "eci" {
		t.Errorf("event source host %q, want eci", host)
	}
	p := pods(t, ns, "job-name=work")
	var failed pod
	for _, x := range p {
		if x.Metadata.Name == first.Metadata.Name {
			failed = x
		}
	}
	if failed.Status.Phase != "Failed" || failed.Status.Reason != "BidFailed" ||
		!strings.HasPrefix(failed.Status.Message, "The pod is a spot instance, and has been released at ") {
		t.Errorf("status %s %s %q", failed.Status.Phase, failed.Status.Reason, failed.Status.Message)
	}
	if s, r := failed.condition("DisruptionTarget"); s != "True" || r != "BidFailed" {
		t.Errorf("DisruptionTarget %s/%s, want True/BidFailed", s, r)
	}
	if s, _ := failed.condition("ContainerInstanceExpired"); s != "True" {
		t.Errorf("ContainerInstanceExpired %s, want True", s)
	}
	// The replacement comes from the Job controller; it waits while the price
	// is above its limit, and runs to completion when the price falls.
	eventually(t, 60*time.Second, "a replacement pod", func() (bool, string) {
		return len(pods(t, ns, "job-name=work")) >= 2, kubectl(t, "-n", ns, "get", "pod")
	})
	setPrice(t, typ, "0.1")
	eventually(t, 60*time.Second, "the Job completes after the price falls", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "work", "-o", "jsonpath={.status.conditions[*].type}")
		return strings.Contains(out, "Complete"), out + "\n" + kubectl(t, "-n", ns, "get", "pod")
	})
}

// 3. Protection: nothing is released during the protection period, even with
// the price above the limit; with eci-spot-duration "0" the first check does.
func TestProtection(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	setPrice(t, "ecs.g7.large", "0.1")
	setPrice(t, "ecs.g7nex.large", "0.1")
	apply(t, ns, job("protected", map[string]string{specs: "ecs.g7.large", strategy: "SpotWithPriceLimit", limit: "0.2"}, loop, ""))
	apply(t, ns, job("bare", map[string]string{specs: "ecs.g7nex.large", strategy: "SpotWithPriceLimit", limit: "0.2", duration: "0"}, loop, ""))
	for _, j := range []string{"protected", "bare"} {
		waitJobPodRunning(t, ns, j)
	}
	setPrice(t, "ecs.g7.large", "0.5")
	setPrice(t, "ecs.g7nex.large", "0.5")
	changed := time.Now()
	eventually(t, 20*time.Second, "the unprotected pod released at its first check", func() (bool, string) {
		ps := pods(t, ns, "job-name=bare")
		return len(ps) > 0 && ps[0].Status.Reason == "BidFailed", kubectl(t, "-n", ns, "get", "pod")
	})
	// An hour of protection is 15 s here: most of it is still ahead.
	if ps := pods(t, ns, "job-name=protected"); ps[0].Status.Phase != "Running" {
		t.Fatalf("protected pod %s %s before its protection ended", ps[0].Status.Phase, ps[0].Status.Reason)
	}
	g := groups(t, ns)
	for _, x := range g {
		if x.InstanceType != "ecs.g7.large" {
			continue
		}
		// Both in the wire's one format, so they compare as strings.
		if n := x.Spoteci.NoticeTime; n != "" && n < x.Spoteci.ProtectionEnd {
			t.Fatalf("notice %v before the end of protection %v", n, x.Spoteci.ProtectionEnd)
		}
	}
	eventually(t, 40*time.Second, "the protected pod released after its protection", func() (bool, string) {
		ps := pods(t, ns, "job-name=protected")
		return ps[0].Status.Reason == "BidFailed", kubectl(t, "-n", ns, "get", "pod")
	})
	if wall := time.Since(changed); wall < 8*time.Second {
		t.Errorf("released %v after the price change: within the hour of protection (15 s)", wall)
	}
}

// 4. Fallback: no stock with fallback runs pay-as-you-go (SpotDegraded),
// never reclaimed; without fallback the pod waits with a Warning event and
// runs when stock returns.
func TestFallback(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	setStock(t, "ecs.r7.large", 0)
	setStock(t, "ecs.r5.large", 0)
	apply(t, ns, job("degraded", map[string]string{specs: "ecs.r7.large", strategy: "SpotAsPriceGo", fallback: "true", duration: "0"}, loop, ""))
	apply(t, ns, job("waiting", map[string]string{specs: "ecs.r5.large", strategy: "SpotAsPriceGo", duration: "0"}, loop, ""))
	waitJobPodRunning(t, ns, "degraded")
	eventually(t, 30*time.Second, "SpotDegraded and the stock warning", func() (bool, string) {
		ev := kubectl(t, "-n", ns, "get", "events")
		return strings.Contains(ev, "SpotDegraded") && strings.Contains(ev, "SpotStockInsufficient"), ev
	})
	if ps := pods(t, ns, "job-name=waiting"); ps[0].Status.Phase != "Pending" {
		t.Fatalf("pod without fallback is %s while there is no stock", ps[0].Status.Phase)
	}
	for _, g := range groups(t, ns) {
		if !g.Spoteci.Degraded || g.SpotStrategy != "SpotAsPriceGo" {
			t.Fatalf("instance %s degraded=%v: only the degraded one may exist", g.ContainerGroupName, g.Spoteci.Degraded)
		}
	}
	setStock(t, "ecs.r5.large", 10)
	setPrice(t, "ecs.r7.large", "99") // a pay-as-you-go instance ignores the market
	eventually(t, 30*time.Second, "the waiting pod runs when stock returns", func() (bool, string) {
		ps := pods(t, ns, "job-name=waiting")
		return ps[0].Status.Phase == "Running", kubectl(t, "-n", ns, "get", "pod")
	})
	time.Sleep(3 * time.Second) // a few checks (5 market minutes = 1.25 s)
	if ps := pods(t, ns, "job-name=degraded"); ps[0].Status.Phase != "Running" {
		t.Fatalf("the pay-as-you-go pod was reclaimed: %s %s", ps[0].Status.Phase, ps[0].Status.Reason)
	}
}

// 5. podFailurePolicy Ignore on DisruptionTarget with backoffLimit 0: three
// reclaims do not fail the Job, which then succeeds.
func TestPodFailurePolicySurvivesReclaims(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const typ = "ecs.c8a.large"
	setPrice(t, typ, "0.1")
	policy := "  backoffLimit: 0\n  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onPodConditions:\n      - type: DisruptionTarget\n"
	// The work takes 6 s: a reclaim at a check (every 1.25 s) cuts it short.
	apply(t, ns, job("resilient", map[string]string{specs: typ, strategy: "SpotWithPriceLimit", limit: "0.2", duration: "0"}, "sleep 6", policy))
	for i := 1; i <= 3; i++ {
		eventually(t, 120*time.Second, fmt.Sprintf("attempt %d Running", i), func() (bool, string) {
			running := 0
			for _, p := range pods(t, ns, "job-name=resilient") {
				if p.Status.Phase == "Running" {
					running++
				}
			}
			return running == 1, kubectl(t, "-n", ns, "get", "pod")
		})
		setPrice(t, typ, "0.5")
		eventually(t, 30*time.Second, fmt.Sprintf("reclaim %d", i), func() (bool, string) {
			n := 0
			for _, p := range pods(t, ns, "job-name=resilient") {
				if p.Status.Reason == "BidFailed" {
					n++
				}
			}
			return n == i, kubectl(t, "-n", ns, "get", "pod")
		})
		setPrice(t, typ, "0.1")
	}
	setPrice(t, typ, "0.1")
	eventually(t, 180*time.Second, "the Job completes", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "resilient", "-o", "jsonpath={.status.conditions[*].type}")
		return strings.Contains(out, "Complete"), out + "\n" + kubectl(t, "-n", ns, "get", "pod")
	})
}

// 6. api-evict: the node evicts the pod at the notice; a blocking budget is
// named in a Warning event and the release still comes on time; the
// container gets SIGTERM and writes it to its log.
func TestAPIEvict(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const typ = "ecs.c8i.large"
	setPrice(t, typ, "0.1")
	ann := map[string]string{specs: typ, strategy: "SpotWithPriceLimit", limit: "0.2", duration: "0", release: "api-evict"}
	apply(t, ns, job("evicted", ann, loop, ""))
	waitJobPodRunning(t, ns, "evicted")
	name := pods(t, ns, "job-name=evicted")[0].Metadata.Name
	setPrice(t, typ, "0.5")
	// Evicted: the pod is deleted through the Eviction API; its instance is
	// deleted with the grace period and the container reports SIGTERM.
	eventually(t, 30*time.Second, "the pod evicted", func() (bool, string) {
		out, err := kubectlErr("-n", ns, "get", "pod", name)
		return err != nil && strings.Contains(out, "NotFound"), out
	})
	for _, g := range allGroups(t, ns) {
		if g.ContainerGroupName == ns+"-"+name && g.Status != "Deleted" && g.Status != "Expired" {
			t.Errorf("instance of the evicted pod is %s", g.Status)
		}
	}
	if log := groupLog(t, ns, name); !strings.Contains(log, "got SIGTERM") {
		t.Errorf("container log %q: no SIGTERM", log)
	}

	// With a budget that allows no disruption the eviction is refused: the
	// node says so, and the release comes anyway.
	setPrice(t, "ecs.g8y.large", "0.1")
	ann[specs] = "ecs.g8y.large"
	apply(t, ns, job("guarded", ann, loop, ""))
	apply(t, ns, `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: keep-guarded
spec:
  minAvailable: 1
  selector:
    matchLabels:
      job-name: guarded
`)
	waitJobPodRunning(t, ns, "guarded")
	eventually(t, 30*time.Second, "the budget allows no disruption", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pdb", "keep-guarded", "-o", "jsonpath={.status.disruptionsAllowed}/{.status.currentHealthy}")
		return out == "0/1", out
	})
	setPrice(t, "ecs.g8y.large", "0.5")
	eventually(t, 30*time.Second, "BidFailed despite the budget", func() (bool, string) {
		ps := pods(t, ns, "job-name=guarded")
		return ps[0].Status.Reason == "BidFailed", kubectl(t, "-n", ns, "get", "pod")
	})
	ev := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=SpotEvictionBlocked")
	if !strings.Contains(ev, "keep-guarded") {
		t.Errorf("no Warning naming the budget:\n%s", ev)
	}
}

// 7. Annotations are read once: editing them later changes nothing; each
// invalid annotation of SPEC section 2 gives its Warning event and the pod
// does not run.
func TestAnnotations(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	setPrice(t, "ecs.g8a.large", "0.1")
	apply(t, ns, podManifest("edited", map[string]string{specs: "ecs.g8a.large", strategy: "SpotWithPriceLimit", limit: "0.2"}))
	waitPodRunning(t, ns, "edited")
	kubectl(t, "-n", ns, "annotate", "pod", "edited", "--overwrite", limit+"=0.001", strategy+"=SpotAsPriceGo")
	time.Sleep(2 * time.Second)
	g := groups(t, ns)
	if len(g) != 1 || g[0].SpotPriceLimit != 0.2 || g[0].SpotStrategy != "SpotWithPriceLimit" || g[0].Status != "Running" {
		t.Fatalf("after editing the annotations: %+v", g)
	}
	cases := []struct {
		name       string
		ann        map[string]string
		annotation string
		value      string
	}{
		{"strategy", map[string]string{strategy: "SpotCheapest"}, strategy, "SpotCheapest"},
		{"limit-without-strategy", map[string]string{strategy: "SpotAsPriceGo", limit: "0.5"}, limit, "0.5"},
		{"limit-4-decimals", map[string]string{strategy: "SpotWithPriceLimit", limit: "0.2555"}, limit, "0.2555"},
		{"negative-duration", map[string]string{strategy: "SpotAsPriceGo", duration: "-1"}, duration, "-1"},
		{"unknown-type", map[string]string{strategy: "SpotAsPriceGo", specs: "ecs.nope.large"}, specs, "ecs.nope.large"},
		{"malformed-spec", map[string]string{strategy: "SpotAsPriceGo", specs: "2-4G"}, specs, "2-4G"},
	}
	for _, c := range cases {
		apply(t, ns, podManifest("bad-"+c.name, c.ann))
	}
	for _, c := range cases {
		eventually(t, 30*time.Second, "event for "+c.name, func() (bool, string) {
			ev := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=bad-"+c.name+",reason=InvalidAnnotation", "-o", "jsonpath={.items[*].message}")
			return strings.Contains(ev, c.annotation) && strings.Contains(ev, `"`+c.value+`"`), ev
		})
	}
	if n := len(groups(t, ns)); n != 1 {
		t.Fatalf("%d instances: a pod with an invalid annotation got one", n)
	}
	if out := kubectl(t, "-n", ns, "get", "pod", "bad-strategy"); !strings.Contains(out, "InvalidAnnotation") {
		t.Errorf("kubectl get pod:\n%s", out)
	}
}

// 8. Deleting the pod deletes its instance; restarting the node creates no
// duplicate and statuses catch up; restarting the service keeps pods running.
func TestDeleteAndRestarts(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	setPrice(t, "ecs.g8i.large", "0.1")
	ann := map[string]string{specs: "ecs.g8i.large", strategy: "SpotWithPriceLimit", limit: "0.2"}
	apply(t, ns, podManifest("deleted", ann))
	apply(t, ns, podManifest("kept", ann))
	for _, name := range []string{"deleted", "kept"} {
		waitPodRunning(t, ns, name)
	}
	kubectl(t, "-n", ns, "delete", "pod", "deleted", "--wait=true", "--timeout=30s")
	if log := groupLog(t, ns, "deleted"); !strings.Contains(log, "got SIGTERM") {
		t.Errorf("deleted pod's container log %q: no SIGTERM", log)
	}
	if g := groups(t, ns); len(g) != 1 || g[0].ContainerGroupName != ns+"-kept" {
		t.Fatalf("after deleting a pod the live instances are %+v", g)
	}

	// An instance deleted behind the node's back: its pod fails, saying why.
	apply(t, ns, podManifest("orphaned", ann))
	waitPodRunning(t, ns, "orphaned")
	for _, g := range groups(t, ns) {
		if g.ContainerGroupName == ns+"-orphaned" {
			spoteci(t, "delete", g.ContainerGroupId)
		}
	}
	eventually(t, 30*time.Second, "the orphaned pod failed", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "orphaned", "-o", "jsonpath={.status.phase} {.status.reason}")
		return out == "Failed ContainerInstanceVanished", out
	})

	// The node goes away; a pod is created and one ends meanwhile; the node
	// comes back and catches up without duplicates.
	env.node.stop()
	apply(t, ns, podManifest("while-away", ann))
	env.node = startNode()
	waitPodRunning(t, ns, "while-away")
	env.node.stop()
	env.node = startNode()
	time.Sleep(2 * time.Second)
	if g := groups(t, ns); len(g) != 2 {
		t.Fatalf("%d live instances after two node restarts, want 2 (no duplicate)", len(g))
	}
	// Each restarted node read the events the pods had: none forwarded twice.
	if out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=kept,reason=Started", "-o", "jsonpath={.items[*].count}"); out != "1" {
		t.Errorf("the kept pod's Started events after two node restarts: counts %q, want one event, sent once", out)
	}

	// The service restarts; its containers run on (the same processes: their
	// start times do not change) and the pods stay Running.
	started := func() string {
		for _, g := range groups(t, ns) {
			if g.ContainerGroupName == ns+"-kept" && g.Containers[0].CurrentState.State == "Running" {
				return g.Containers[0].CurrentState.StartTime
			}
		}
		return ""
	}
	before := started()
	if before == "" {
		t.Fatal("the kept container is not running before the restart")
	}
	env.server.stop()
	env.server = startServer()
	eventually(t, 30*time.Second, "the kept container still running after the service restart", func() (bool, string) {
		after := started()
		return after == before, "started " + after + ", before the restart " + before
	})
	time.Sleep(time.Second)
	if out := kubectl(t, "-n", ns, "get", "pod", "kept"); !strings.Contains(out, "Running") {
		t.Fatalf("after the service restart:\n%s", out)
	}
}

func podManifest(name string, annotations map[string]string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  annotations:
%sspec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", %q]
  restartPolicy: Never
`, name, yamlMap(annotations, "    "), loop)
}

// spoteci demo tells the guide's story on its own control plane.
func TestDemo(t *testing.T) {
	skipWithoutCluster(t)
	out, err := execCommand(env.spoteci, "demo", "--bin-dir", env.bin)
	if err != nil {
		t.Fatalf("spoteci demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Running", "SpotToBeReleased", "Spot ECI will be released in 5 minutes", "BidFailed",
		"The pod is a spot instance, and has been released at", "Complete", "3.14159", "(2000 digits)", "Pulling image", "less than pay-as-you-go",
		"Follow it in the web console too: http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}

// waitJobPodRunning waits for the one pod of a Job to run.
func waitJobPodRunning(t *testing.T, ns, job string) {
	t.Helper()
	eventually(t, 30*time.Second, job+" Running", func() (bool, string) {
		ps := pods(t, ns, "job-name="+job)
		return len(ps) == 1 && ps[0].Status.Phase == "Running", kubectl(t, "-n", ns, "get", "pod,pdb")
	})
}

// waitPodRunning waits for a pod to run.
func waitPodRunning(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 30*time.Second, name+" Running", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", name)
		return strings.Contains(out, "Running"), out
	})
}

// The node asks what changed among its instances once a second, in one
// call, however many pods it runs, and lists them all once a minute (issue
// 9: at most one list call a second with 1,000 pods; issue 20: a poll's work
// is what changed, not what exists).
func TestListRate(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	for i := range 3 {
		apply(t, ns, podManifest(fmt.Sprint("idle-", i), nil))
	}
	for i := range 3 {
		waitPodRunning(t, ns, fmt.Sprint("idle-", i))
	}
	// calls counts the successful OpenAPI calls of each action so far.
	calls := func() map[string]int {
		body, err := eciAdmin(t).Metrics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, `spoteci_api_request_duration_seconds_count{action="`); ok {
				action, v, _ := strings.Cut(rest, `",code="200"} `)
				n[action], _ = strconv.Atoi(v)
			}
		}
		return n
	}
	// Pods of earlier tests still being deleted are read by ID: wait them
	// out, and the namespaces of earlier tests, whose pods may not be
	// marked for deletion yet.
	eventually(t, 2*time.Minute, "no pod or namespace terminating", func() (bool, string) {
		out := kubectl(t, "get", "pods", "-A", "-o", "jsonpath={.items[?(@.metadata.deletionTimestamp)].metadata.name}")
		out += kubectl(t, "get", "namespaces", "-o", `jsonpath={.items[?(@.status.phase=="Terminating")].metadata.name}`)
		return strings.TrimSpace(out) == "", out
	})
	// The node asks what changed once a second, and lists every instance
	// only once a minute.
	const window = 5 * time.Second
	before := calls()
	time.Sleep(window)
	after := calls()
	polls, lists := after["DescribeContainerGroupStatus"]-before["DescribeContainerGroupStatus"], after["DescribeContainerGroups"]-before["DescribeContainerGroups"]
	if polls > int(window/time.Second)+1 {
		t.Errorf("%d DescribeContainerGroupStatus calls in %s with 3 idle pods: want at most one a second", polls, window)
	} else if polls == 0 {
		t.Errorf("no DescribeContainerGroupStatus call in %s: the node does not poll", window)
	}
	if lists > 1 {
		t.Errorf("%d DescribeContainerGroups calls in %s with 3 idle pods: want the full listing once a minute at most", lists, window)
	}
	if t.Failed() {
		for action, n := range after {
			t.Logf("%s: %d calls in the window", action, n-before[action])
		}
	}
}

// The ECI guide's examples, applied verbatim on the default setup: each Job
// completes with pi, on the instance its guide says (example 4: no spot
// stock at or under its 0.05 limit, so pay-as-you-go with SpotDegraded).
// guideExamples are the ECI guide's examples and what each one's instance
// must be.
var guideExamples = []struct {
	name, manifest string
	check          func(t *testing.T, ns string, g wire.ContainerGroup)
}{
	{"1-type-and-limit", examples.ECI1InstanceTypePriceLimit, func(t *testing.T, ns string, g wire.ContainerGroup) {
		if g.InstanceType != "ecs.c6.large" || g.SpotStrategy != "SpotWithPriceLimit" || g.SpotPriceLimit != 0.25 || g.Spoteci.Degraded {
			t.Errorf("instance %s %s limit %v degraded %v, want a spot ecs.c6.large with limit 0.25", g.InstanceType, g.SpotStrategy, g.SpotPriceLimit, g.Spoteci.Degraded)
		}
	}},
	{"2-resources", examples.ECI2Resources, func(t *testing.T, ns string, g wire.ContainerGroup) {
		if g.Cpu != 2 || g.Memory != 4 || g.SpotStrategy != "SpotAsPriceGo" {
			t.Errorf("instance %s %v vCPU %v GiB %s, want a 2-4Gi SpotAsPriceGo one", g.InstanceType, g.Cpu, g.Memory, g.SpotStrategy)
		}
	}},
	{"2-specs", examples.ECI2Specs, func(t *testing.T, ns string, g wire.ContainerGroup) {
		if g.Cpu != 2 || g.Memory != 4 || g.SpotStrategy != "SpotAsPriceGo" {
			t.Errorf("instance %s %v vCPU %v GiB %s, want a 2-4Gi SpotAsPriceGo one", g.InstanceType, g.Cpu, g.Memory, g.SpotStrategy)
		}
	}},
	{"3-no-protection", examples.ECI3NoProtection, func(t *testing.T, ns string, g wire.ContainerGroup) {
		if g.Spoteci.SpotDuration != 0 || g.SpotStrategy != "SpotAsPriceGo" {
			t.Errorf("instance protected %dh (%s), want no protection", g.Spoteci.SpotDuration, g.SpotStrategy)
		}
	}},
	{"4-fallback", examples.ECI4Fallback, func(t *testing.T, ns string, g wire.ContainerGroup) {
		if g.InstanceType != "ecs.c6.large" || !g.Spoteci.Degraded || g.Spoteci.PurchasePrice != 0.4717 {
			t.Errorf("instance %s degraded %v at %v, want ecs.c6.large pay-as-you-go at 0.4717", g.InstanceType, g.Spoteci.Degraded, g.Spoteci.PurchasePrice)
		}
		// Events are posted apart from the status: on the model runtime the
		// check comes seconds after the creation.
		eventually(t, 30*time.Second, "a Warning SpotDegraded naming the price limit", func() (bool, string) {
			events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=SpotDegraded", "-o", "custom-columns=TYPE:.type,MESSAGE:.message")
			return strings.Contains(events, "Warning") && strings.Contains(events, "price limit 0.05"), events
		})
	}},
}

func TestECIGuideExamples(t *testing.T) {
	skipWithoutCluster(t)
	for _, c := range guideExamples {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t)
			apply(t, ns, c.manifest)
			eventually(t, 90*time.Second, "Job test Complete", func() (bool, string) {
				out := kubectl(t, "-n", ns, "get", "job,pod")
				return strings.Contains(out, "Complete"), out
			})
			if logs := kubectl(t, "-n", ns, "logs", "job/test"); !strings.HasPrefix(logs, "3.14159265358979") {
				t.Errorf("kubectl logs job/test: %q", tail(logs, 80))
			}
			g := groups(t, ns) // ended instances are listed until deleted
			if len(g) != 1 {
				t.Fatalf("%d instances, want 1", len(g))
			}
			c.check(t, ns, g[0])
		})
	}
}

// Deleting a running pod whose instance has ended meanwhile (here the
// market released it while the node was away; under api-evict, a release
// inside the grace period) removes the pod: the node does not wait for a
// Deleted status that an ended instance never reaches.
func TestDeleteEndedPods(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const typ = "ecs.hfc7.large" // this test's own type: it leaves the price high
	setPrice(t, typ, "0.1")
	ann := map[string]string{specs: typ, strategy: "SpotWithPriceLimit", limit: "0.2", duration: "0"}
	apply(t, ns, job("released", ann, loop, ""))
	waitJobPodRunning(t, ns, "released")
	name := pods(t, ns, "job-name=released")[0].Metadata.Name

	env.node.stop()
	setPrice(t, typ, "0.5")
	eventually(t, 30*time.Second, "the instance released", func() (bool, string) {
		for _, g := range allGroups(t, ns) {
			if g.ContainerGroupName == ns+"-"+name {
				return g.Status == "Expired", g.Status
			}
		}
		return false, "no instance"
	})
	kubectl(t, "-n", ns, "delete", "pod", name, "--wait=false")
	env.node = startNode()
	eventually(t, 15*time.Second, name+" gone", func() (bool, string) {
		out, err := kubectlErr("-n", ns, "get", "pod", name)
		return err != nil && strings.Contains(out, "NotFound"), out
	})
}

// Orphans are found by pod UID (issue 12): a pod force-deleted while the
// node is away and made again under the same name is another pod; the old
// one's instance is deleted, not kept running and billed beside the new one.
func TestOrphanBySameName(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	ann := map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}
	apply(t, ns, podManifest("twin", ann))
	waitPodRunning(t, ns, "twin")
	old := groups(t, ns)
	if len(old) != 1 {
		t.Fatalf("%d instances for one pod", len(old))
	}

	env.node.stop()
	kubectl(t, "-n", ns, "delete", "pod", "twin", "--grace-period=0", "--force")
	apply(t, ns, podManifest("twin", ann))
	env.node = startNode()
	waitPodRunning(t, ns, "twin")
	eventually(t, 30*time.Second, "only the new pod's instance live", func() (bool, string) {
		live := groups(t, ns)
		var ids []string
		for _, g := range live {
			if g.Status == "Running" || g.Status == "Pending" {
				ids = append(ids, g.ContainerGroupId+" "+g.Status)
			}
		}
		return len(ids) == 1 && !strings.HasPrefix(ids[0], old[0].ContainerGroupId), strings.Join(ids, ", ")
	})
}

// Bills per Job: spoteci bill --by job equals the sum of the Job's pods' bill
// lines to the cent, /metrics carries the same by namespace and Job, and
// each pod shows its instance, type, zone and price in its annotations and
// an InstanceCreated event.
func TestBillsPerJob(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	ann := map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}
	apply(t, ns, job("billed", ann, "echo done", "  completions: 3\n  parallelism: 3\n"))
	eventually(t, 60*time.Second, "billed Complete", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "billed")
		return strings.Contains(out, "Complete"), out
	})
	var fromItems float64
	for _, it := range allGroups(t, ns) {
		for _, l := range it.Lines {
			fromItems += l.Amount
		}
	}
	var rows []struct {
		Key       string
		Instances int
		Amount    float64
	}
	if err := json.Unmarshal([]byte(spoteci(t, "bill", "--by", "job", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rows {
		if r.Key == ns+"/billed" {
			found = true
			if r.Instances != 3 || math.Round(r.Amount*100) != math.Round(fromItems*100) || r.Amount <= 0 {
				t.Errorf("bill of the Job: %+v, want 3 instances and %.4f CNY (its pods' lines)", r, fromItems)
			}
		}
	}
	if !found {
		t.Fatalf("no row %s/billed in spoteci bill --by job: %+v", ns, rows)
	}
	body, err := eciAdmin(t).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`spoteci_bill_amount_cny{job_name="billed",namespace="%s"}`, ns); !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}

	p := pods(t, ns, "job-name=billed")[0]
	got := kubectl(t, "-n", ns, "get", "pod", p.Metadata.Name, "-o", "jsonpath={.metadata.annotations}")
	for _, want := range []string{`"k8s.aliyun.com/eci-instance-id":"eci-`, `"k8s.aliyun.com/eci-instance-spec":"ecs.c5.large"`, `"spoteci.io/zone":"cn-hangzhou-`, ` CNY/h spot"`} {
		if !strings.Contains(got, want) {
			t.Errorf("pod annotations lack %s: %s", want, got)
		}
	}
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=InstanceCreated,involvedObject.name="+p.Metadata.Name, "-o", "custom-columns=MESSAGE:.message")
	if !strings.Contains(events, "Created spot instance of ecs.c5.large in cn-hangzhou-") {
		t.Errorf("no InstanceCreated event saying where the pod runs:\n%s", events)
	}
}

// A pool that just reclaimed for want of stock is avoided by the next pod
// that has another candidate, and its InstanceCreated event says so.
func TestAvoidsReclaimedPool(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const typ, zone = "ecs.hfr7.large", "cn-hangzhou-i" // this test's own type: the market is shared
	spoteci(t, "market", "set", "--type", typ, "--price", "0.1", "--stock", "100")
	spoteci(t, "market", "set", "--type", typ, "--zone", zone, "--price", "0.05") // the cheapest pool
	ann := map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0"}
	apply(t, ns, podManifest("first", ann))
	waitPodRunning(t, ns, "first")
	if got := kubectl(t, "-n", ns, "get", "pod", "first", "-o", "jsonpath={.metadata.annotations.spoteci\\.io/zone}"); got != zone {
		t.Fatalf("first pod runs in %q, want the cheapest pool's zone %s", got, zone)
	}
	spoteci(t, "market", "set", "--type", typ, "--zone", zone, "--stock", "0")
	eventually(t, 30*time.Second, "first BidFailed", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "pod", "first", "-o", "jsonpath={.status.reason}")
		return out == "BidFailed", out
	})
	spoteci(t, "market", "set", "--type", typ, "--zone", zone, "--stock", "100") // back, and still the cheapest
	apply(t, ns, podManifest("second", ann))
	waitPodRunning(t, ns, "second")
	if got := kubectl(t, "-n", ns, "get", "pod", "second", "-o", "jsonpath={.metadata.annotations.spoteci\\.io/zone}"); got == zone || got == "" {
		t.Errorf("second pod runs in %q: want another zone than %s, which just ran short", got, zone)
	}
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=InstanceCreated,involvedObject.name=second", "-o", "custom-columns=MESSAGE:.message")
	if !strings.Contains(events, "avoided "+typ+" in "+zone+": its spot stock ran short at ") {
		t.Errorf("the second pod's InstanceCreated event does not name the avoided pool:\n%s", events)
	}
}

// A spot Job whose shape makes each reclaim wait out the Job's failure
// back-off is told so, once, on the Job; an Indexed Job with
// backoffLimitPerIndex is not.
func TestJobShapeWarning(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	ann := map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}
	apply(t, ns, job("plain", ann, "echo done", "  completions: 2\n  parallelism: 2\n"))
	apply(t, ns, job("indexed", ann, "echo done", "  completions: 2\n  parallelism: 2\n  completionMode: Indexed\n  backoffLimitPerIndex: 2\n"))
	for _, name := range []string{"plain", "indexed"} {
		eventually(t, 60*time.Second, name+" Complete", func() (bool, string) {
			out := kubectl(t, "-n", ns, "get", "job", name)
			return strings.Contains(out, "Complete"), out
		})
	}
	events := kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=SpotReclaimBackoff", "-o", "custom-columns=KIND:.involvedObject.kind,NAME:.involvedObject.name,TYPE:.type,COUNT:.count,MESSAGE:.message")
	if !regexp.MustCompile(`Job\s+plain\s+Warning\s+1\s+The pods of this Job run on spot instances`).MatchString(events) {
		t.Errorf("no single Warning SpotReclaimBackoff on Job plain:\n%s", events)
	}
	if strings.Contains(events, "indexed") {
		t.Errorf("the Indexed Job with backoffLimitPerIndex was warned:\n%s", events)
	}
}

// api-evict in the recommended Job shape (Indexed, backoffLimitPerIndex,
// podFailurePolicy Ignore on DisruptionTarget): the evicted pod ends Failed
// and goes, so the Job's tracking finalizer lets it go and the index is
// replaced, instead of the pod staying Terminating with the replacement
// waiting for it.
func TestAPIEvictInIndexedJob(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	const first, second = "ecs.r8i.large", "ecs.r8a.large"
	setPrice(t, first, "0.1")
	setPrice(t, second, "0.2")
	ann := map[string]string{specs: first + "," + second, strategy: "SpotAsPriceGo", duration: "0", release: "api-evict"}
	// sleep dies of SIGTERM (143): a container that exits 0 on it would make
	// the pod Succeeded, as a kubelet has it, and complete the index.
	apply(t, ns, job("evicted", ann, "sleep 600", indexedPerIndex+ignoreDisruption))
	waitJobPodRunning(t, ns, "evicted")
	name := pods(t, ns, "job-name=evicted")[0].Metadata.Name
	setStock(t, first, 0)
	eventually(t, 45*time.Second, "the index replaced and the evicted pod gone", func() (bool, string) {
		ps := pods(t, ns, "job-name=evicted")
		return len(ps) == 1 && ps[0].Metadata.Name != name && ps[0].Status.Phase == "Running",
			kubectl(t, "-n", ns, "get", "job,pod", "-o", "wide") + kubectl(t, "-n", ns, "get", "job", "evicted", "-o", "jsonpath={.status}")
	})
	setStock(t, first, 10000)
}
