package podspec

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/market"
)

// The pod's Spot goes on the wire as ECI's parameters: the strategy, the
// limit and the protection of a spot bid; nothing for NoSpot, whose
// protection is moot.
func TestCreateRequestSpot(t *testing.T) {
	b := New(Config{NodeName: "vk"})
	for _, c := range []struct {
		ann                             map[string]string
		strategy, limit, duration, spec string
		fallback                        bool
	}{
		{nil, "", "", "", "", false},
		{map[string]string{annotation.AnnotationStrategy: "NoSpot", annotation.AnnotationFallback: "true"}, "", "", "", "", true},
		{map[string]string{annotation.AnnotationStrategy: "SpotAsPriceGo", annotation.AnnotationUseSpecs: "ecs.c5.large,2-4Gi"}, "SpotAsPriceGo", "", "1", "ecs.c5.large,2-4Gi", false},
		{map[string]string{annotation.AnnotationStrategy: "SpotWithPriceLimit", annotation.AnnotationPriceLimit: "0.250", annotation.AnnotationDuration: "0"},
			"SpotWithPriceLimit", "0.25", "0", "", false},
		{map[string]string{annotation.AnnotationStrategy: "SpotWithPriceLimit", annotation.AnnotationPriceLimit: "99999.125", annotation.AnnotationDuration: "6"},
			"SpotWithPriceLimit", "99999.125", "6", "", false},
	} {
		sp, err := annotation.ParseAnnotations(c.ann)
		if err != nil {
			t.Fatal(err)
		}
		req := b.Outline(testPod(), sp)
		duration := ""
		if req.SpotDuration != nil {
			duration = string(*req.SpotDuration)
		}
		if req.SpotStrategy != c.strategy || string(req.SpotPriceLimit) != c.limit || duration != c.duration ||
			req.InstanceType != c.spec || req.SpotFallback != c.fallback {
			t.Errorf("%v: SpotStrategy %q SpotPriceLimit %q SpotDuration %q InstanceType %q SpotFallback %v", c.ann,
				req.SpotStrategy, req.SpotPriceLimit, duration, req.InstanceType, req.SpotFallback)
		}
		back, err := annotation.ParseRequest(req.SpotStrategy, string(req.SpotPriceLimit), (*string)(req.SpotDuration), req.SpotFallback, req.InstanceType)
		if sp.APIEvict = false; err != nil || back != sp {
			t.Errorf("%v: the service parses %+v, %v; the node had %+v", c.ann, back, err, sp)
		}
	}
}

// Every instance of a zone's node asks for its zone; a region's node lets
// the market pick.
func TestCreateRequestZone(t *testing.T) {
	pod := testPod()
	pod.Namespace, pod.Name, pod.UID = "default", "pi", "uid-1"
	for _, zone := range []string{"cn-hangzhou-i", ""} {
		b := New(Config{NodeName: "vk", Zone: zone})
		if got := b.Outline(pod, annotation.Spot{}).ZoneId; got != zone {
			t.Errorf("node zone %q: ZoneId %q", zone, got)
		}
	}
}

// testPod is a pod of one container, as the tests of the requests need it.
func testPod() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pi", Image: "perl"}}}}
}

func ptr[T any](v T) *T { return &v }

// SetBid over a request that has a bid replaces it whole: pay-as-you-go
// leaves no spot parameter behind.
func TestSetBidReplaces(t *testing.T) {
	sp, err := annotation.ParseAnnotations(map[string]string{annotation.AnnotationStrategy: "SpotWithPriceLimit",
		annotation.AnnotationPriceLimit: "0.25", annotation.AnnotationFallback: "true"})
	if err != nil {
		t.Fatal(err)
	}
	req := New(Config{NodeName: "vk"}).Outline(testPod(), sp)
	SetBid(&req, market.Bid{Strategy: market.NoSpot})
	if req.SpotStrategy != "" || req.SpotPriceLimit != "" || req.SpotDuration != nil || req.SpotFallback {
		t.Errorf("pay-as-you-go over a spot bid: %q %q %v %v", req.SpotStrategy, req.SpotPriceLimit, req.SpotDuration, req.SpotFallback)
	}
}
