package podspec

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/spoteci/spoteci/internal/annotation"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestGroupAndHostNames: what the node sends passes the service's checks
// for any pod name Kubernetes allows (253 characters with dots): ECI's
// alphabet and at most 128 characters for ContainerGroupName, the
// kubelet's 63-character hostname.
func TestGroupAndHostNames(t *testing.T) {
	eciName := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	pod := func(ns, name, hostname string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{Hostname: hostname}}
	}
	long := strings.Repeat("a", 62) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) // 253
	for _, tc := range []struct {
		pod         *corev1.Pod
		group, host string
	}{
		{pod("default", "pi-x7k2p", ""), "default-pi-x7k2p", "pi-x7k2p"},
		{pod("team-a", "web.v1", ""), "team-a-web-v1", "web.v1"},
		{pod("team-a", "web-0", "db"), "team-a-web-0", "db"},
		{pod("ns", long, ""), "", strings.Repeat("a", 62)}, // cut at the dot, which goes
	} {
		g, h := groupName(tc.pod), hostName(tc.pod)
		if tc.group != "" && g != tc.group {
			t.Errorf("groupName(%s/%s) = %q, want %q", tc.pod.Namespace, tc.pod.Name, g, tc.group)
		}
		if len(g) < 2 || len(g) > 128 || !eciName.MatchString(g) {
			t.Errorf("groupName(%s/%s) = %q: not an ECI name", tc.pod.Namespace, tc.pod.Name, g)
		}
		if h != tc.host {
			t.Errorf("hostName(%s) = %q, want %q", tc.pod.Name, h, tc.host)
		}
	}
	// Long names that share their first 128 characters stay apart.
	a, b := groupName(pod("ns", long, "")), groupName(pod("ns", long[:252]+"e", ""))
	if a == b || len(a) != 128 || !strings.HasPrefix(a, "ns-"+strings.Repeat("a", 62)+"-") {
		t.Errorf("long names: %q and %q", a, b)
	}
}

// TestEnvCountLimit: the node adds the kubernetes service's 8 variables to
// every container, so a container may have 992 of its own (env and envFrom
// together; one that replaces a service variable takes its place): a pod at
// the limit gets a request of exactly 1,000 variables, which the service
// takes; one over it waits in CreateContainerConfigError with a Warning
// that names the field and the limit, and is not sent.
func TestEnvCountLimit(t *testing.T) {
	ctx := context.Background()
	keys := map[string]string{}
	for i := range 500 {
		keys[fmt.Sprint("FROM_", i)] = "x"
	}
	kube := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "many"}, Data: keys},
	)
	b := New(Config{Kube: kube})
	if got := len(b.masterServiceEnv(ctx)); got != 8 {
		t.Fatalf("the kubernetes service gives %d variables, want 8", got)
	}
	pod := func(own int, extra ...corev1.EnvVar) *corev1.Pod {
		c := corev1.Container{Name: "main", Image: "busybox",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "many"}}}}}
		for i := range own - len(keys) - len(extra) {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprint("V_", i), Value: "y"})
		}
		c.Env = append(c.Env, extra...)
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "side", Image: "busybox"}, c}}}
	}
	config := func(p *corev1.Pod) (eciapi.CreateContainerGroupRequest, error) {
		return b.Request(ctx, p, annotation.Spot{})
	}

	limit := eciapi.MaxEnvironmentVars - 8
	for what, p := range map[string]*corev1.Pod{
		"at the limit":                           pod(limit),
		"one more, replacing a service variable": pod(limit+1, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "10.0.0.2"}),
	} {
		req, err := config(p)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := len(req.Containers[1].EnvironmentVars); got != eciapi.MaxEnvironmentVars {
			t.Errorf("%s: %d variables sent, want %d", what, got, eciapi.MaxEnvironmentVars)
		}
	}

	_, err := config(pod(limit + 1))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("one over the limit: %v, want a config error", err)
	}
	reason, msg := ce.Event()
	want := fmt.Sprintf("Error: spec.containers[1].env: Too many: %d: must have at most %d items", limit+1, limit)
	if reason != "Failed" || !strings.HasPrefix(msg, want) || ce.Waiting() != reasonConfig {
		t.Errorf("event %s %q, waiting %s; want Failed %q..., %s", reason, msg, ce.Waiting(), want, reasonConfig)
	}
}
