package vnode

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// oneProvider makes instances and answers with what the test says they
// are now.
type oneProvider struct {
	marketProvider
	mu      sync.Mutex
	creates int
	now     map[string]*Instance // by ID
}

func (p *oneProvider) Create(_ context.Context, req eciapi.CreateContainerGroupRequest) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creates++
	return "eci-" + req.ClientToken, nil
}

func (p *oneProvider) Get(_ context.Context, id string) (*Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := *p.now[id]
	return &in, nil
}

func (p *oneProvider) set(in *Instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.now[in.ID] = in
}

// TestFirstStatus: a pod whose instance starts within the first polls is
// written once, Running, with its instance's annotations in the same
// write; one whose containers take longer shows ContainerCreating once
// that wait is over. Meanwhile its instance is read by ID, never asked
// for again.
func TestFirstStatus(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "10",
			CreationTimestamp: metav1.Time{Time: now}},
			Spec:   corev1.PodSpec{NodeName: "vk", Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending}}
	}
	fast, slow := pod("fast"), pod("slow")
	kube := fake.NewClientset(fast, slow)
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	pods.Add(fast)
	pods.Add(slow)
	prov := &oneProvider{now: map[string]*Instance{}}
	recorder := record.NewFakeRecorder(100)
	const poll = 100 * time.Millisecond
	n := &Node{cfg: Config{NodeName: "vk", PollInterval: poll}, kube: kube, provider: prov, pods: corelisters.NewPodLister(pods),
		recorder: recorder, termStart: now.Add(-time.Hour), past: &pastEvents{byNS: map[string]*namespaceEvents{}},
		groups: map[types.UID]*Instance{}, fingerprint: map[types.UID]string{}, emitted: map[string]bool{},
		forwarded: map[types.UID]map[string]bool{}}
	instance := func(p *corev1.Pod, state string) *Instance {
		in := &Instance{ID: "eci-" + string(p.UID), Status: StatusPending, InstanceType: "ecs.g7.large", Created: now,
			Containers: []ContainerStatus{{Name: "main", State: ContainerState{State: ContainerWaiting, Reason: "ContainerCreating"}}},
			Events:     []Event{{Type: "Normal", Reason: eciapi.ReasonCreated, Message: "made in zone a"}}}
		if state == ContainerRunning {
			in.Status, in.IP = StatusRunning, "10.0.0.2"
			in.Containers[0].State = ContainerState{State: ContainerRunning, Started: now}
		}
		return in
	}
	writes := func(name string) (out []*corev1.Pod) {
		for _, a := range kube.Actions() {
			if u, ok := a.(k8stesting.UpdateAction); ok && a.GetSubresource() == "status" {
				if p := u.GetObject().(*corev1.Pod); p.Name == name {
					out = append(out, p)
				}
			}
		}
		return out
	}
	for _, p := range []*corev1.Pod{fast, slow} {
		prov.set(instance(p, ContainerWaiting))
		wait, err := n.syncPod(ctx, "ns/"+p.Name)
		if err != nil || wait <= 0 || wait > firstStatusPolls*poll {
			t.Fatalf("%s: first sync waits %v (%v), want up to %v", p.Name, wait, err, firstStatusPolls*poll)
		}
		// Synced again before any poll: read by ID, not made again.
		if wait, err := n.syncPod(ctx, "ns/"+p.Name); err != nil || wait <= 0 {
			t.Fatalf("%s: second sync waits %v (%v)", p.Name, wait, err)
		}
	}
	if prov.creates != 2 || len(writes("fast"))+len(writes("slow")) != 0 {
		t.Fatalf("%d creates and %d status writes while starting, want 2 and none", prov.creates, len(writes("fast"))+len(writes("slow")))
	}

	prov.set(instance(fast, ContainerRunning))
	if _, err := n.syncPod(ctx, "ns/fast"); err != nil {
		t.Fatal(err)
	}
	w := writes("fast")
	if len(w) != 1 || w[0].Status.Phase != corev1.PodRunning || w[0].Annotations[AnnotationInstanceID] != "eci-uid-fast" {
		t.Fatalf("fast: %d writes, want 1 Running with its instance's annotations: %+v", len(w), w)
	}
	select {
	case e := <-recorder.Events:
		if !strings.Contains(e, ReasonInstanceCreated) {
			t.Errorf("event %q, want InstanceCreated", e)
		}
	default:
		t.Error("no InstanceCreated event")
	}

	deadline := time.Now().Add(10 * time.Second)
	for len(writes("slow")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow: no status written after the first polls")
		}
		wait, err := n.syncPod(ctx, "ns/slow")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(wait)
	}
	if st := writes("slow")[0].Status; st.Phase != corev1.PodPending || len(st.ContainerStatuses) != 1 ||
		st.ContainerStatuses[0].State.Waiting == nil || st.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("slow: first status %+v, want Pending, ContainerCreating", st)
	}
	if prov.creates != 2 {
		t.Errorf("%d creates, want 2", prov.creates)
	}
}
