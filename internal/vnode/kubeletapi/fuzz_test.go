package kubeletapi

import (
	"net/url"
	"testing"
)

// FuzzLogQuery: any query of kubectl logs decodes into a request with no
// negative count, or is refused; never a panic.
func FuzzLogQuery(f *testing.F) {
	f.Add("follow=true&tailLines=10&timestamps=true&sinceSeconds=60&limitBytes=500&previous=true")
	f.Add("tailLines=-1")
	f.Add("limitBytes=99999999999999999999")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, limit, err := logQuery(q)
		if err == nil && (req.Tail < 0 || req.SinceSeconds < 0 || limit < 0) {
			t.Fatalf("%q decoded to %+v, limit %d", query, req, limit)
		}
	})
}
