package podcontroller

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// oneProvider makes instances and answers with what the test says they
// are now.
type oneProvider struct {
	provider.Provider // any other call panics
	mu                sync.Mutex
	creates           int
	now               map[string]*provider.Instance // by ID
}

func (p *oneProvider) Create(_ context.Context, req eciapi.CreateContainerGroupRequest) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creates++
	return "eci-" + req.ClientToken, nil
}

func (p *oneProvider) Get(_ context.Context, id string) (*provider.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := *p.now[id]
	return &in, nil
}

func (p *oneProvider) set(in *provider.Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now[in.ID] = in
}

// testController is a Controller of node vk in a term that began at
// termStart, with the pods of informer and the events to recorder, as Run
// would make it.
func testController(kube kubernetes.Interface, prov provider.Provider, informer cache.Indexer, recorder record.EventRecorder, termStart time.Time) *Controller {
	c := New(Config{NodeName: "vk", Kube: kube, Provider: prov})
	c.pods = corelisters.NewPodLister(informer)
	c.events.EventRecorder = recorder
	c.events.termStart = termStart
	return c
}

// TestStatusWrites: a pod's instance's annotations go with its first
// status, in one write, and an InstanceCreated event follows; the next
// status, written while the informer still has the pod as it was before,
// starts from what the node wrote rather than conflicting; nothing is
// written when nothing changed.
func TestStatusWrites(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-p", ResourceVersion: "10", CreationTimestamp: metav1.Time{Time: now}},
		Spec:   corev1.PodSpec{NodeName: "vk", Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	kube := fake.NewClientset(pod)
	// The apiserver's optimistic concurrency, which the fake lacks: a
	// write of an older version conflicts.
	var mu sync.Mutex
	rv, conflicts, writes := 10, 0, []*corev1.Pod{}
	kube.PrependReactor("update", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		p := a.(k8stesting.UpdateAction).GetObject().(*corev1.Pod).DeepCopy()
		if p.ResourceVersion != strconv.Itoa(rv) {
			conflicts++
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, p.Name, nil)
		}
		rv++
		p.ResourceVersion = strconv.Itoa(rv)
		writes = append(writes, p)
		return true, p, nil
	})
	informer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	informer.Add(pod)
	prov := &oneProvider{now: map[string]*provider.Instance{}}
	recorder := record.NewFakeRecorder(100)
	n := testController(kube, prov, informer, recorder, now.Add(-time.Hour))
	in := &provider.Instance{ID: "eci-uid-p", Status: provider.StatusPending, InstanceType: "ecs.g7.large", Created: now,
		Containers: []provider.ContainerStatus{{Name: "main", State: provider.ContainerState{State: provider.ContainerWaiting, Reason: "ContainerCreating"}}},
		Events:     []provider.Event{{Type: "Normal", Reason: eciapi.ReasonCreated, Message: "made in zone a"}}}
	prov.set(in)

	if _, err := n.syncPod(ctx, "ns/p"); err != nil {
		t.Fatal(err)
	}
	if len(writes) != 1 || writes[0].Annotations[AnnotationInstanceID] != in.ID || !hasInstance(writes[0]) {
		t.Fatalf("%d writes, want 1 with the instance's annotations and status", len(writes))
	}
	select {
	case e := <-recorder.Events:
		if !strings.Contains(e, ReasonInstanceCreated) {
			t.Errorf("event %q, want InstanceCreated", e)
		}
	default:
		t.Error("no InstanceCreated event")
	}

	// The poll brings the instance Running before the informer brings the
	// pod as written.
	running := *in
	running.Status, running.IP = provider.StatusRunning, "10.0.0.2"
	running.Containers = []provider.ContainerStatus{{Name: "main", State: provider.ContainerState{State: provider.ContainerRunning, Started: now}}}
	n.groups[pod.UID] = &running
	for range 2 {
		if _, err := n.syncPod(ctx, "ns/p"); err != nil {
			t.Fatal(err)
		}
	}
	if len(writes) != 2 || conflicts != 0 || writes[1].Status.Phase != corev1.PodRunning || writes[1].Annotations[AnnotationInstanceID] != in.ID {
		t.Fatalf("%d writes and %d conflicts, want a second write, Running, and none", len(writes), conflicts)
	}

	// The informer catches up: nothing to write, and nothing kept.
	informer.Update(writes[1])
	if _, err := n.syncPod(ctx, "ns/p"); err != nil {
		t.Fatal(err)
	}
	if len(writes) != 2 || len(n.writes.written) != 0 || prov.creates != 1 {
		t.Errorf("%d writes, %d pods kept, %d creates; want 2, none, 1", len(writes), len(n.writes.written), prov.creates)
	}
	select {
	case e := <-recorder.Events:
		t.Errorf("a second event: %q", e)
	default:
	}
}
