package runtime

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestFirewall: an instance reaches a forwarded address (the "kubernetes"
// service's way to the apiserver) and nothing else of the host: a port the
// host listens on, asked at the instance's gateway, does not even refuse.
// The rules go with the runtime.
func TestFirewall(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "forwarded") })}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r := openRuntimeWith(t, t.TempDir(), func(c *Config) {
		c.Forwards = []Forward{{From: "10.96.7.7:80", To: ln.Addr().String()}}
	})
	comment := r.net.rules.firewallComment()
	if rules := filterRules(t); strings.Count(rules, comment) != 2 {
		t.Fatalf("want the network's 2 firewall rules in INPUT:\n%s", rules)
	}
	// The gateway is the default route's next hop.
	script := fmt.Sprintf(`gw=$(ip route | awk '/default/ {print $3}')
wget -q -O - http://10.96.7.7:80/; echo
nc -w 2 $gw %d </dev/null 2>&1; echo "nc exit $?"`, port)
	start(t, r, Instance{ID: "fw", Containers: []Container{busybox("main", script)}})
	waitState(t, r, "fw", "main", StateTerminated)
	got := readLog(t, r, "fw", "main")
	if !strings.Contains(got, "forwarded") {
		t.Errorf("the forwarded address did not answer:\n%s", got)
	}
	if strings.Contains(got, "refused") || !strings.Contains(got, "timed out") {
		t.Errorf("the host's port %d, asked at the gateway, answered (want a timeout):\n%s", port, got)
	}
	r.Destroy(t.Context())
	if rules := filterRules(t); strings.Contains(rules, comment) {
		t.Errorf("the firewall rules outlived the runtime:\n%s", rules)
	}
}

func filterRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "filter", "-S", "INPUT").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S INPUT: %v\n%s", err, out)
	}
	return string(out)
}
