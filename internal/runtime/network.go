package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Each instance is one network namespace, held by the runtime (so it
// outlives every process in it, as a pod sandbox does; see nsPath), plugged
// into the host by the standard CNI plugins (ptp and static, Debian's
// containernetworking-plugins, with the address from ipam.go): its own IP,
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

// network sets up and tears down the sandboxes' networks of one runtime.
type network struct {
	dir      string // runtime folder
	net      Network
	cni      *libcni.CNIConfig
	list     *libcni.NetworkConfigList
	forwards []Forward

	mu   sync.Mutex
	held map[string]*os.File // the instances' network namespaces (see nsPath)
	ipam *ipam               // the instances' addresses
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
			// The address comes from the runtime (ipam.go), in CNI_ARGS.
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
	addrs, err := newIPAM(n.Subnet)
	if err != nil {
		return nil, err
	}
	nw := &network{dir: dir, net: n, forwards: forwards, held: map[string]*os.File{}, ipam: addrs,
		// An exec of our own: with nil, libcni makes its default on first
		// use, unguarded, a data race between concurrent launches.
		cni: libcni.NewCNIConfigWithCacheDir(cniPluginDirs, filepath.Join(dir, "cni", "cache"), &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}),
		list: list}
	if err := nw.setForwards(); err != nil {
		return nil, err
	}
	if err := nw.setFirewall(); err != nil {
		return nil, err
	}
	return nw, nil
}

// forwardComment marks the rules of a network, so that they can be found
// again (a restart with another apiserver port replaces them).
func (n *network) forwardComment() string { return "spoteci " + n.net.Name }

// setForwards replaces the network's DNAT rules by those of n.forwards.
func (n *network) setForwards() error {
	if err := n.clearForwards(); err != nil {
		return err
	}
	for _, f := range n.forwards {
		ip, port, err := net.SplitHostPort(f.From)
		if err != nil {
			return fmt.Errorf("forward %s: %w", f.From, err)
		}
		to, _, err := net.SplitHostPort(f.To)
		if err != nil || !net.ParseIP(to).IsLoopback() {
			return fmt.Errorf("forward %s=%s: the target must be a loopback IP:PORT", f.From, f.To)
		}
		if err := iptablesIn("nat", "-A", "PREROUTING", "-s", n.net.Subnet, "-d", ip, "-p", "tcp", "--dport", port,
			"-m", "comment", "--comment", n.forwardComment(), "-j", "DNAT", "--to-destination", f.To); err != nil {
			return fmt.Errorf("forward %s=%s: %w", f.From, f.To, err)
		}
	}
	return nil
}

// clearForwards deletes the network's DNAT rules.
func (n *network) clearForwards() error {
	return clearRules("nat", "PREROUTING", n.forwardComment())
}

// The firewall keeps instances off the host, as a pod in a cluster is: a
// container with NET_RAW can send a packet to 127.0.0.1 through its
// gateway, and route_localnet (which the DNAT to the apiserver needs) makes
// the host take it (CVE-2020-8558). Two DROP rules at the top of INPUT,
// in the spirit of Kubernetes' KUBE-FIREWALL:
//
//   - nothing arriving on an interface other than lo reaches 127.0.0.0/8
//     unless a forward rewrote it (conntrack state DNAT);
//   - nothing from the instances' subnet opens a connection to any of the
//     host's addresses unless a forward rewrote it; replies to what the host
//     opened (ESTABLISHED, RELATED) still come back.
//
// Source addresses cannot be forged past the second rule: the host's end
// of each instance's veth has strict reverse-path filtering (guardHostSide).

// firewallComment marks the network's filter rules.
func (n *network) firewallComment() string { return "spoteci " + n.net.Name + " firewall" }

// firewallRules are the network's filter INPUT rules, in order.
func (n *network) firewallRules() [][]string {
	c := []string{"-m", "comment", "--comment", n.firewallComment()}
	return [][]string{
		append([]string{"!", "-i", "lo", "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "DNAT"}, append(c, "-j", "DROP")...),
		append([]string{"-s", n.net.Subnet, "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT"}, append(c, "-j", "DROP")...),
	}
}

// setFirewall puts the network's filter rules first in INPUT, each one
// that is not there already: at a restart the instances that run on are
// never without them.
func (n *network) setFirewall() error {
	rules := n.firewallRules()
	for i := len(rules) - 1; i >= 0; i-- {
		if iptablesIn("filter", append([]string{"-C", "INPUT"}, rules[i]...)...) == nil {
			continue
		}
		if err := iptablesIn("filter", append([]string{"-I", "INPUT", "1"}, rules[i]...)...); err != nil {
			return fmt.Errorf("firewall of %s: %w", n.net.Name, err)
		}
	}
	return nil
}

// clearRules deletes the rules of table's chain that carry comment.
func clearRules(table, chain, comment string) error {
	out, err := exec.Command("iptables", "-w", "-t", table, "-S", chain).Output()
	if err != nil {
		return fmt.Errorf("listing iptables rules (is iptables installed? hack/deps.sh): %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A "+chain+" ") || !strings.Contains(line, `"`+comment+`"`) {
			continue
		}
		args, err := splitRule(strings.TrimPrefix(line, "-A "))
		if err != nil {
			return err
		}
		if err := iptablesIn(table, append([]string{"-D"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// splitRule splits a rule as iptables -S prints it (quoted comments).
func splitRule(rule string) ([]string, error) {
	var out []string
	for rule = strings.TrimSpace(rule); rule != ""; rule = strings.TrimSpace(rule) {
		if rule[0] == '"' {
			end := strings.IndexByte(rule[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("iptables rule %q: unbalanced quote", rule)
			}
			out = append(out, rule[1:end+1])
			rule = rule[end+2:]
			continue
		}
		word, rest, _ := strings.Cut(rule, " ")
		out = append(out, word)
		rule = rest
	}
	return out, nil
}

func iptablesIn(table string, args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", table}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -t %s %s: %v: %s", table, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// guardHostSide sets the host's end of an instance's veth pair: strict
// reverse-path filtering (a packet that claims another source than the
// instance's own is dropped), no IPv6 (the instance would reach the host's
// link-local address, which the IPv4 firewall does not cover), and, when
// there are forwards, route_localnet, so that the packets DNATed to
// 127.0.0.1 are not dropped as martians; set on that interface only, not on
// the host's others.
func (n *network) guardHostSide(res types.Result) error {
	conv, err := types100.NewResultFromResult(res)
	if err != nil {
		return err
	}
	for _, iface := range conv.Interfaces {
		if iface.Sandbox != "" { // the instance's end
			continue
		}
		set := map[string]string{
			"net/ipv4/conf/%s/rp_filter":    "1",
			"net/ipv6/conf/%s/disable_ipv6": "1",
		}
		if len(n.forwards) > 0 {
			set["net/ipv4/conf/%s/route_localnet"] = "1"
		}
		for key, value := range set {
			path := filepath.Join("/proc/sys", fmt.Sprintf(key, iface.Name))
			if err := os.WriteFile(path, []byte(value), 0o644); err != nil && !(errors.Is(err, fs.ErrNotExist) && strings.Contains(key, "ipv6")) {
				return fmt.Errorf("guarding the host side of %s: %w", iface.Name, err)
			}
		}
	}
	return nil
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
	if err := clearRules("filter", "INPUT", n.firewallComment()); err != nil {
		return err
	}
	return n.clearForwards()
}

// An instance's network namespace is held by an open file of the runtime,
// not pinned by a bind mount: a mount on the host is read again by every
// later container start (runc parses the host's mountinfo several times a
// start), so a pin per instance made each start dearer the more instances
// ran. runc and the CNI plugins open it by the path of that file,
// /proc/<runtime's pid>/fd/<n>. While a container of the instance runs,
// its processes hold the namespace too: a runtime that starts again (a
// restart of spoteci) holds it again from a running container's
// /proc/<pid>/ns/net (adoptNetNS). One whose containers all ended meanwhile
// (a restart's back-off) lost it with them, as a kubelet's pod loses its
// sandbox when the pause container dies: the next launch makes a new one
// and asks the plugins for the same IP.

// pinPath is where an earlier runtime pinned the namespace of instance id
// with a bind mount; such a pin is taken over (held, and unmounted).
func (n *network) pinPath(id string) string { return filepath.Join(n.dir, "netns", id) }

// nsPath is the path of instance id's network namespace while the runtime
// holds it.
func (n *network) nsPath(id string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f, ok := n.held[id]
	if !ok {
		return "", false
	}
	return fdPath(f), true
}

// fdPath is the path by which another process opens what f is.
func fdPath(f *os.File) string { return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd()) }

// holds reports whether the runtime holds instance id's network namespace.
func (n *network) holds(id string) bool {
	_, ok := n.nsPath(id)
	return ok
}

// hold keeps f, instance id's network namespace; one held already is kept
// and f closed.
func (n *network) hold(id string, f *os.File) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.held[id]; ok {
		f.Close()
		return
	}
	n.held[id] = f
}

// unhold stops holding instance id's namespace and returns its file, nil if
// none was held.
func (n *network) unhold(id string) *os.File {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := n.held[id]
	delete(n.held, id)
	return f
}

// closeAll lets every namespace go: those with a running container live on
// in it.
func (n *network) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, f := range n.held {
		f.Close()
		delete(n.held, id)
	}
}

// namespace returns instance id's namespace, held: the one held already,
// one pinned by an earlier runtime, or a new one (fresh).
func (n *network) namespace(id string) (path string, fresh bool, err error) {
	if path, ok := n.nsPath(id); ok {
		return path, false, nil
	}
	if took, err := n.takeOverPin(id); err != nil || took {
		path, _ := n.nsPath(id)
		return path, false, err
	}
	f, err := newNetNS()
	if err != nil {
		return "", false, fmt.Errorf("network namespace of %s: %w", id, err)
	}
	n.hold(id, f)
	path, _ = n.nsPath(id)
	return path, true, nil
}

// takeOverPin holds the namespace that an earlier runtime pinned for
// instance id, if any, and removes the pin.
func (n *network) takeOverPin(id string) (bool, error) {
	pin := n.pinPath(id)
	if !isNetNS(pin) {
		return false, nil
	}
	f, err := os.Open(pin)
	if err != nil {
		return false, fmt.Errorf("network namespace of %s: %w", id, err)
	}
	n.hold(id, f)
	return true, unpin(pin)
}

// unpin removes a bind-mount pin of an earlier runtime.
func unpin(pin string) error {
	if err := unix.Unmount(pin, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", pin, err)
	}
	if err := os.Remove(pin); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// adoptNetNS holds the network namespace of instance id from process pid,
// a running container's first process in cgroup cg (checked, so that a
// reused pid is not taken for it).
func (n *network) adoptNetNS(id string, pid int, cg string) error {
	if n.holds(id) {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	if in, err := inCgroup(pid, cg); err != nil {
		return err
	} else if !in {
		return errNotOurs
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	// Still alive once the namespace is open: the pid was not reused
	// between the check and the open.
	if alive, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 0); err != nil || alive != 0 {
		f.Close()
		return errNotOurs
	}
	n.hold(id, f)
	return nil
}

// setUp creates the namespace of instance id (if it has none) and plugs it
// in; it returns the instance's IP. Idempotent: a second call returns the
// IP it got the first time. An instance that had an address (ip) gets it
// again if it is free: a namespace made anew after one was lost with its
// containers while no runtime held it.
func (n *network) setUp(ctx context.Context, id, ip string, clock *launchClock) (string, error) {
	path, fresh, err := n.namespace(id)
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
		addr, err := n.ipam.lease(id, ip)
		if err != nil {
			return "", fmt.Errorf("network of %s: %w", id, err)
		}
		rt.Args = [][2]string{{"IgnoreUnknown", "1"}, {"IP", n.ipam.cidr(addr)}, {"GATEWAY", n.ipam.gateway.String()}}
		if res, err = n.cni.AddNetworkList(ctx, n.list, rt); err != nil {
			return "", fmt.Errorf("network of %s: %w", id, err)
		}
	}
	// Also on a cached result: a launch that failed here before is retried.
	if err := n.guardHostSide(res); err != nil {
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
	f := n.unhold(id)
	pin := n.pinPath(id)
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
			n.hold(id, f) // for the next try
		}
		return fmt.Errorf("network of %s: %w", id, err)
	}
	if f != nil {
		f.Close()
	}
	n.ipam.release(id)
	return unpin(pin)
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// newNetNS creates a network namespace with its loopback up and returns it
// open.
//
// The namespace is made on a locked thread that then goes back to the host's
// namespace and to the scheduler. Letting the thread die instead (the usual
// way) kills every child it ever forked with Pdeathsig: the control plane's
// components (issue 19). Only when the way back fails does the thread stay
// locked, so that Go ends it rather than run goroutines in the wrong
// namespace.
func newNetNS() (*os.File, error) {
	type made struct {
		f   *os.File
		err error
	}
	c := make(chan made, 1)
	go func() {
		goruntime.LockOSThread()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		host, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			goruntime.UnlockOSThread()
			c <- made{err: fmt.Errorf("opening the host's network namespace: %w", err)}
			return
		}
		defer unix.Close(host)
		var f *os.File
		err = enterNewNetNS()
		if err == nil {
			f, err = os.Open(self)
		}
		if serr := unix.Setns(host, unix.CLONE_NEWNET); serr != nil {
			// Still locked: the thread ends with this goroutine.
			if f != nil {
				f.Close()
			}
			c <- made{err: errors.Join(err, fmt.Errorf("returning to the host's network namespace: %w", serr))}
			return
		}
		goruntime.UnlockOSThread()
		c <- made{f, err}
	}()
	m := <-c
	return m.f, m.err
}

// enterNewNetNS moves the calling (locked) thread into a new network
// namespace and sets its loopback up.
func enterNewNetNS() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	return loopbackUp()
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}
