package podcontroller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// refusingProvider refuses every create with err.
type refusingProvider struct {
	oneProvider
	err error
}

func (p *refusingProvider) Create(ctx context.Context, req eciapi.CreateContainerGroupRequest) (string, error) {
	p.oneProvider.Create(ctx, req)
	return "", p.err
}

// An annotation the node can check is refused before any request; one only
// the service can check (the specs, against what it sells) comes back as
// the refused field, not as words. Either way the pod gets the same
// Warning, in the annotation's words.
func TestInvalidAnnotationEvents(t *testing.T) {
	const wait = "; the pod will not run until it is recreated with a valid annotation"
	specsRefused := provider.NewRequestError(400, "InvalidParameter.InstanceType", `invalid InstanceType "2-4G": spec "2-4G": no such spec`)
	specsRefused.Field = &annotation.FieldError{Field: annotation.FieldSpecs, Value: "2-4G", Reason: `spec "2-4G": no such spec`}
	for _, c := range []struct {
		name    string
		ann     map[string]string
		refusal error
		creates int
		event   string
	}{
		{"limit with 4 decimals", map[string]string{annotation.AnnotationStrategy: "SpotWithPriceLimit", annotation.AnnotationPriceLimit: "0.2555"}, nil, 0,
			`Warning InvalidAnnotation invalid annotation k8s.aliyun.com/eci-spot-price-limit="0.2555": want a positive hourly price with at most 3 decimals, like 0.25` + wait},
		{"unknown strategy", map[string]string{annotation.AnnotationStrategy: "SpotCheapest"}, nil, 0,
			`Warning InvalidAnnotation invalid annotation k8s.aliyun.com/eci-spot-strategy="SpotCheapest": want SpotAsPriceGo or SpotWithPriceLimit` + wait},
		{"fallback yes", map[string]string{annotation.AnnotationStrategy: "SpotAsPriceGo", annotation.AnnotationFallback: "yes"}, nil, 0,
			`Warning InvalidAnnotation invalid annotation k8s.aliyun.com/eci-spot-fallback="yes": want "true" or "false"` + wait},
		{"specs the service refuses", map[string]string{annotation.AnnotationStrategy: "SpotAsPriceGo", annotation.AnnotationUseSpecs: "2-4G"}, specsRefused, 1,
			`Warning InvalidAnnotation invalid annotation k8s.aliyun.com/eci-use-specs="2-4G": spec "2-4G": no such spec` + wait},
		{"a refusal of no field", map[string]string{annotation.AnnotationUseSpecs: "ecs.c6.large"},
			provider.NewRequestError(400, "InvalidParameter.InstanceType", "no instance type for ecs.c6.large is sold in cn-hangzhou"), 1,
			"Warning ProviderCreateFailed no instance type for ecs.c6.large is sold in cn-hangzhou"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-p", Annotations: c.ann},
				Spec:   corev1.PodSpec{NodeName: "vk", Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending}}
			informer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
			informer.Add(pod)
			prov := &refusingProvider{oneProvider: oneProvider{now: map[string]*provider.Instance{}}, err: c.refusal}
			recorder := record.NewFakeRecorder(10)
			n := testController(fake.NewClientset(pod), prov, informer, recorder, time.Now().Add(-time.Hour))
			if _, err := n.createInstance(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			if prov.creates != c.creates {
				t.Errorf("%d creates, want %d", prov.creates, c.creates)
			}
			select {
			case e := <-recorder.Events:
				if e != c.event {
					t.Errorf("event\n  %q\nwant\n  %q", e, c.event)
				}
			default:
				t.Errorf("no event, want %q", c.event)
			}
		})
	}
}

// A deadline pod without a spot strategy goes on spot as ECI's usual
// SpotAsPriceGo with one hour of protection; its own bid otherwise.
func TestSpotBid(t *testing.T) {
	none, _ := annotation.ParseAnnotations(nil)
	if b := spotBid(none.Bid); b.Strategy != market.SpotAsPriceGo || b.Protection != time.Hour {
		t.Errorf("spotBid of no bid = %+v", b)
	}
	own, _ := annotation.ParseAnnotations(map[string]string{annotation.AnnotationStrategy: "SpotWithPriceLimit", annotation.AnnotationPriceLimit: "0.2", annotation.AnnotationDuration: "0"})
	if b := spotBid(own.Bid); b != own.Bid {
		t.Errorf("spotBid of %+v = %+v", own.Bid, b)
	}
}
