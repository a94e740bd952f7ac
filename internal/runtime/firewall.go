package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// hostRules are what a network sets on the host: the forwards (DNAT rules)
// that make cluster addresses reach loopback services, the firewall that
// keeps the instances off the host's other listeners, and the guard on the
// host's end of each instance's veth.
type hostRules struct {
	net      Network
	forwards []Forward
}

// set puts the network's forwards and firewall in place.
func (h *hostRules) set() error {
	if err := h.setForwards(); err != nil {
		return err
	}
	return h.setFirewall()
}

// clear deletes the network's firewall and forwards.
func (h *hostRules) clear() error {
	if err := clearRules("filter", "INPUT", h.firewallComment()); err != nil {
		return err
	}
	return h.clearForwards()
}

// forwardComment marks the rules of a network, so that they can be found
// again (a restart with another apiserver port replaces them).
func (h *hostRules) forwardComment() string { return "spoteci " + h.net.Name }

// setForwards replaces the network's DNAT rules by those of h.forwards.
func (h *hostRules) setForwards() error {
	if err := h.clearForwards(); err != nil {
		return err
	}
	for _, f := range h.forwards {
		ip, port, err := net.SplitHostPort(f.From)
		if err != nil {
			return fmt.Errorf("forward %s: %w", f.From, err)
		}
		to, _, err := net.SplitHostPort(f.To)
		if err != nil || !net.ParseIP(to).IsLoopback() {
			return fmt.Errorf("forward %s=%s: the target must be a loopback IP:PORT", f.From, f.To)
		}
		if err := iptablesIn("nat", "-A", "PREROUTING", "-s", h.net.Subnet, "-d", ip, "-p", "tcp", "--dport", port,
			"-m", "comment", "--comment", h.forwardComment(), "-j", "DNAT", "--to-destination", f.To); err != nil {
			return fmt.Errorf("forward %s=%s: %w", f.From, f.To, err)
		}
	}
	return nil
}

// clearForwards deletes the network's DNAT rules.
func (h *hostRules) clearForwards() error {
	return clearRules("nat", "PREROUTING", h.forwardComment())
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
func (h *hostRules) firewallComment() string { return "spoteci " + h.net.Name + " firewall" }

// firewallRules are the network's filter INPUT rules, in order.
func (h *hostRules) firewallRules() [][]string {
	c := []string{"-m", "comment", "--comment", h.firewallComment()}
	return [][]string{
		append([]string{"!", "-i", "lo", "-d", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "DNAT"}, append(c, "-j", "DROP")...),
		append([]string{"-s", h.net.Subnet, "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT"}, append(c, "-j", "DROP")...),
	}
}

// setFirewall puts the network's filter rules first in INPUT, each one
// that is not there already: at a restart the instances that run on are
// never without them.
func (h *hostRules) setFirewall() error {
	rules := h.firewallRules()
	for i := len(rules) - 1; i >= 0; i-- {
		if iptablesIn("filter", append([]string{"-C", "INPUT"}, rules[i]...)...) == nil {
			continue
		}
		if err := iptablesIn("filter", append([]string{"-I", "INPUT", "1"}, rules[i]...)...); err != nil {
			return fmt.Errorf("firewall of %s: %w", h.net.Name, err)
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
func (h *hostRules) guardHostSide(res types.Result) error {
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
		if len(h.forwards) > 0 {
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
