package chart

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func kinds(objs []*unstructured.Unstructured) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, o.GetKind()+"/"+o.GetName())
	}
	return ks
}

// In a cluster the chart makes one Deployment of two replicas per node,
// electing a leader, with the credentials in a Secret it mounts.
func TestRenderInCluster(t *testing.T) {
	objs, err := Render(Release{Name: "spoteci", Namespace: "spoteci-system", Values: map[string]any{
		"eci":   map[string]any{"endpoint": "https://eci.cn-hangzhou.aliyuncs.com", "region": "cn-hangzhou", "accessKeyId": "id", "accessKeySecret": "secret"},
		"zones": []any{"cn-hangzhou-i", "cn-hangzhou-j"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"virtual-kubelet-spoteci-cn-hangzhou-i", "virtual-kubelet-spoteci-cn-hangzhou-j"} {
		d := find(objs, "Deployment", name)
		if d == nil {
			t.Fatalf("no Deployment %s in %v", name, kinds(objs))
		}
		if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
			t.Errorf("%s: replicas %d, want 2", name, r)
		}
		if d.GetNamespace() != "spoteci-system" {
			t.Errorf("%s: namespace %q", name, d.GetNamespace())
		}
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		for _, want := range []string{"--node-name=" + name, "--zone=" + strings.TrimPrefix(name, "virtual-kubelet-spoteci-"), "--leader-elect",
			"--access-key-file=/etc/spoteci/eci/access-key.json", "--webhook-service=spoteci-webhook", "--eci-endpoint=https://eci.cn-hangzhou.aliyuncs.com"} {
			if !slices.Contains(args, want) {
				t.Errorf("%s: args %v lack %s", name, args, want)
			}
		}
		if sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); sa != "spoteci" {
			t.Errorf("%s: serviceAccountName %q", name, sa)
		}
	}
	sec := find(objs, "Secret", "spoteci-eci")
	if sec == nil {
		t.Fatalf("no credentials Secret in %v", kinds(objs))
	}
	if data, _, _ := unstructured.NestedString(sec.Object, "stringData", "access-key.json"); data != `{"AccessKeyId":"id","AccessKeySecret":"secret"}` {
		t.Errorf("access-key.json = %s", data)
	}
	role := find(objs, "ClusterRole", "spoteci-node")
	if role == nil {
		t.Fatal("no ClusterRole")
	}
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	var nodeNames []string
	for _, r := range rules {
		r := r.(map[string]any)
		if res, _ := r["resources"].([]any); slices.Contains(res, any("nodes/status")) {
			for _, n := range r["resourceNames"].([]any) {
				nodeNames = append(nodeNames, n.(string))
			}
		}
		if verbs, _ := r["verbs"].([]any); slices.Contains(verbs, any("*")) {
			t.Errorf("a wildcard verb: %v", r)
		}
	}
	if len(nodeNames) != 2 {
		t.Errorf("nodes by name: %v", nodeNames)
	}
	// What goes first is what others refer to.
	if i, j := slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "ServiceAccount" }),
		slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Deployment" }); i > j {
		t.Errorf("ServiceAccount after Deployment: %v", kinds(objs))
	}
}

// externalNode renders the identity alone: no Deployment, no credentials.
func TestRenderExternalNode(t *testing.T) {
	objs, err := Render(Release{Name: "spoteci", Namespace: "spoteci-system", Values: map[string]any{"externalNode": true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "Deployment" || o.GetKind() == "Service" || o.GetName() == "spoteci-eci" {
			t.Errorf("externalNode rendered %s %s", o.GetKind(), o.GetName())
		}
	}
	for _, want := range []string{"ServiceAccount/spoteci", "ClusterRole/spoteci-node", "MutatingWebhookConfiguration/spoteci-eci-label", "Secret/spoteci-webhook-tls"} {
		if !slices.Contains(kinds(objs), want) {
			t.Errorf("no %s in %v", want, kinds(objs))
		}
	}
}

// Installing in a cluster without credentials fails with what to set.
func TestRenderNeedsCredentials(t *testing.T) {
	_, err := Render(Release{Name: "spoteci", Namespace: "x", Values: map[string]any{"eci": map[string]any{"endpoint": "e", "region": "r"}}})
	if err == nil || !strings.Contains(err.Error(), "eci.accessKeyId") {
		t.Fatalf("err = %v, want one naming eci.accessKeyId", err)
	}
}

// Values the chart does not know, or of the wrong kind, are refused by its
// schema with the value's name.
func TestRenderRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{map[string]any{"externalNode": true, "replicas": "two"}, "replicas"},
		{map[string]any{"externalNode": true, "webhook": map[string]any{"port": 70000}}, "port"},
		{map[string]any{"externalNode": true, "nodename": "x"}, "nodename"},
		{map[string]any{"externalNode": true, "leaderElection": map[string]any{"leaseDuration": "soon"}}, "leaseDuration"},
	} {
		_, err := Render(Release{Name: "spoteci", Namespace: "x", Values: c.values})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want one naming %s", c.values, err, c.want)
		}
	}
}
