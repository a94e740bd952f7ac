// Package ipam is an address book of instances: it hands out the
// addresses of one IPv4 subnet by instance id, in memory. The containerd
// runtime gives them to the CNI plugins; the model runtime gives them out
// as they are.
package ipam

import (
	"fmt"
	"net/netip"
	"sync"
)

// The containerd runtime's addresses are handed out here, in memory, and
// given to the CNI plugins through the "static" IPAM plugin. host-local,
// which did it before, reads every lease file of the network on each
// allocation (its check that the container holds none), so each start cost
// more the more instances ran. As host-local did, addresses go round the
// network from its third (the first is the host side's gateway), so that
// one just given back is not handed out again at once. An instance keeps
// its address until its sandbox is freed; a runtime that starts again takes
// the addresses back from the instances' status.json (Restore).

// Book is the address book of one network.
type Book struct {
	mu      sync.Mutex
	prefix  netip.Prefix
	gateway netip.Addr
	next    netip.Addr // where the search for a free address starts
	byID    map[string]netip.Addr
	owner   map[netip.Addr]string
}

// New returns the book of subnet, which gives out all its addresses but the
// first two (the network's and the gateway's) and the last (broadcast).
func New(subnet string) (*Book, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return nil, fmt.Errorf("network %q: want an IPv4 subnet of at least 4 addresses", subnet)
	}
	p = p.Masked()
	gw := p.Addr().Next()
	return &Book{prefix: p, gateway: gw, next: gw.Next(), byID: map[string]netip.Addr{}, owner: map[netip.Addr]string{}}, nil
}

// usable reports whether a is an address for an instance: in the subnet,
// not its first two (network, gateway) nor its last (broadcast).
func (a *Book) usable(ip netip.Addr) bool {
	return a.prefix.Contains(ip) && ip.Compare(a.gateway) > 0 && a.prefix.Contains(ip.Next())
}

// Lease returns instance id's address: the one it holds, else want if it is
// free ("" or not usable: any), else the next free one.
func (a *Book) Lease(id, want string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byID[id]; ok {
		return ip, nil
	}
	if ip, err := netip.ParseAddr(want); err == nil && a.usable(ip) && a.owner[ip] == "" {
		a.take(id, ip)
		return ip, nil
	}
	ip := a.next
	for range 1 << (32 - a.prefix.Bits()) {
		if !a.usable(ip) {
			ip = a.gateway.Next() // round again from the start
		}
		if a.owner[ip] == "" {
			a.take(id, ip)
			a.next = ip.Next()
			return ip, nil
		}
		ip = ip.Next()
	}
	return netip.Addr{}, fmt.Errorf("no free address left in %s", a.prefix)
}

func (a *Book) take(id string, ip netip.Addr) {
	a.byID[id] = ip
	a.owner[ip] = id
}

// Restore gives instance id back the address it had, if no other holds it.
func (a *Book) Restore(id, addr string) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !a.usable(ip) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.owner[ip] != "" {
		return
	}
	if old, ok := a.byID[id]; ok {
		delete(a.owner, old)
	}
	a.take(id, ip)
	if ip.Compare(a.next) >= 0 {
		a.next = ip.Next()
	}
}

// Release frees instance id's address.
func (a *Book) Release(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byID[id]; ok {
		delete(a.byID, id)
		delete(a.owner, ip)
	}
}

// CIDR is ip with the network's prefix length, as the static plugin takes it.
func (a *Book) CIDR(ip netip.Addr) string {
	return netip.PrefixFrom(ip, a.prefix.Bits()).String()
}

// Gateway is the subnet's first usable address, the host side's.
func (a *Book) Gateway() netip.Addr { return a.gateway }
