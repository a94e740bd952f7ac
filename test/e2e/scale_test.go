package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/chart"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// modelEnv is a second ECI service, on the model runtime (no processes),
// with a node of its own on the e2e control plane: the stack of the tests
// and benchmarks at scale. The first that needs it starts it; run stops it.
var modelEnv struct {
	once         sync.Once
	err          error
	state        string
	server, node *process
}

// modelNode is the model stack's node: tainted, so that only pods that ask
// for it land there.
const modelNode = "spoteci-model"

// onModel puts a pod template (indented for a Job's or a ReplicaSet's) on
// the model stack's node.
func onModel(manifest string) string {
	return strings.Replace(manifest, "      containers:", "      nodeSelector: {kubernetes.io/hostname: "+modelNode+"}\n"+
		"      tolerations:\n      - {key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}\n      containers:", 1)
}

// onKwok puts a pod template on kwok's fake node.
func onKwok(manifest string) string {
	return strings.Replace(manifest, "      containers:", "      nodeSelector: {type: kwok}\n"+
		"      tolerations:\n      - {key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}\n      containers:", 1)
}

func startModel(t testing.TB) {
	t.Helper()
	skipWithoutCluster(t)
	modelEnv.once.Do(func() { modelEnv.err = bootModel() })
	if modelEnv.err != nil {
		t.Fatal(modelEnv.err)
	}
}

func bootModel() error {
	dir, err := os.MkdirTemp("", "spoteci-model")
	if err != nil {
		return err
	}
	modelEnv.state = dir
	modelEnv.server = start("server", "--runtime", "model", "--state-dir", dir, "--time-scale", fmt.Sprint(scale), "--listen", "127.0.0.1:0")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := eciapi.ReadServerInfo(dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the model service did not start:\n%s", modelEnv.server.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its own release of the chart: the identity of that node alone.
	r := chart.Release{Name: "spoteci-model", Namespace: "spoteci-model", Values: map[string]any{"externalNode": true, "nodeName": modelNode,
		"webhook": map[string]any{"enabled": false}, "kubelet": map[string]any{"approveServingCSR": true}}}
	id, err := chart.Install(context.Background(), env.kubeconfig, r, filepath.Join(dir, "node.kubeconfig"), 24*time.Hour)
	if err != nil {
		return err
	}
	modelEnv.node = start("node", "--kubeconfig", id.Kubeconfig, "--state-dir", dir, "--node-name", modelNode,
		"--namespace", r.Namespace, "--approve-serving-csr")
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, _ := kubectlErr("get", "node", modelNode, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if out == "True" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the model node is not Ready: %s\n%s", out, tail(modelEnv.node.logs.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopModel stops the model stack and deletes its instances, if it ran.
func stopModel() error {
	if modelEnv.server == nil {
		return nil
	}
	if modelEnv.node != nil {
		modelEnv.node.stop()
	}
	modelEnv.server.stop()
	kubectlErr("delete", "node", modelNode, "--wait=false")
	defer os.RemoveAll(modelEnv.state)
	if out, err := exec.Command(env.spoteci, "down", "--state-dir", modelEnv.state).CombinedOutput(); err != nil {
		return fmt.Errorf("spoteci down of the model stack: %v\n%s", err, out)
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
// control plane, and reports the time to all Running of each and their
// ratio (target at 10,000: within 1.2x of kwok). Run with -benchtime 1x.
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
					fmt.Sprintf("  parallelism: %d\n  completions: %d\n", n, n))
				var kwokRunning time.Duration
				if kwok := startKwokT(b); kwok != nil {
					start := time.Now()
					apply(b, ns, strings.Replace(onKwok(manifest), "name: wide", "name: wide-kwok", 1))
					seen.waitFor(b, "kwok Job pods Running", func() bool { return seen.count("job-name=wide-kwok", running) == n })
					kwokRunning = time.Since(start)
					b.ReportMetric(kwokRunning.Seconds(), "s-to-all-running-kwok")
					kubectl(b, "-n", ns, "delete", "job", "wide-kwok", "--wait=false")
					waitGone(b, ns, "job-name=wide-kwok")
					kwok.stop()
				}
				serviceCPU, nodeCPU := cpuSeconds(modelEnv.server.cmd.Process.Pid), cpuSeconds(modelEnv.node.cmd.Process.Pid)
				start := time.Now()
				apply(b, ns, onModel(manifest))
				seen.waitFor(b, "model Job pods Running", func() bool { return seen.count("job-name=wide", running) == n })
				allRunning := time.Since(start)
				b.ReportMetric(allRunning.Seconds(), "s-to-all-running")
				if kwokRunning > 0 {
					b.ReportMetric(allRunning.Seconds()/kwokRunning.Seconds(), "ratio-to-kwok")
				}
				b.ReportMetric(cpuSeconds(modelEnv.server.cmd.Process.Pid)-serviceCPU, "s-cpu-service")
				b.ReportMetric(cpuSeconds(modelEnv.node.cmd.Process.Pid)-nodeCPU, "s-cpu-node")
				b.ReportMetric(rssMiB(modelEnv.server.cmd.Process.Pid), "MiB-service-rss")
				b.ReportMetric(rssMiB(modelEnv.node.cmd.Process.Pid), "MiB-node-rss")
				b.ReportMetric(rssMiB(controlPlanePid(b, "kube-apiserver")), "MiB-apiserver-rss")
				b.ReportMetric(rssMiB(controlPlanePid(b, "etcd")), "MiB-etcd-rss")
				b.Logf("%d pods: kwok %s, model %s", n, kwokRunning.Round(10*time.Millisecond), allRunning.Round(10*time.Millisecond))
				seen.stop()
				kubectl(b, "delete", "namespace", ns, "--wait=false")
				waitGone(b, ns, "job-name=wide")
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
			apply(b, ns, strings.Replace(onKwok(rs), "storm", "fresh", -1))
			seen.waitFor(b, "kwok pods Running", func() bool { return seen.count("app=fresh", running) == n })
			kwokRunning = time.Since(start)
			b.ReportMetric(kwokRunning.Seconds(), "s-fresh-to-all-running-kwok")
			kubectl(b, "-n", ns, "delete", "replicaset", "fresh", "--wait=false")
			waitGone(b, ns, "app=fresh")
			kwok.stop()
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
		waitGone(b, ns, "app=storm")
		modelCLI(b, "market", "set", "--type", typ, "--reset")
		modelCLI(b, "market", "set", "--type", other, "--reset")
	}
}

// waitGone waits until the pods of selector in ns are gone.
func waitGone(b testing.TB, ns, selector string) {
	eventually(b, 10*time.Minute, "the pods of "+selector+" gone", func() (bool, string) {
		out, _ := kubectlErr("-n", ns, "get", "pods", "-l", selector, "-o", "name", "--chunk-size=5000")
		return strings.TrimSpace(out) == "", fmt.Sprint(strings.Count(out, "\n"), " left")
	})
}

// controlPlanePid finds the process of the e2e control plane's component
// (kube-apiserver, etcd), by its binary under bin/.
func controlPlanePid(b testing.TB, name string) int {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		cmd, _ := os.ReadFile(path)
		if argv0, _, _ := strings.Cut(string(cmd), "\x00"); argv0 == filepath.Join(env.bin, name) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			return pid
		}
	}
	b.Logf("no %s process found", name)
	return 0
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
