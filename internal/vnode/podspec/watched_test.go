package podspec

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/spoteci/spoteci/internal/annotation"
)

// TestWatchedSources: the kubernetes Service and kube-root-ca.crt come
// from their watches, a pod's config reads neither, and a change reaches
// the next pod; a namespace whose CA the watch has not seen is read.
func TestWatchedSources(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rootCA := func(ns, data string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rootCAConfigMap}, Data: map[string]string{"ca.crt": data}}
	}
	kube := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
		rootCA("ns", "first"),
	)
	b := New(Config{Kube: kube})
	stop := b.Start(ctx)
	defer stop()
	if !b.Wait(ctx) {
		t.Fatal("the watches did not sync")
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "a", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "api", MountPath: "/var/run"}}},
			{Name: "b", Image: "busybox"}},
		Volumes: []corev1.Volume{{Name: "api", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}}}}}}},
	}}
	caOf := func(p *corev1.Pod) string {
		t.Helper()
		req, err := b.Request(ctx, p, annotation.Spot{})
		if err != nil {
			t.Fatalf("config of %s/%s: %v", p.Namespace, p.Name, err)
		}
		if env := req.Containers[1].EnvironmentVars; len(env) != 8 {
			t.Errorf("%d variables of the kubernetes service, want 8: %v", len(env), env)
		}
		return req.Volumes[0].ConfigFileVolume.ConfigFileToPaths[0].Content
	}
	reads := func() (n int) {
		for _, a := range kube.Actions() {
			if a.GetVerb() == "get" {
				n++
			}
		}
		return n
	}
	first := caOf(pod)
	if got := reads(); got != 0 {
		t.Errorf("%d reads for a pod, want none: %v", got, kube.Actions())
	}

	// A new CA reaches the next pod through the watch.
	if _, err := kube.CoreV1().ConfigMaps("ns").Update(ctx, rootCA("ns", "second"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); caOf(pod) == first; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the updated kube-root-ca.crt never reached a pod")
		}
	}
	if got := reads(); got != 0 {
		t.Errorf("%d reads, want none", got)
	}

	// A CA the watch lacks is read: the pod does not wait on the watch.
	kube.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, rootCA("other", "read"), nil
	})
	other := pod.DeepCopy()
	other.Namespace = "other"
	caOf(other)
	if got := reads(); got != 1 {
		t.Errorf("%d reads for a CA the watch has not seen, want 1", got)
	}
}
