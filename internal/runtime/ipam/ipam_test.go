package ipam

import "testing"

func TestIPAM(t *testing.T) {
	a, err := New("10.88.0.0/29") // .1 gateway, .2 to .6 instances, .7 broadcast
	if err != nil {
		t.Fatal(err)
	}
	lease := func(id, want string) string {
		t.Helper()
		ip, err := a.Lease(id, want)
		if err != nil {
			t.Fatalf("lease %s: %v", id, err)
		}
		return ip.String()
	}
	if got := lease("a", ""); got != "10.88.0.2" {
		t.Errorf("first address %s, want 10.88.0.2 (after the gateway)", got)
	}
	if got := lease("a", "10.88.0.5"); got != "10.88.0.2" {
		t.Errorf("an instance's second lease %s, want its first", got)
	}
	if got := lease("b", "10.88.0.5"); got != "10.88.0.5" {
		t.Errorf("a free address asked for: %s", got)
	}
	if got := lease("c", "10.88.0.5"); got != "10.88.0.3" {
		t.Errorf("an address taken: got %s, want the next free one, 10.88.0.3", got)
	}
	a.Release("a")
	// Round the subnet before reusing what was given back.
	for _, want := range []struct{ id, ip string }{{"d", "10.88.0.4"}, {"e", "10.88.0.6"}, {"f", "10.88.0.2"}} {
		if got := lease(want.id, ""); got != want.ip {
			t.Errorf("%s got %s, want %s", want.id, got, want.ip)
		}
	}
	if _, err := a.Lease("g", ""); err == nil {
		t.Error("a lease in a full subnet succeeded")
	}
	if a.CIDR(a.Gateway()) != "10.88.0.1/29" {
		t.Errorf("cidr = %s", a.CIDR(a.Gateway()))
	}

	// A restarted runtime: what instances had, back; a taken one is not
	// given twice.
	b, _ := New("10.88.0.0/16")
	b.Restore("x", "10.88.0.9")
	b.Restore("y", "10.88.0.9")
	b.Restore("z", "10.89.0.9") // not of this network
	if ip, _ := b.Lease("x", ""); ip.String() != "10.88.0.9" {
		t.Errorf("x = %s", ip)
	}
	if ip, _ := b.Lease("y", ""); ip.String() != "10.88.0.10" {
		t.Errorf("y = %s, want the one after the highest restored", ip)
	}
}
