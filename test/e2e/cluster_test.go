package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spoteci/spoteci/internal/chart"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// The node runs as the chart's ServiceAccount (issue 11), which may do what
// the node does and nothing more; every other test proves it is enough.
func TestNodeIdentity(t *testing.T) {
	skipWithoutCluster(t)
	r := chart.Local(nodeName)
	sa := "system:serviceaccount:" + r.Namespace + ":spoteci"
	for _, c := range []struct {
		verb, what, subresource string
		want                    string
	}{
		{"update", "nodes/" + nodeName, "status", "yes"},
		{"update", "nodes/" + nodeName, "", "yes"},
		{"update", "nodes/" + "another-node", "", "no"},
		{"delete", "nodes/" + nodeName, "", "no"},
		{"list", "nodes", "", "no"},
		{"watch", "pods", "", "yes"},
		{"create", "pods", "", "no"},
		{"update", "pods", "", "no"},
		{"patch", "pods", "", "no"},
		{"create", "pods", "eviction", "yes"},
		{"update", "pods", "status", "yes"},
		{"get", "secrets", "", "yes"},
		{"list", "secrets", "", "no"},
		{"watch", "configmaps/kube-root-ca.crt", "", "yes"},
		{"list", "configmaps", "", "no"},
		{"create", "deployments.apps", "", "no"},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/spoteci-eci-label", "", "yes"},
		{"update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/another", "", "no"},
		{"create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", "", "no"},
		{"create", "clusterrolebindings.rbac.authorization.k8s.io", "", "no"},
	} {
		args := []string{"auth", "can-i", c.verb, c.what, "--as", sa, "-A"}
		if c.subresource != "" {
			args = append(args, "--subresource", c.subresource)
		}
		out, _ := kubectlErr(args...)
		if got := strings.TrimSpace(out); got != c.want {
			t.Errorf("can the node %s %s (%s)? %s, want %s", c.verb, c.what, c.subresource, got, c.want)
		}
	}
	// And it is who acts: the Node's status is written by it.
	eventually(t, 10*time.Second, "the node's Lease held by its ServiceAccount's replica", func() (bool, string) {
		out := kubectl(t, "-n", r.Namespace, "get", "lease", leaderLease, "-o", "jsonpath={.spec.holderIdentity}")
		return out == "e2e-node", out
	})
}

// Two replicas of the node (issue 11): the leader is killed with kill -9;
// the standby takes over within the lease duration, syncs a pod made
// meanwhile, and makes no second instance of any pod.
func TestLeaderFailover(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	standby := startReplica("e2e-standby", "--leader-elect-lease-duration=6s", "--leader-elect-renew-deadline=4s", "--leader-elect-retry-period=1s")
	defer func() {
		// Give the Lease back to the usual replica for the tests after.
		standby.stop()
		if env.node.cmd.ProcessState != nil {
			env.node = startNode()
		}
	}()
	eventually(t, 20*time.Second, "the second replica stands by", func() (bool, string) {
		return strings.Contains(standby.logs.String(), "standing by"), tail(standby.logs.String(), 2000)
	})
	ann := map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}
	for _, name := range []string{"before-1", "before-2"} {
		apply(t, ns, podManifest(name, ann))
	}
	for _, name := range []string{"before-1", "before-2"} {
		waitPodRunning(t, ns, name)
	}
	env.node.cmd.Process.Signal(syscall.SIGKILL)
	env.node.cmd.Wait()
	killed := time.Now()
	apply(t, ns, podManifest("during", ann))
	eventually(t, 30*time.Second, "the standby leads", func() (bool, string) {
		out := kubectl(t, "-n", chart.Local(nodeName).Namespace, "get", "lease", leaderLease, "-o", "jsonpath={.spec.holderIdentity}")
		return out == "e2e-standby", out
	})
	took := time.Since(killed)
	t.Logf("the standby leads %.1fs after the kill", took.Seconds())
	if limit := 6*time.Second + 5*time.Second; took > limit {
		t.Errorf("takeover took %v, want within the lease duration + 5 s (%v)", took, limit)
	}
	waitPodRunning(t, ns, "during")
	for _, name := range []string{"before-1", "before-2"} {
		waitPodRunning(t, ns, name)
	}
	time.Sleep(2 * time.Second) // a poll or two of the new leader
	perPod := map[string]int{}
	for _, g := range groups(t, ns) {
		perPod[g.ContainerGroupName]++
	}
	if len(perPod) != 3 {
		t.Errorf("instances of %d pods, want 3: %v", len(perPod), perPod)
	}
	for name, n := range perPod {
		if n != 1 {
			t.Errorf("%s has %d live instances, want 1", name, n)
		}
	}
	env.node = standby // stopped by the deferred call, which starts the usual replica again
}

// BenchmarkLeaderFailover runs two replicas of the node with the chart's
// election terms (lease 15 s, renew deadline 10 s, retry 1 s), kills the
// leader with kill -9 and creates a pod at once, then reports the seconds
// until the standby holds the Lease, until it has synced the pod (made its
// instance: target lease duration + 5 s = 20 s) and until the pod runs,
// and the first two as ratios to the lease duration, the floor no election
// can beat once the leader is silent.
func BenchmarkLeaderFailover(b *testing.B) {
	skipWithoutCluster(b)
	const lease = 15 * time.Second
	ns := fmt.Sprintf("failover-%d", time.Now().UnixNano()) // a benchmark function runs more than once
	kubectl(b, "create", "namespace", ns)
	defer kubectlErr("delete", "namespace", ns, "--wait=false")
	env.node.stop()
	defer func() { env.node = startNode() }()
	holder := func() string {
		out, _ := kubectlErr("-n", chart.Local(nodeName).Namespace, "get", "lease", leaderLease, "-o", "jsonpath={.spec.holderIdentity}")
		return out
	}
	ann := map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}
	var toLead, toSync, toRun time.Duration
	for i := range b.N {
		replicas := map[string]*process{}
		for _, id := range []string{fmt.Sprintf("bench-a-%d", i), fmt.Sprintf("bench-b-%d", i)} {
			replicas[id] = startReplica(id)
		}
		var leader string
		eventually(b, time.Minute, "a replica leads", func() (bool, string) {
			leader = holder()
			return replicas[leader] != nil, leader
		})
		time.Sleep(time.Duration(i) * 700 * time.Millisecond) // kill at different points of the renewal cycle
		replicas[leader].cmd.Process.Signal(syscall.SIGKILL)
		replicas[leader].cmd.Wait()
		killed := time.Now()
		name := fmt.Sprintf("after-kill-%d", i)
		apply(b, ns, podManifest(name, ann))
		eventually(b, 2*lease, "the standby leads", func() (bool, string) {
			h := holder()
			return h != leader && replicas[h] != nil, h
		})
		lead := time.Since(killed)
		eventually(b, 2*lease, name+" synced", func() (bool, string) {
			out := kubectl(b, "-n", ns, "get", "pod", name, "-o", `jsonpath={.metadata.annotations.k8s\.aliyun\.com/eci-instance-id}`)
			return out != "", out
		})
		sync := time.Since(killed)
		eventually(b, 2*lease, name+" Running", func() (bool, string) {
			out := kubectl(b, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}")
			return out == "Running", out
		})
		run := time.Since(killed)
		b.Logf("kill -9 of %s: new leader %.1fs, the pod made meanwhile synced %.1fs, Running %.1fs", leader, lead.Seconds(), sync.Seconds(), run.Seconds())
		toLead, toSync, toRun = toLead+lead, toSync+sync, toRun+run
		for _, p := range replicas {
			if p.cmd.ProcessState == nil {
				p.stop()
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(toLead.Seconds()/n, "s-to-new-leader")
	b.ReportMetric(toSync.Seconds()/n, "s-to-pod-synced")
	b.ReportMetric(toRun.Seconds()/n, "s-to-pod-running")
	b.ReportMetric(toLead.Seconds()/n/lease.Seconds(), "leader-per-lease")
	b.ReportMetric(toSync.Seconds()/n/lease.Seconds(), "synced-per-lease")
}

// A second node for one zone (issue 11), beside the region's: it is
// labelled with its zone and region, offers what that zone sells (less
// than the region), and keeps its taint, so an unlabelled pod that selects
// it waits unscheduled while a pod labelled alibabacloud.com/eci runs on it,
// in its zone.
func TestZoneNode(t *testing.T) {
	skipWithoutCluster(t)
	ns := namespace(t)
	ctx := context.Background()
	pools, err := eciSDK(t).DescribeAvailableResource(ctx, wire.DescribeAvailableResourceRequest{DestinationResource: "InstanceType", SpotStrategy: "SpotAsPriceGo"})
	if err != nil {
		t.Fatal(err)
	}
	zone := ""
	for _, z := range pools.AvailableZones.AvailableZone {
		for _, r := range z.AvailableResources.AvailableResource {
			for _, typ := range r.SupportedResources.SupportedResource {
				if typ.Value == "ecs.c5.large" && zone == "" {
					zone = z.ZoneId
				}
			}
		}
	}
	if zone == "" {
		t.Fatal("no zone sells ecs.c5.large")
	}
	// Its own release of the chart: the identity of that node alone.
	r := chart.Release{Name: "spoteci-zones", Namespace: "spoteci-zones", Values: map[string]any{"externalNode": true, "zones": []any{zone},
		"webhook": map[string]any{"enabled": false}, "kubelet": map[string]any{"approveServingCSR": true}}}
	id, err := chart.Install(ctx, env.kubeconfig, r, filepath.Join(t.TempDir(), "zones.kubeconfig"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	zoneNode := nodeName + "-" + zone
	p := start("node", "--kubeconfig", id.Kubeconfig, "--state-dir", env.state, "--node-name", zoneNode, "--zone", zone,
		"--namespace", r.Namespace, "--approve-serving-csr", "--leader-elect", "--leader-elect-identity", "zone-node")
	defer func() {
		if t.Failed() {
			t.Logf("zone node log:\n%s", tail(p.logs.String(), 3000))
		}
		p.stop()
		kubectlErr("delete", "node", zoneNode, "--wait=false")
	}()
	eventually(t, 30*time.Second, "the zone's node Ready", func() (bool, string) {
		out, _ := kubectlErr("get", "node", zoneNode, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status} {.metadata.labels.topology\.kubernetes\.io/zone} {.metadata.labels.topology\.kubernetes\.io/region}`)
		return out == "True "+zone+" cn-hangzhou", out
	})
	cpu := func(node string) int64 {
		q, err := resource.ParseQuantity(kubectl(t, "get", "node", node, "-o", "jsonpath={.status.capacity.cpu}"))
		if err != nil {
			t.Fatal(err)
		}
		return q.Value()
	}
	if z, region := cpu(zoneNode), cpu(nodeName); z >= region || z < 40000 {
		t.Errorf("cpu capacity: zone %d, region %d; want the zone's below the region's and at least the floor of 40000", z, region)
	}

	inZone := func(name string, labelled bool) string {
		m := strings.Replace(podManifest(name, map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}), "spec:\n",
			"spec:\n  nodeSelector:\n    topology.kubernetes.io/zone: "+zone+"\n", 1)
		if labelled {
			m = strings.Replace(m, "metadata:\n", "metadata:\n  labels:\n    alibabacloud.com/eci: \"true\"\n", 1)
		}
		return m
	}
	apply(t, ns, inZone("unlabelled", false))
	apply(t, ns, inZone("labelled", true))
	waitPodRunning(t, ns, "labelled")
	if got := kubectl(t, "-n", ns, "get", "pod", "labelled", "-o", "jsonpath={.spec.nodeName} {.metadata.annotations.spoteci\\.io/zone}"); got != zoneNode+" "+zone {
		t.Errorf("the labelled pod's node and instance zone: %q, want %s %s", got, zoneNode, zone)
	}
	eventually(t, 30*time.Second, "the unlabelled pod refused by the taint", func() (bool, string) {
		out := kubectl(t, "-n", ns, "get", "events", "--field-selector", "involvedObject.name=unlabelled,reason=FailedScheduling", "-o", "jsonpath={.items[*].message}")
		return strings.Contains(out, "untolerated taint"), out
	})
	if got := kubectl(t, "-n", ns, "get", "pod", "unlabelled", "-o", "jsonpath={.status.phase} {.spec.nodeName}"); got != "Pending " {
		t.Errorf("the unlabelled pod: %q, want Pending and unscheduled", got)
	}
}

// The chart as a cluster's admin installs it (issue 11): rendered by Helm's
// libraries and applied, its Deployment's two replicas run (here as
// instances on the test's own virtual node, from the image spoteci builds
// of itself) under the chart's ServiceAccount with its in-cluster token;
// they elect a leader, which joins as a second node, gets its serving
// certificate and runs a pod that `kubectl logs` reads through it. The
// leader's process is killed with kill -9: the standby takes over within
// the lease duration, runs a pod made meanwhile and duplicates none.
func TestChartInCluster(t *testing.T) {
	skipWithoutCluster(t)
	if _, err := os.Stat(filepath.Join(env.images, "spoteci.tar")); err != nil {
		t.Skip("bin/images/spoteci.tar is missing: build the images with `make images`")
	}
	ctx := context.Background()
	info, err := eciapi.ReadServerInfo(env.state)
	if err != nil {
		t.Fatal(err)
	}
	const node = "in-cluster-node"
	r := chart.Release{Name: "incluster", Namespace: "spoteci-incluster", Values: map[string]any{
		"nodeName": node,
		"eci": map[string]any{"endpoint": "http://" + eciForward, "region": "cn-hangzhou",
			"accessKeyId": info.AccessKeyId, "accessKeySecret": info.AccessKeySecret},
		// The apiserver here reaches no Service (there is no kube-proxy);
		// the webhook is tested with the node outside the cluster.
		"webhook":        map[string]any{"enabled": false},
		"kubelet":        map[string]any{"approveServingCSR": true},
		"leaderElection": map[string]any{"leaseDuration": "6s", "renewDeadline": "4s", "retryPeriod": "1s"},
	}}
	objs, err := chart.Render(r)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := chart.Apply(ctx, admin, r.Namespace, objs); err != nil {
		t.Fatal(err)
	}
	ns := namespace(t)
	defer func() {
		if t.Failed() {
			out, _ := kubectlErr("-n", r.Namespace, "get", "pods,events,lease", "-o", "wide")
			t.Logf("release namespace:\n%s", out)
			for _, p := range strings.Fields(kubectl(t, "-n", r.Namespace, "get", "pods", "-o", "name")) {
				logs, _ := kubectlErr("-n", r.Namespace, "logs", p, "--tail", "40")
				prev, _ := kubectlErr("-n", r.Namespace, "logs", p, "--previous", "--tail", "40")
				last, _ := kubectlErr("-n", r.Namespace, "get", p, "-o", "jsonpath={.status.containerStatuses[0].lastState}")
				t.Logf("%s:\n%s\nprevious:\n%s\nlast state: %s", p, logs, prev, last)
			}
		}
		kubectlErr("-n", ns, "delete", "pods", "--all", "--wait=true", "--timeout=60s") // their node deletes their instances
		kubectlErr("-n", r.Namespace, "delete", "deployment", node, "--wait=true", "--timeout=60s")
		kubectlErr("delete", "node", node, "--wait=false")
		kubectlErr("delete", "namespace", r.Namespace, "--wait=false")
	}()
	replicas := func() []string {
		out := kubectl(t, "-n", r.Namespace, "get", "pods", "-l", "spoteci.io/node="+node, "-o", `jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{" "}{end}`)
		return strings.Fields(out)
	}
	eventually(t, 90*time.Second, "two replicas Running", func() (bool, string) {
		got := replicas()
		return len(got) == 2, kubectl(t, "-n", r.Namespace, "get", "pods", "-o", "wide")
	})
	holder := func() string {
		out, _ := kubectlErr("-n", r.Namespace, "get", "lease", "spoteci-"+node, "-o", "jsonpath={.spec.holderIdentity}")
		return out
	}
	eventually(t, 60*time.Second, "the in-cluster node Ready", func() (bool, string) {
		out, _ := kubectlErr("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True", out + " " + holder()
	})
	leader := holder()
	if !slices.Contains(replicas(), leader) {
		t.Fatalf("the Lease is held by %q, not a replica of %v", leader, replicas())
	}
	onNode := func(name string) string {
		return strings.Replace(podManifest(name, map[string]string{specs: "ecs.c5.large", strategy: "SpotAsPriceGo"}), "spec:\n",
			"spec:\n  nodeSelector:\n    kubernetes.io/hostname: "+node+"\n  tolerations:\n  - {key: virtual-kubelet.io/provider, operator: Exists}\n", 1)
	}
	apply(t, ns, onNode("first"))
	waitPodRunning(t, ns, "first")
	eventually(t, 30*time.Second, "kubectl logs through the in-cluster node", func() (bool, string) {
		out, err := kubectlErr("-n", ns, "logs", "first")
		return err == nil && strings.Contains(out, "started"), out
	})

	pid := processWithArg(t, "--leader-elect-identity="+leader)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	apply(t, ns, onNode("second"))
	eventually(t, 30*time.Second, "the standby leads", func() (bool, string) {
		h := holder()
		return h != leader && h != "", h
	})
	took := time.Since(killed)
	t.Logf("the standby %s leads %.1fs after the kill of %s", holder(), took.Seconds(), leader)
	if limit := 6*time.Second + 5*time.Second; took > limit {
		t.Errorf("takeover took %v, want within the lease duration + 5 s (%v)", took, limit)
	}
	waitPodRunning(t, ns, "second")
	waitPodRunning(t, ns, "first")
	perPod := map[string]int{}
	for _, g := range groups(t, ns) {
		perPod[g.ContainerGroupName]++
	}
	if len(perPod) != 2 || perPod[ns+"-first"] != 1 || perPod[ns+"-second"] != 1 {
		t.Errorf("live instances per pod: %v, want one each of first and second", perPod)
	}
}

// processWithArg is the process of this machine whose command line has arg.
func processWithArg(t *testing.T, arg string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(data), "\x00"), arg) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	t.Fatalf("no process with %s", arg)
	return 0
}
