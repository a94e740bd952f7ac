package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/spoteci/spoteci/internal/atomicfile"
	"github.com/spoteci/spoteci/internal/runtime/ipam"
)

// Each instance is one network namespace, held by the runtime (so it
// outlives every process in it, as a pod sandbox does; see nsPath), plugged
// into the host by the standard CNI plugins (ptp and static, Debian's
// containernetworking-plugins, with the address from package ipam): its own IP,
// reachable from the host, shared by its containers.

// cniPluginDirs are where the CNI plugins are looked for.
var cniPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// ptp rather than bridge: a Linux bridge takes at most 1,024 ports, fewer
// than the instances a machine runs; ptp gives each instance a veth pair and
// a host route, without a limit, and the host reaches every instance.

// networkClaims holds one file per network in use, naming the runtime
// folder that owns it: several runtimes (tests, state folders) run side by
// side, each on its own /16.
const networkClaims = "/run/spoteci/networks"

// maxNetworks bounds the networks: 10.88.0.0/16 to 10.187.0.0/16.
const maxNetworks = 100

// Network is the name and subnet of a runtime's instances.
type Network struct {
	Name   string // CNI network name
	Subnet string // CIDR the instances' IPs come from
}

// Forward makes an address that instances know (a cluster service, such
// as the "kubernetes" service's 10.0.0.1:443) reach a loopback address of
// the host (the local apiserver), as kube-proxy does for a node's pods: a
// DNAT rule for packets from the instances' subnet, and route_localnet on
// each instance's host interface so that the host accepts them.
// Nothing listens beyond loopback.
type Forward struct {
	From string // IP:PORT seen from instances
	To   string // 127.0.0.1:PORT on the host
}

// network sets up and tears down the sandboxes' networks of one runtime:
// each instance's namespace (held by netns) plugged in by the CNI plugins
// with an address of ipam's, the host guarded by rules.
type network struct {
	dir  string // runtime folder
	net  Network
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList

	rules *hostRules   // forwards and firewall (firewall.go)
	netns *netnsHolder // the instances' network namespaces (netns.go)
	ipam  *ipam.Book   // the instances' addresses
}

func newNetwork(dir string, forwards []Forward) (*network, error) {
	n, err := claimNetwork(dir)
	if err != nil {
		return nil, err
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       n.Name,
		"plugins": []any{map[string]any{
			"type": "ptp", "ipMasq": false,
			// The address comes from the runtime (package ipam), in CNI_ARGS.
			"ipam": map[string]any{
				"type":   "static",
				"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		}},
	}
	raw, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("CNI configuration: %w", err)
	}
	addrs, err := ipam.New(n.Subnet)
	if err != nil {
		return nil, err
	}
	nw := &network{dir: dir, net: n, ipam: addrs,
		rules: &hostRules{net: n, forwards: forwards}, netns: &netnsHolder{dir: dir, held: map[string]*os.File{}},
		// An exec of our own: with nil, libcni makes its default on first
		// use, unguarded, a data race between concurrent launches.
		cni: libcni.NewCNIConfigWithCacheDir(cniPluginDirs, filepath.Join(dir, "cni", "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		list: list}
	if err := nw.rules.set(); err != nil {
		return nil, err
	}
	return nw, nil
}

// claimNetwork returns the network of the runtime in dir: the one it had,
// or the first free one (free: unclaimed, or claimed by a folder that is
// gone).
func claimNetwork(dir string) (Network, error) {
	saved := filepath.Join(dir, "network.json")
	var n Network
	if b, err := os.ReadFile(saved); err == nil {
		if err := json.Unmarshal(b, &n); err != nil {
			return n, fmt.Errorf("reading %s: %w", saved, err)
		}
		if n.Name != "" && n.Subnet != "" {
			return n, nil
		}
		// Written by an older spoteci: claim one afresh.
	}
	if err := os.MkdirAll(networkClaims, 0o755); err != nil {
		return n, fmt.Errorf("network: %w", err)
	}
	for k := range maxNetworks {
		ours, err := takeClaim(filepath.Join(networkClaims, fmt.Sprint(k)), dir)
		if err != nil {
			return n, err
		}
		if !ours {
			continue
		}
		n = Network{Name: fmt.Sprintf("spoteci%d", k), Subnet: fmt.Sprintf("10.%d.0.0/16", 88+k)}
		b, _ := json.Marshal(n)
		if err := atomicfile.Write(saved, b, 0o644); err != nil {
			return n, err
		}
		return n, nil
	}
	return n, fmt.Errorf("network: all %d networks are claimed (see %s)", maxNetworks, networkClaims)
}

// takeClaim makes the claim file name dir if it is free: unclaimed, claimed
// by dir already (a crash before network.json was written), or claimed by a
// folder that is gone. It reports whether the claim is dir's now.
func takeClaim(claim, dir string) (bool, error) {
	f, err := os.OpenFile(claim, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		_, err = f.WriteString(dir)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err == nil, err
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("network: %w", err)
	}
	b, rerr := os.ReadFile(claim)
	owner := strings.TrimSpace(string(b))
	if rerr == nil && owner != dir && exists(filepath.Join(owner, "network.json")) {
		return false, nil // in use by another runtime
	}
	if err := atomicfile.Write(claim, []byte(dir), 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// release gives the network back and deletes its forwarding rules.
func (n *network) release() error {
	claim := filepath.Join(networkClaims, strings.TrimPrefix(n.net.Name, "spoteci"))
	if owner, err := os.ReadFile(claim); err == nil && strings.TrimSpace(string(owner)) == n.dir {
		os.Remove(claim)
	}
	os.Remove(filepath.Join(n.dir, "network.json"))
	return n.rules.clear()
}

// setUp creates the namespace of instance id (if it has none) and plugs it
// in; it returns the instance's IP. Idempotent: a second call returns the
// IP it got the first time. An instance that had an address (ip) gets it
// again if it is free: a namespace made anew after one was lost with its
// containers while no runtime held it.
func (n *network) setUp(ctx context.Context, id, ip string, clock *launchClock) (string, error) {
	path, fresh, err := n.netns.namespace(id)
	if err != nil {
		return "", err
	}
	clock.lap(phaseNetNS)
	defer clock.lap(phaseCNI)
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0"}
	res, err := n.cni.GetNetworkListCachedResult(n.list, rt)
	if err != nil || res == nil {
		res = nil
	} else if _, err := ipOf(res); err != nil {
		res = nil
	}
	if res != nil && fresh {
		// The plugins set up a namespace that is gone: their cache goes
		// first.
		n.cni.DelNetworkList(ctx, n.list, &libcni.RuntimeConf{ContainerID: id, IfName: "eth0"})
		res = nil
	}
	if res == nil {
		addr, err := n.ipam.Lease(id, ip)
		if err != nil {
			return "", fmt.Errorf("network of %s: %w", id, err)
		}
		rt.Args = [][2]string{{"IgnoreUnknown", "1"}, {"IP", n.ipam.CIDR(addr)}, {"GATEWAY", n.ipam.Gateway().String()}}
		if res, err = n.cni.AddNetworkList(ctx, n.list, rt); err != nil {
			return "", fmt.Errorf("network of %s: %w", id, err)
		}
	}
	// Also on a cached result: a launch that failed here before is retried.
	if err := n.rules.guardHostSide(res); err != nil {
		return "", fmt.Errorf("network of %s: %w", id, err)
	}
	return ipOf(res)
}

func ipOf(res types.Result) (string, error) {
	conv, err := types100.NewResultFromResult(res)
	if err != nil {
		return "", err
	}
	for _, ip := range conv.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP.String(), nil
		}
	}
	return "", errors.New("the network plugin gave no IPv4 address")
}

// tearDown unplugs instance id and lets its namespace go. Idempotent.
func (n *network) tearDown(ctx context.Context, id string) error {
	f := n.netns.unhold(id)
	pin := n.netns.pinPath(id)
	path := ""
	switch {
	case f != nil:
		path = fdPath(f)
	case isNetNS(pin):
		path = pin
	}
	// With no namespace (gone with its containers), the plugins' cache
	// still has to go.
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0"}
	if err := n.cni.DelNetworkList(ctx, n.list, rt); err != nil && path != "" {
		if f != nil {
			n.netns.hold(id, f) // for the next try
		}
		return fmt.Errorf("network of %s: %w", id, err)
	}
	if f != nil {
		f.Close()
	}
	n.ipam.Release(id)
	return unpin(pin)
}
