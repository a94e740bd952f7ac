package podcontroller

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestShardedRecorderKeepsAStorm posts a notice for each of 5,000 pods at
// once to a sink that takes a while an event: one broadcaster's queue
// of 1,000 would drop most of them; none may be lost.
func TestShardedRecorderKeepsAStorm(t *testing.T) {
	const pods = 5000
	kube := fake.NewClientset()
	var created atomic.Int64
	kube.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		created.Add(1)
		return true, &corev1.Event{}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, stop := newShardedRecorder(ctx, kube.CoreV1().Events(""), corev1.EventSource{Component: "kubelet", Host: "eci"}, eventWriters)
	defer stop()
	for i := range pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "storm", Name: fmt.Sprintf("pod-%d", i), UID: "uid"}}
		r.Event(pod, corev1.EventTypeWarning, "SpotToBeReleased", "Spot ECI will be released in 3 minutes")
	}
	for deadline := time.Now().Add(time.Minute); created.Load() < pods; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events posted within a minute", created.Load(), pods)
		}
	}
}

// TestShardedRecorderKeepsAnObjectTogether: a pod and a reference to one of
// its containers go through the same broadcaster, whose correlator counts
// the pod's repeated events.
func TestShardedRecorderKeepsAnObjectTogether(t *testing.T) {
	r := &shardedRecorder{}
	for range eventWriters {
		r.shards = append(r.shards, &fakeShard{})
	}
	spread := map[*fakeShard]bool{}
	for i := range 100 {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("p%d", i)}}
		ref := &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod.Name, FieldPath: "spec.containers{c}"}
		if r.shard(pod) != r.shard(ref) {
			t.Fatalf("pod %s and its container's reference go through different broadcasters", pod.Name)
		}
		spread[r.shard(pod).(*fakeShard)] = true
	}
	if len(spread) < eventWriters/2 {
		t.Errorf("100 pods went through %d of %d broadcasters", len(spread), eventWriters)
	}
}

type fakeShard struct{ n int }

func (f *fakeShard) Event(runtime.Object, string, string, string)          { f.n++ }
func (f *fakeShard) Eventf(runtime.Object, string, string, string, ...any) { f.n++ }
func (f *fakeShard) AnnotatedEventf(runtime.Object, map[string]string, string, string, string, ...any) {
	f.n++
}
