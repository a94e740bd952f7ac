package kubeletapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// The kubelet's resource endpoints, from the instances' cgroups as the
// service samples them (DescribeMultiContainerGroupMetric): /stats/summary
// and /metrics/resource (what metrics-server reads, so kubectl top pod
// works), and /runningpods/.

// podMetric is the sample of one pod's instance.
type podMetric struct {
	pod *corev1.Pod
	rec eciapi.MetricRecord
}

// sample reads the resource use of the instances of the node's pods.
func (k *handler) sample(ctx context.Context) ([]podMetric, error) {
	pods, err := k.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	byGroup := map[string]*corev1.Pod{}
	var ids []string
	for _, p := range pods {
		id := k.instanceID(p)
		if id != "" && p.Status.Phase == corev1.PodRunning {
			byGroup[id] = p
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	resp, err := k.provider.Metrics(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the instances' metrics: %w", err)
	}
	var out []podMetric
	for _, d := range resp.MonitorDatas {
		if p := byGroup[d.ContainerGroupId]; p != nil && len(d.Records) > 0 {
			out = append(out, podMetric{pod: p, rec: d.Records[len(d.Records)-1]})
		}
	}
	return out, nil
}

// statsSummary answers GET /stats/summary.
func (k *handler) statsSummary(w http.ResponseWriter, r *http.Request) {
	pods, err := k.sample(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	now := metav1.Now()
	summary := statsapi.Summary{Node: statsapi.NodeStats{NodeName: k.nodeName, StartTime: metav1.NewTime(k.started)}}
	var nodeCPU, nodeMem, nodeWS uint64
	for _, pm := range pods {
		ps := statsapi.PodStats{
			PodRef: statsapi.PodReference{Name: pm.pod.Name, Namespace: pm.pod.Namespace, UID: string(pm.pod.UID)},
			CPU:    cpuStats(pm.rec.Timestamp, pm.rec.CPU), Memory: memoryStats(pm.rec.Timestamp, pm.rec.Memory),
		}
		if pm.pod.Status.StartTime != nil {
			ps.StartTime = *pm.pod.Status.StartTime
		}
		for _, c := range pm.rec.Containers {
			ps.Containers = append(ps.Containers, statsapi.ContainerStats{Name: c.Name, StartTime: metav1.NewTime(c.StartTime),
				CPU: cpuStats(pm.rec.Timestamp, c.CPU), Memory: memoryStats(pm.rec.Timestamp, c.Memory)})
		}
		nodeCPU += pm.rec.CPU.UsageCoreNanoSeconds
		nodeMem += pm.rec.Memory.UsageBytes
		nodeWS += pm.rec.Memory.WorkingSet
		summary.Pods = append(summary.Pods, ps)
	}
	// The node is the sum of its instances: it has no other processes.
	summary.Node.CPU = &statsapi.CPUStats{Time: now, UsageCoreNanoSeconds: &nodeCPU}
	summary.Node.Memory = &statsapi.MemoryStats{Time: now, UsageBytes: &nodeMem, WorkingSetBytes: &nodeWS}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(summary)
}

func cpuStats(t time.Time, c eciapi.CPUMetric) *statsapi.CPUStats {
	return &statsapi.CPUStats{Time: metav1.NewTime(t), UsageCoreNanoSeconds: ptr.To(c.UsageCoreNanoSeconds), UsageNanoCores: ptr.To(c.UsageNanoCores)}
}

func memoryStats(t time.Time, m eciapi.MemoryMetric) *statsapi.MemoryStats {
	return &statsapi.MemoryStats{Time: metav1.NewTime(t), UsageBytes: ptr.To(m.UsageBytes), WorkingSetBytes: ptr.To(m.WorkingSet), RSSBytes: ptr.To(m.Rss)}
}

// metricsResource answers GET /metrics/resource in the kubelet's metric
// names, which metrics-server scrapes.
func (k *handler) metricsResource(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(resourceCollector{k: k, ctx: r.Context()})
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

var (
	descNodeCPU      = prometheus.NewDesc("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	descNodeMem      = prometheus.NewDesc("node_memory_working_set_bytes", "Current working set of the node in bytes", nil, nil)
	descPodCPU       = prometheus.NewDesc("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", []string{"namespace", "pod"}, nil)
	descPodMem       = prometheus.NewDesc("pod_memory_working_set_bytes", "Current working set of the pod in bytes", []string{"namespace", "pod"}, nil)
	descContainerCPU = prometheus.NewDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds", []string{"container", "namespace", "pod"}, nil)
	descContainerMem = prometheus.NewDesc("container_memory_working_set_bytes", "Current working set of the container in bytes", []string{"container", "namespace", "pod"}, nil)
	descStart        = prometheus.NewDesc("container_start_time_seconds", "Start time of the container since unix epoch in seconds", []string{"container", "namespace", "pod"}, nil)
	descScrapeError  = prometheus.NewDesc("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// resourceCollector samples the instances at each scrape.
type resourceCollector struct {
	k   *handler
	ctx context.Context
}

func (c resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeCPU, descNodeMem, descPodCPU, descPodMem, descContainerCPU, descContainerMem, descStart, descScrapeError} {
		ch <- d
	}
}

func (c resourceCollector) Collect(ch chan<- prometheus.Metric) {
	pods, err := c.k.sample(c.ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, failed)
	var nodeCPU, nodeWS float64
	now := time.Now()
	for _, pm := range pods {
		ns, name, at := pm.pod.Namespace, pm.pod.Name, pm.rec.Timestamp
		metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
			ch <- prometheus.NewMetricWithTimestamp(at, prometheus.MustNewConstMetric(d, t, v, labels...))
		}
		metric(descPodCPU, prometheus.CounterValue, float64(pm.rec.CPU.UsageCoreNanoSeconds)/1e9, ns, name)
		metric(descPodMem, prometheus.GaugeValue, float64(pm.rec.Memory.WorkingSet), ns, name)
		for _, ct := range pm.rec.Containers {
			metric(descContainerCPU, prometheus.CounterValue, float64(ct.CPU.UsageCoreNanoSeconds)/1e9, ct.Name, ns, name)
			metric(descContainerMem, prometheus.GaugeValue, float64(ct.Memory.WorkingSet), ct.Name, ns, name)
			metric(descStart, prometheus.GaugeValue, float64(ct.StartTime.UnixNano())/1e9, ct.Name, ns, name)
		}
		nodeCPU += float64(pm.rec.CPU.UsageCoreNanoSeconds) / 1e9
		nodeWS += float64(pm.rec.Memory.WorkingSet)
	}
	ch <- prometheus.NewMetricWithTimestamp(now, prometheus.MustNewConstMetric(descNodeCPU, prometheus.CounterValue, nodeCPU))
	ch <- prometheus.NewMetricWithTimestamp(now, prometheus.MustNewConstMetric(descNodeMem, prometheus.GaugeValue, nodeWS))
}

// runningPods answers GET /runningpods/: the node's running pods, as a
// kubelet lists them.
func (k *handler) runningPods(w http.ResponseWriter, r *http.Request) {
	pods, err := k.pods.List(labels.Everything())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		running := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID}}
		for _, c := range p.Spec.Containers {
			running.Spec.Containers = append(running.Spec.Containers, corev1.Container{Name: c.Name, Image: c.Image})
		}
		list.Items = append(list.Items, running)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}
