package kubeletapi

import (
	"net/http/httptest"
	"testing"
)

// The kubelet's mapping of a request to what it asks of the node.
func TestRequestAttributes(t *testing.T) {
	for _, c := range []struct{ method, path, verb, sub string }{
		{"GET", "/containerLogs/ns/pod/c", "get", "proxy"},
		{"POST", "/exec/ns/pod/c", "create", "proxy"},
		{"GET", "/exec/ns/pod/uid/c", "get", "proxy"},
		{"GET", "/metrics/resource", "get", "metrics"},
		{"GET", "/metrics", "get", "metrics"},
		{"GET", "/metricsfoo", "get", "proxy"},
		{"GET", "/stats/summary", "get", "stats"},
		{"GET", "/logs/", "get", "log"},
		{"GET", "/healthz", "get", "proxy"},
		{"DELETE", "/runningpods/", "delete", "proxy"},
	} {
		a := requestAttributes(httptest.NewRequest(c.method, c.path, nil), "vk")
		if a.Verb != c.verb || a.Subresource != c.sub || a.Resource != "nodes" || a.Name != "vk" {
			t.Errorf("%s %s: %+v, want %s nodes/%s of vk", c.method, c.path, a, c.verb, c.sub)
		}
	}
}
