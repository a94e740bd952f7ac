package nodecontroller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// marketProvider is a Provider of pools alone: the node controller asks
// nothing else (any other call panics). Err, when set, is every Pools
// call's answer.
type marketProvider struct {
	provider.Provider
	region string
	pools  []provider.Pool
	err    error
	zones  []string // the zone of each Pools call
}

func (p *marketProvider) Pools(_ context.Context, zone string) ([]provider.Pool, error) {
	p.zones = append(p.zones, zone)
	return p.pools, p.err
}

func (p *marketProvider) Region() string { return p.region }

func list(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
		corev1.ResourcePods: resource.MustParse("20000"), corev1.ResourceEphemeralStorage: resource.MustParse("600000Gi")} // 30 GiB a pod
}

func sameResources(got, want corev1.ResourceList) error {
	for name, w := range want {
		if g := got[name]; g.Cmp(w) != 0 {
			return fmt.Errorf("%s %s, want %s", name, g.String(), w.String())
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%v, want %v", got, want)
	}
	return nil
}

// The capacity is the spot stock's vCPU and memory, floored where the
// market has little or says nothing, and kept where the scheduler's int64
// scores do not overflow; pods are a fixed number.
func TestCapacityOf(t *testing.T) {
	small := func(stock int) provider.Pool {
		return provider.Pool{Zone: "cn-hangzhou-i", InstanceType: "ecs.c5.large", VCPU: 2, MemoryGiB: 4, Stock: stock}
	}
	big := func(stock int) provider.Pool {
		return provider.Pool{Zone: "cn-hangzhou-j", InstanceType: "ecs.r6.4xlarge", VCPU: 16, MemoryGiB: 128, Stock: stock}
	}
	cases := map[string]struct {
		pools []provider.Pool
		want  corev1.ResourceList
	}{
		"nothing sold":                          {nil, list("40000", "160000Gi")},
		"no numbers (the real cloud)":           {[]provider.Pool{small(provider.StockUnknown), big(provider.StockUnknown)}, list("40000", "160000Gi")},
		"every stock set to 0":                  {[]provider.Pool{small(0), big(0)}, list("40000", "160000Gi")},
		"stock above the floor":                 {[]provider.Pool{small(30000), big(2000)}, list("92000", "376000Gi")},
		"vCPU above, memory under the floor":    {[]provider.Pool{small(25000)}, list("50000", "160000Gi")},
		"unknown pools count for nothing":       {[]provider.Pool{small(30000), big(provider.StockUnknown)}, list("60000", "160000Gi")},
		"the default market: memory at ceiling": {[]provider.Pool{big(10000), big(10000), {VCPU: 104, MemoryGiB: 768, Stock: 1_000_000}}, list("104320000", "64Pi")},
		"more than int64 holds":                 {[]provider.Pool{{VCPU: 104, MemoryGiB: 768, Stock: math.MaxInt}}, list("1T", "64Pi")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := capacityOf(c.pools)
			if err := sameResources(got, c.want); err != nil {
				t.Error(err)
			}
			// What the scheduler scores with must not overflow.
			if cpu, mem := got.Cpu().MilliValue(), got.Memory().Value(); cpu > math.MaxInt64/100 || mem > math.MaxInt64/100 {
				t.Errorf("%d millicores, %d bytes: past MaxInt64/100", cpu, mem)
			}
		})
	}
}

// A zone's node is labelled with its zone and region, and asks the market
// about its zone alone; a region's node has no zone label and asks about
// every zone.
func TestZoneLabelsAndCapacity(t *testing.T) {
	ctx := context.Background()
	market := &marketProvider{region: "cn-hangzhou", pools: []provider.Pool{{Zone: "cn-hangzhou-i", VCPU: 2, MemoryGiB: 8, Stock: 50000}}}
	for _, zone := range []string{"cn-hangzhou-i", ""} {
		kube := fake.NewClientset()
		h := &Controller{name: "vk-" + zone, kube: kube, provider: market, zone: zone}
		if err := h.Register(ctx, 0); err != nil {
			t.Fatal(err)
		}
		node, err := kube.CoreV1().Nodes().Get(ctx, h.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := node.Labels[corev1.LabelTopologyZone]; got != zone || ok != (zone != "") {
			t.Errorf("zone %q: label %s=%q (set: %v)", zone, corev1.LabelTopologyZone, got, ok)
		}
		if got := node.Labels[corev1.LabelTopologyRegion]; got != "cn-hangzhou" {
			t.Errorf("zone %q: label %s=%q, want cn-hangzhou", zone, corev1.LabelTopologyRegion, got)
		}
		if err := sameResources(node.Status.Capacity, list("100000", "400000Gi")); err != nil {
			t.Errorf("zone %q: capacity %v", zone, err)
		}
		if err := sameResources(node.Status.Allocatable, node.Status.Capacity); err != nil {
			t.Errorf("zone %q: allocatable %v", zone, err)
		}
		if asked := market.zones[len(market.zones)-1]; asked != zone {
			t.Errorf("zone %q: the market was asked about %q", zone, asked)
		}
	}
}

// The status loop takes up what the market sells now; when the market
// cannot be asked, the node keeps its last capacity (minCapacity at first
// registration, which does not fail), and the error comes back for the log.
// A zone the backend does not know fails the registration.
func TestCapacityRefreshAndFailure(t *testing.T) {
	ctx := context.Background()
	kube := fake.NewClientset()
	down := errors.New("connection refused")
	market := &marketProvider{region: "cn-hangzhou", err: down}
	h := &Controller{name: "vk", kube: kube, provider: market, zone: "cn-hangzhou-i"}
	capacity := func() corev1.ResourceList {
		t.Helper()
		node, err := kube.CoreV1().Nodes().Get(ctx, "vk", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return node.Status.Capacity
	}
	if err := h.Register(ctx, 0); err != nil {
		t.Fatalf("registration with the market down: %v", err)
	}
	if err := sameResources(capacity(), list("40000", "160000Gi")); err != nil {
		t.Errorf("first registration, market down: %v", err)
	}

	market.err, market.pools = nil, []provider.Pool{{VCPU: 4, MemoryGiB: 16, Stock: 25000}}
	if err := h.updateStatus(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sameResources(capacity(), list("100000", "400000Gi")); err != nil {
		t.Errorf("after a refresh: %v", err)
	}

	market.err = down
	if err := h.updateStatus(ctx); !errors.Is(err, down) {
		t.Errorf("a refresh with the market down returned %v", err)
	}
	if err := sameResources(capacity(), list("100000", "400000Gi")); err != nil {
		t.Errorf("market down again: %v, want the last known", err)
	}

	market.err = provider.NewRequestError(400, eciapi.CodeInvalidZone, `ZoneId "cn-hangzhou-x" is not a zone of cn-hangzhou`)
	bad := &Controller{name: "vk-x", kube: kube, provider: market, zone: "cn-hangzhou-x"}
	if err := bad.Register(ctx, 0); !errors.Is(err, provider.ErrUnknownZone) {
		t.Errorf("a zone the backend does not know: %v", err)
	}
}

// --node-labels go on the Node over its own: another type keeps the pods
// the webhook routes (nodeSelector type: virtual-kubelet) off it.
func TestNodeLabels(t *testing.T) {
	c := New(Config{Name: "batch", Labels: map[string]string{"type": "spot-batch", "team": "ml"}})
	l := c.labels()
	if l["type"] != "spot-batch" || l["team"] != "ml" || l["kubernetes.io/hostname"] != "batch" {
		t.Errorf("labels = %v", l)
	}
	if got := New(Config{Name: "plain"}).labels()["type"]; got != "virtual-kubelet" {
		t.Errorf("type = %q without --node-labels", got)
	}
}

// --register-with-taints go on the Node beside its own taint.
func TestNodeTaints(t *testing.T) {
	extra := corev1.Taint{Key: "team", Value: "ml", Effect: corev1.TaintEffectNoSchedule}
	c := New(Config{Name: "batch", Taint: true, Taints: []corev1.Taint{extra}})
	got := c.nodeObject().Spec.Taints
	if len(got) != 2 || got[0] != extra || got[1].Key != TaintKey {
		t.Errorf("taints = %v", got)
	}
}
