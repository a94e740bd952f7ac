package podspec

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":        "plain",
		"$(A)":         "1",
		"x$(A)y$(B)z":  "x1ytwoz",
		"$(MISSING)":   "$(MISSING)",
		"$$(A)":        "$(A)",
		"cost $5":      "cost $5",
		"open $(A":     "open $(A",
		"end$":         "end$",
		"$(A)$(A)$$$$": "11$$",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFieldAndResourceValues(t *testing.T) {
	pod := &corev1.Pod{}
	pod.Name, pod.Namespace, pod.UID = "p", "ns", "u-1"
	pod.Labels = map[string]string{"b": "2", "a": "x\"y"}
	for path, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u-1",
		"metadata.labels['b']": "2", "metadata.labels": "a=\"x\\\"y\"\nb=\"2\"",
	} {
		if got, err := fieldValue(pod, path); err != nil || got != want {
			t.Errorf("fieldValue(%s) = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := fieldValue(pod, "spec.nope"); err == nil {
		t.Error("an unknown field path resolved")
	}
	c := corev1.Container{Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("4Gi")}}}
	for _, tc := range []struct {
		res, divisor, want string
	}{
		{"limits.cpu", "", "2"}, {"limits.cpu", "1m", "1500"}, {"limits.memory", "1Mi", "4096"}, {"requests.memory", "1Gi", "4"},
	} {
		sel := &corev1.ResourceFieldSelector{Resource: tc.res}
		if tc.divisor != "" {
			sel.Divisor = resource.MustParse(tc.divisor)
		}
		if got, err := resourceValue(c, sel); err != nil || got != tc.want {
			t.Errorf("resourceValue(%s/%s) = %q, %v; want %q", tc.res, tc.divisor, got, err, tc.want)
		}
	}
}

// TestGetCached: the watch cache first; etcd only for what it lacks.
func TestGetCached(t *testing.T) {
	inCache := map[string]bool{"old": true}
	var asked []string
	get := func(_ context.Context, name string, o metav1.GetOptions) (string, error) {
		asked = append(asked, name+"@"+o.ResourceVersion)
		if o.ResourceVersion == "0" && !inCache[name] {
			return "", apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
		}
		return name, nil
	}
	for _, name := range []string{"old", "new"} {
		if got, err := getCached(context.Background(), get, name); got != name || err != nil {
			t.Errorf("getCached(%s) = %q, %v", name, got, err)
		}
	}
	if want := []string{"old@0", "new@0", "new@"}; !slices.Equal(asked, want) {
		t.Errorf("reads %v, want %v", asked, want)
	}
}
