package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/chart"
	"github.com/spoteci/spoteci/internal/plot"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// modelStack is an ECI service on the model runtime (no processes), with a
// node of its own on the e2e control plane.
type modelStack struct {
	name         string // the node's name, and its chart release's
	state        string
	server, node *process
}

// modelEnv is the model stack of the tests and benchmarks at scale. The
// first that needs it starts it; run stops it.
var modelEnv struct {
	once sync.Once
	err  error
	modelStack
}

// modelNode is the model stack's node: tainted, so that only pods that ask
// for it land there.
const modelNode = "spoteci-model"

// modelTaint is on every model stack's node besides the node's own taint,
// which the main node's webhook makes its pods tolerate: only the pods
// put on a model stack land there.
const modelTaint = "spoteci.io/e2e-model"

// onModel puts a Job's or a ReplicaSet's pods on the model stack's node.
func onModel(manifest string) string { return onStack(manifest, modelNode) }

// onStack puts a Job's or a ReplicaSet's pods on the model stack's node
// called node.
func onStack(manifest, node string) string {
	m := onNode(manifest, "", "kubernetes.io/hostname: "+node, "virtual-kubelet.io/provider")
	return strings.Replace(m, "      tolerations:\n", "      tolerations:\n      - {key: "+modelTaint+", operator: Exists, effect: NoSchedule}\n", 1)
}

func startModel(t testing.TB) {
	t.Helper()
	skipWithoutCluster(t)
	modelEnv.once.Do(func() {
		var st *modelStack
		st, modelEnv.err = bootModelStack(modelNode)
		if st != nil {
			modelEnv.modelStack = *st
		}
	})
	if modelEnv.err != nil {
		t.Fatal(modelEnv.err)
	}
}

// bootModelStack starts a model stack whose node is called name, its
// service run with serverArgs besides the e2e's time scale. On an error
// the stack is returned all the same, for stop.
func bootModelStack(name string, serverArgs ...string) (*modelStack, error) {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		return nil, err
	}
	st := &modelStack{name: name, state: dir}
	st.server = start(append([]string{"server", "--runtime", "model", "--state-dir", dir, "--time-scale", fmt.Sprint(scale), "--listen", "127.0.0.1:0"}, serverArgs...)...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := eciapi.ReadServerInfo(dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("the model service did not start:\n%s", st.server.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its own release of the chart: the identity of that node alone.
	r := chart.Release{Name: name, Namespace: name, Values: map[string]any{"externalNode": true, "nodeName": name,
		"webhook": map[string]any{"enabled": false}, "kubelet": map[string]any{"approveServingCSR": true}}}
	id, err := chart.Install(context.Background(), env.kubeconfig, r, filepath.Join(dir, "node.kubeconfig"), 24*time.Hour)
	if err != nil {
		return st, err
	}
	st.node = start(append([]string{"node", "--kubeconfig", id.Kubeconfig, "--state-dir", dir, "--node-name", name,
		"--namespace", r.Namespace, "--approve-serving-csr", "--register-with-taints", modelTaint + "=true:NoSchedule"},
		// More flags for a benchmark's experiments, as --pod-sync-workers 64.
		strings.Fields(os.Getenv("SPOTECI_E2E_MODEL_NODE_ARGS"))...)...)
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, _ := kubectlErr("get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if out == "True" {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("the model node %s is not Ready: %s\n%s", name, out, tail(st.node.logs.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopModel stops the model stack and deletes its instances, if it ran.
func stopModel() error {
	if modelEnv.server == nil {
		return nil
	}
	return modelEnv.stop()
}

// stop stops the stack's node and service, and deletes its instances.
func (st *modelStack) stop() error {
	if st.node != nil {
		st.node.stop()
	}
	if st.server != nil {
		st.server.stop()
	}
	kubectlErr("delete", "node", st.name, "--wait=false")
	defer os.RemoveAll(st.state)
	if out, err := exec.Command(env.spoteci, "down", "--state-dir", st.state).CombinedOutput(); err != nil {
		return fmt.Errorf("spoteci down of the model stack %s: %v\n%s", st.name, err, out)
	}
	return nil
}

// modelCLI runs the spoteci CLI on the model stack's service.
func modelCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(env.spoteci, append(args, "--state-dir", modelEnv.state)...).CombinedOutput()
	if err != nil {
		t.Fatalf("spoteci %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestModelJob2000 runs a 2,000-pod Job on the model runtime to its end,
// then a reclaim storm on 2,000 pods: every one BidFailed, every
// replacement Running on the other pool of its eci-use-specs.
func TestModelJob2000(t *testing.T) {
	startModel(t)
	const n = 2000
	ns := namespace(t)
	kube := benchKube(t)
	seen := watchPods(t, kube, ns)
	defer seen.stop()

	const typ, other = "ecs.c6.large", "ecs.g6.large"
	modelCLI(t, "market", "set", "--type", typ, "--price", "0.05", "--stock", "100000")
	modelCLI(t, "market", "set", "--type", other, "--price", "0.1", "--stock", "100000")
	// Each pod says hello and works for 20 s.
	manifest := onModel(job("wide", map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0",
		eciapi.ModelRunFor: "20s", eciapi.ModelLog: "hello from the model"}, "echo hello; sleep 20",
		fmt.Sprintf("  parallelism: %d\n  completions: %d\n", n, n)))
	start := time.Now()
	apply(t, ns, manifest)
	// A pod whose status the node first writes after its 20 s is Succeeded
	// without ever showing Running: count what started.
	seen.waitFor(t, "2,000 Job pods started", func() bool { return seen.countStarted("job-name=wide") == n })
	t.Logf("2,000 model pods started in %s", time.Since(start).Round(10*time.Millisecond))
	eventually(t, 5*time.Minute, "the Job Complete with 2,000 succeeded", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "job", "wide", "-o", `jsonpath={.status.succeeded} {.status.conditions[?(@.type=="Complete")].status}`)
		return out == fmt.Sprint(n)+" True", out
	})
	name := strings.TrimPrefix(strings.Fields(kubectl(t, "-n", ns, "get", "pods", "-l", "job-name=wide", "-o", "name"))[0], "pod/")
	if got := kubectl(t, "-n", ns, "logs", name); got != "hello from the model\n" {
		t.Errorf("kubectl logs %s = %q, want the model's line", name, got)
	}

	// The storm, on a ReplicaSet (a Job would wait out its failure
	// back-off): the cheaper pool loses its stock.
	rs := onModel(replicaSet("storm", n, map[string]string{specs: typ + "," + other, strategy: "SpotAsPriceGo", duration: "0"}))
	apply(t, ns, rs)
	seen.waitFor(t, "2,000 ReplicaSet pods Running", func() bool { return seen.count("app=storm", running) >= n })
	first := seen.names("app=storm")
	specOf := func(pod string) string {
		return kubectl(t, "-n", ns, "get", "pod", pod, "-o", `jsonpath={.metadata.annotations.k8s\.aliyun\.com/eci-instance-spec}`)
	}
	for name := range first {
		if got := specOf(name); got != typ {
			t.Fatalf("pod %s runs on %q, want the cheaper %s", name, got, typ)
		}
		break
	}
	modelCLI(t, "market", "set", "--type", typ, "--stock", "0")
	stormStart := time.Now()
	seen.waitFor(t, "every storm pod BidFailed", func() bool { return seen.count("app=storm", bidFailed) >= n })
	t.Logf("2,000 BidFailed %s after the stock went", time.Since(stormStart).Round(10*time.Millisecond))
	seen.waitFor(t, "2,000 replacements Running", func() bool { return seen.countExcept("app=storm", running, first) >= n })
	t.Logf("2,000 replacements Running %s after the stock went", time.Since(stormStart).Round(10*time.Millisecond))
	for name := range seen.names("app=storm") {
		if !first[name] {
			if got := specOf(name); got != other {
				t.Errorf("replacement %s runs on %q, want %s", name, got, other)
			}
			break
		}
	}
	kubectl(t, "-n", ns, "delete", "replicaset", "storm", "--wait=false")
	modelCLI(t, "market", "set", "--type", typ, "--reset")
	modelCLI(t, "market", "set", "--type", other, "--reset")
}

// BenchmarkModelJob runs the same Job of 100, 1,000 and 10,000 pods on kwok's
// fake node and on the model stack's node, one after the other on the same
// control plane, and reports each one's times, CPU, memory and apiserver
// requests, and their ratio (target at 10,000: within 1.2x of kwok). Run
// with -benchtime 1x.
func BenchmarkModelJob(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			startModel(b)
			kube := benchKube(b)
			for i := 0; i < b.N; i++ {
				ns := fmt.Sprintf("model-%d-%d", n, time.Now().UnixNano())
				kubectl(b, "create", "namespace", ns)
				seen := watchPods(b, kube, ns)
				const typ = "ecs.g7.large"
				modelCLI(b, "market", "set", "--type", typ, "--price", "0.1", "--stock", "100000")
				manifest := job("wide", map[string]string{specs: typ, strategy: "SpotAsPriceGo", duration: "0"}, "sleep 600",
					fmt.Sprintf("  parallelism: %d\n  completions: %d\n  backoffLimit: %d\n", n, n, n))
				var kwokRun *jobRun
				if kwok := startKwok(b); kwok != nil {
					bin := filepath.Join(env.bin, "kwok") + " "
					kwokRun = runJob(b, kube, seen, ns, "kwok", onNode(manifest, "wide-kwok", "type: kwok", "kwok.x-k8s.io/node"), n, 15*time.Minute,
						func(cmdline string) bool { return strings.HasPrefix(cmdline, bin) })
					kubectl(b, "-n", ns, "delete", "job", "wide-kwok", "--wait=false")
					forceDelete(b, kube, ns, "job-name=wide-kwok")
					podsGone(b, ns, "job-name=wide-kwok")
					kwok.stop()
				}
				run := runJob(b, kube, seen, ns, "model", onModel(manifest), n, 15*time.Minute,
					func(cmdline string) bool { return strings.Contains(cmdline, modelEnv.state) })
				if run.reached < n {
					b.Fatalf("model: %d of %d pods Running within 15 minutes", run.reached, n)
				}
				if kwokRun != nil && kwokRun.reached == n {
					b.ReportMetric(run.all().Seconds()/kwokRun.all().Seconds(), "ratio-model-to-kwok")
				}
				pids := env.cluster.PIDs()
				b.ReportMetric(rssMiB(modelEnv.server.cmd.Process.Pid), "MiB-service-rss")
				b.ReportMetric(rssMiB(modelEnv.node.cmd.Process.Pid), "MiB-node-rss")
				b.ReportMetric(rssMiB(pids["kube-apiserver"]), "MiB-apiserver-rss")
				b.ReportMetric(rssMiB(pids["etcd"]), "MiB-etcd-rss")
				seen.stop()
				kubectl(b, "delete", "namespace", ns, "--wait=false")
				podsGone(b, ns, "")
			}
		})
	}
}

// BenchmarkModelStorm10000 runs 10,000 pods of a ReplicaSet on the model
// node and takes their pool's stock: it reports the time from the stock's
// end to every pod BidFailed, the spread of the BidFailed (targets: all
// within 10 s of the release), and the time until every replacement runs,
// against kwok's time for 10,000 fresh pods in the same run (target 1.5x).
func BenchmarkModelStorm10000(b *testing.B) {
	startModel(b)
	const n = 10000
	kube := benchKube(b)
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("storm-%d", time.Now().UnixNano())
		kubectl(b, "create", "namespace", ns)
		seen := watchPods(b, kube, ns)
		const typ, other = "ecs.c6.large", "ecs.g6.large"
		modelCLI(b, "market", "set", "--type", typ, "--price", "0.05", "--stock", "100000")
		modelCLI(b, "market", "set", "--type", other, "--price", "0.1", "--stock", "100000")
		rs := replicaSet("storm", n, map[string]string{specs: typ + "," + other, strategy: "SpotAsPriceGo", duration: "0"})
		var kwokRunning time.Duration
		if kwok := startKwokT(b); kwok != nil {
			start := time.Now()
			apply(b, ns, onNode(strings.ReplaceAll(rs, "storm", "fresh"), "fresh", "type: kwok", "kwok.x-k8s.io/node"))
			seen.waitFor(b, "kwok pods Running", func() bool { return seen.count("app=fresh", running) == n })
			kwokRunning = time.Since(start)
			b.ReportMetric(kwokRunning.Seconds(), "s-fresh-to-all-running-kwok")
			// The floor of the BidFailed: the same 10,000 status writes,
			// straight from a client, on pods no controller replaces.
			kubectl(b, "-n", ns, "delete", "replicaset", "fresh", "--cascade=orphan")
			kwok.stop()
			floor := writeStatusFloor(b, ns, "app=fresh", 64)
			b.ReportMetric(floor.Seconds(), "s-floor-10000-bidfailed-writes")
			forceDelete(b, kube, ns, "app=fresh")
			podsGone(b, ns, "app=fresh")
		}
		apply(b, ns, onModel(rs))
		seen.waitFor(b, "10,000 model pods Running", func() bool { return seen.count("app=storm", running) >= n })
		b.ReportMetric(rssMiB(modelEnv.server.cmd.Process.Pid), "MiB-service-rss-10000")
		b.ReportMetric(rssMiB(modelEnv.node.cmd.Process.Pid), "MiB-node-rss-10000")
		first := seen.names("app=storm")
		modelCLI(b, "market", "set", "--type", typ, "--stock", "0")
		stormStart := time.Now()
		seen.waitFor(b, "every storm pod BidFailed", func() bool { return seen.count("app=storm", bidFailed) >= n })
		allFailed := time.Since(stormStart)
		b.ReportMetric(allFailed.Seconds(), "s-storm-to-all-bidfailed")
		b.ReportMetric(seen.spread(first, bidFailed).Seconds(), "s-bidfailed-spread")
		seen.waitFor(b, "10,000 replacements Running", func() bool { return seen.countExcept("app=storm", running, first) >= n })
		replaced := time.Since(stormStart) - allFailed
		b.ReportMetric(replaced.Seconds(), "s-bidfailed-to-all-replaced-running")
		if kwokRunning > 0 {
			b.ReportMetric(replaced.Seconds()/kwokRunning.Seconds(), "ratio-replaced-to-kwok-fresh")
		}
		b.Logf("storm of %d: all BidFailed %s after the stock went; replacements Running %s later (kwok, fresh: %s)",
			n, allFailed.Round(10*time.Millisecond), replaced.Round(10*time.Millisecond), kwokRunning.Round(10*time.Millisecond))
		seen.stop()
		kubectl(b, "delete", "namespace", ns, "--wait=false")
		podsGone(b, ns, "")
		modelCLI(b, "market", "set", "--type", typ, "--reset")
		modelCLI(b, "market", "set", "--type", other, "--reset")
	}
}

// spread is the time from the first to the last of names to get to what.
func (pt *podTimes) spread(names map[string]bool, what string) time.Duration {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	m := pt.running
	if what == bidFailed {
		m = pt.failed
	}
	var first, last time.Time
	for name := range names {
		t, ok := m[name]
		if !ok {
			continue
		}
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(first)
}

// countStarted counts the pods of selector seen Running or ended.
func (pt *podTimes) countStarted(selector string) int {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	n := 0
	for name := range pt.labels {
		_, ran := pt.running[name]
		_, ended := pt.ended[name]
		if (ran || ended) && pt.matches(name, selector) {
			n++
		}
	}
	return n
}

// TestModelSeeds runs the guides' Jobs, as the guides print them, on the
// model runtime (placed on its node): each gets the instance its
// annotations ask for, its pod runs, and the first example's is reclaimed
// when the price passes its limit after the protection hour.
func TestModelSeeds(t *testing.T) {
	startModel(t)
	modelCLI(t, "market", "set", "--type", "ecs.c6.large", "--reset")
	for _, c := range guideExamples {
		t.Run(c.name, func(t *testing.T) {
			ns := namespace(t)
			apply(t, ns, onModel(c.manifest))
			eventually(t, 60*time.Second, "the pod Running", func() (bool, string) {
				ps := pods(t, ns, "job-name=test")
				return len(ps) == 1 && ps[0].Status.Phase == "Running", kubectl(t, "-n", ns, "get", "pod")
			})
			g := groupsOf(t, modelEnv.state, ns)
			if len(g) != 1 {
				t.Fatalf("%d instances, want 1", len(g))
			}
			c.check(t, ns, g[0])
			if c.name != "1-type-and-limit" {
				return
			}
			modelCLI(t, "market", "set", "--type", "ecs.c6.large", "--price", "0.3")
			defer modelCLI(t, "market", "set", "--type", "ecs.c6.large", "--reset")
			eventually(t, 60*time.Second, "BidFailed after the protection hour", func() (bool, string) {
				out := kubectl(t, "-n", ns, "get", "pod")
				return strings.Contains(out, "BidFailed"), out
			})
		})
	}
}

// The curve of time to all Running against the Job's size, for every peer:
// each Job benchmark adds its points to bin/plots/elastic-curve.json (kept
// across runs, a point replaced by the newer run) and draws
// bin/plots/elastic-curve.svg from it.
var curvePeers = map[string]string{
	"kwok":    "kwok (a fake node: no work)",
	"kubelet": "kubelet + containerd (CRI)",
	"spoteci": "spoteci, real containers",
	"model":   "spoteci, model runtime",
}

func recordCurve(b testing.TB, peer string, n int, seconds float64) {
	dir := filepath.Join(env.bin, "plots")
	path := filepath.Join(dir, "elastic-curve.json")
	points := map[string]map[int]float64{}
	if data, err := os.ReadFile(path); err == nil {
		json.Unmarshal(data, &points)
	}
	if points[peer] == nil {
		points[peer] = map[int]float64{}
	}
	points[peer][n] = seconds
	data, _ := json.MarshalIndent(points, "", "  ")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Logf("the curve: %v", err)
		return
	}
	chart := plot.LogLog{Title: "Time from a Job's creation to all its pods Running (one control plane, 2 cores)",
		XLabel: "pods in the Job", YLabel: "seconds"}
	for _, p := range slices.Sorted(maps.Keys(points)) {
		c := plot.Curve{Name: cmp.Or(curvePeers[p], p)}
		for _, k := range slices.Sorted(maps.Keys(points[p])) {
			c.Points = append(c.Points, plot.XY{X: float64(k), Y: points[p][k]})
		}
		chart.Curves = append(chart.Curves, c)
	}
	var svg bytes.Buffer
	if err := chart.SVG(&svg); err != nil {
		b.Logf("the curve: %v", err)
		return
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Logf("the curve: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "elastic-curve.svg"), svg.Bytes(), 0o644); err != nil {
		b.Logf("the curve: %v", err)
	}
}

// writeStatusFloor fails every pod of selector in ns with BidFailed, as the
// node does at a release, from workers of a client without rate limits
// whose requests the apiserver's priority and fairness exempts (the
// admin's): the fastest this control plane takes those writes. It returns
// the time from the first write to the last.
func writeStatusFloor(b testing.TB, ns, selector string, workers int) time.Duration {
	kube := kubeClient(b, -1, 0) // no client-side limit
	ctx := context.Background()
	start := time.Now()
	total, failed := eachPod(b, kube, ns, selector, workers, func(pod *corev1.Pod) error {
		pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "BidFailed"
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
			Status: corev1.ConditionTrue, Reason: "BidFailed", LastTransitionTime: metav1.Now()})
		_, err := kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	took := time.Since(start)
	b.Logf("floor: %d status writes by %d workers in %s (%d failed)", total, workers, took.Round(10*time.Millisecond), failed)
	return took
}

// forceDelete deletes the pods of selector in ns without grace, from
// workers of its own: a fake node's pods, which no container holds (and no
// kwok may be left to delete), gone before the next peer's run instead of at
// the garbage collector's pace. The apiserver's DeleteCollection deletes
// one pod at a time and gives up at its request timeout, a few thousand in.
func forceDelete(b testing.TB, kube kubernetes.Interface, ns, selector string) {
	zero := int64(0)
	total, failed := eachPod(b, kube, ns, selector, 32, func(pod *corev1.Pod) error {
		err := kube.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if failed > 0 {
		b.Logf("deleting the pods of %s: %d of %d deletes failed", selector, failed, total)
	}
}

// eachPod lists the pods of selector in ns and calls do on each from
// workers goroutines; it returns how many pods there were and how many
// calls failed (a failed listing is logged, as none).
func eachPod(b testing.TB, kube kubernetes.Interface, ns, selector string, workers int, do func(*corev1.Pod) error) (total int, failed int64) {
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		b.Logf("listing the pods of %s: %v", selector, err)
		return 0, 0
	}
	todo := make(chan *corev1.Pod)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range workers {
		wg.Go(func() {
			for pod := range todo {
				if do(pod) != nil {
					failures.Add(1)
				}
			}
		})
	}
	for i := range pods.Items {
		todo <- &pods.Items[i]
	}
	close(todo)
	wg.Wait()
	return len(pods.Items), failures.Load()
}
