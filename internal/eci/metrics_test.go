package eci

import (
	"fmt"
	"testing"
)

// The bill metrics' namespace and job labels stay bounded: past the caps,
// owners are counted under _other, and an admitted owner keeps its labels.
func TestMetricOwnersAreCapped(t *testing.T) {
	ow := owners{namespaces: map[string]bool{}, jobs: map[owner]bool{}}
	for i := range maxOwnerJobs {
		o := owner{fmt.Sprint("ns", i%maxOwnerNamespaces), fmt.Sprint("job", i)}
		if got := ow.labels(o); got != o {
			t.Fatalf("owner %d: %v, want %v", i, got, o)
		}
	}
	if got, want := ow.labels(owner{"ns1", "late"}), (owner{"ns1", otherOwner}); got != want {
		t.Errorf("a Job past the cap: %v, want %v", got, want)
	}
	if got, want := ow.labels(owner{"new", "job"}), (owner{otherOwner, otherOwner}); got != want {
		t.Errorf("a namespace past the cap: %v, want %v", got, want)
	}
	if o := (owner{"ns3", "job3"}); ow.labels(o) != o {
		t.Errorf("an admitted owner lost its labels")
	}
	if len(ow.jobs) != maxOwnerJobs || len(ow.namespaces) != maxOwnerNamespaces {
		t.Errorf("%d jobs and %d namespaces admitted, want %d and %d", len(ow.jobs), len(ow.namespaces), maxOwnerJobs, maxOwnerNamespaces)
	}
}
