package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestListenersAuthenticate starts etcd as the state folders made before
// issue 19 had it (plain-HTTP peer port), keeps a key in it, then starts
// the cluster on that folder and checks that etcd's data is kept, its member
// now advertises the TLS peer URL, its peer port answers nothing without the
// peer certificate, and every listener of every component asks for
// credentials.
func TestListenersAuthenticate(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := t.TempDir()
	p, err := ensurePKI(filepath.Join(state, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	ports, err := pickPorts(filepath.Join(state, "ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	etcdURL := "https://127.0.0.1:" + strconv.Itoa(ports.Etcd)
	client, err := etcdClient(p)
	if err != nil {
		t.Fatal(err)
	}

	// The etcd of an old state folder.
	httpPeer := "http://127.0.0.1:" + strconv.Itoa(ports.EtcdPeer)
	old, err := startComponent("etcd", filepath.Join(binDir, "etcd"), []string{
		"--name", etcdName, "--data-dir", filepath.Join(state, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", httpPeer, "--initial-advertise-peer-urls", httpPeer,
		"--initial-cluster", etcdName + "=" + httpPeer,
		"--cert-file", p.cert("etcd-server"), "--key-file", p.key("etcd-server"),
		"--client-cert-auth", "--trusted-ca-file", p.cert(etcdCA),
	}, state, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("/spoteci-test/kept"))
	value := base64.StdEncoding.EncodeToString([]byte("before the upgrade"))
	for {
		err := etcdCall(ctx, client, etcdURL+"/v3/kv/put", map[string]string{"key": key, "value": value}, nil)
		if err == nil {
			break
		}
		if old.exited() || ctx.Err() != nil {
			old.stop(ctx, stopGrace)
			t.Fatalf("the old etcd took no key: %v%s", err, tail(old.logPath))
		}
		time.Sleep(pollInterval)
	}
	if peer := get(t, &http.Client{Timeout: 5 * time.Second}, "http://127.0.0.1:"+strconv.Itoa(ports.EtcdPeer)+"/members"); peer != http.StatusOK {
		t.Errorf("the old etcd's peer port answered /members with %d, want 200 (the hole of issue 19)", peer)
	}
	if _, err := old.stop(ctx, stopGrace); err != nil {
		t.Fatal(err)
	}

	c := startCluster(t, ctx, state)
	var list struct {
		Members []etcdMember `json:"members"`
	}
	if err := etcdCall(ctx, client, etcdURL+"/v3/cluster/member/list", struct{}{}, &list); err != nil {
		t.Fatal(err)
	}
	peerURL := "https://127.0.0.1:" + strconv.Itoa(ports.EtcdPeer)
	if len(list.Members) != 1 || strings.Join(list.Members[0].PeerURLs, ",") != peerURL {
		t.Errorf("etcd's members = %+v, want one with peer URL %s", list.Members, peerURL)
	}
	var kv struct {
		Kvs []struct{ Value string } `json:"kvs"`
	}
	if err := etcdCall(ctx, client, etcdURL+"/v3/kv/range", map[string]string{"key": key}, &kv); err != nil {
		t.Fatal(err)
	}
	if len(kv.Kvs) != 1 || kv.Kvs[0].Value != value {
		t.Errorf("the key of the old etcd reads %+v after the upgrade, want %q", kv.Kvs, value)
	}

	t.Run("etcd peer port", func(t *testing.T) {
		url := "https://127.0.0.1:" + strconv.Itoa(ports.EtcdPeer) + "/members"
		ca := pool(t, p.cert(etcdCA))
		for _, tc := range []struct {
			who  string
			cert string // "" for none
		}{
			{"no certificate", ""},
			{"the cluster CA's admin certificate", "admin"},
			{"the apiserver's etcd client certificate", "apiserver-etcd-client"},
		} {
			cfg := &tls.Config{RootCAs: ca, MinVersion: tls.VersionTLS12}
			if tc.cert != "" {
				cfg.Certificates = []tls.Certificate{keyPair(t, p, tc.cert)}
			}
			if code := get(t, tlsClient(cfg), url); code != 0 {
				t.Errorf("with %s: the peer port answered %d, want no answer", tc.who, code)
			}
		}
		if code := get(t, &http.Client{Timeout: 5 * time.Second}, strings.Replace(url, "https", "http", 1)); code >= 200 && code < 400 {
			t.Errorf("plain HTTP: the peer port answered %d", code)
		}
		peer := tlsClient(&tls.Config{RootCAs: ca, Certificates: []tls.Certificate{keyPair(t, p, "etcd-peer")}, MinVersion: tls.VersionTLS12})
		if code := get(t, peer, url); code != http.StatusOK {
			t.Errorf("with the peer certificate: the peer port answered %d, want 200", code)
		}
	})

	t.Run("every listener", func(t *testing.T) {
		found := map[string]string{} // address: component
		for name, pid := range c.PIDs() {
			for _, addr := range listeners(t, pid) {
				found[addr.String()] = name
				if !addr.Addr().IsLoopback() {
					t.Errorf("%s listens on %s, beyond loopback", name, addr)
				}
			}
		}
		for _, want := range []int{ports.Etcd, ports.EtcdPeer, ports.APIServer} {
			if found["127.0.0.1:"+strconv.Itoa(want)] == "" {
				t.Errorf("127.0.0.1:%d is not among the listeners found %v", want, found)
			}
		}
		anonymous := tlsClient(&tls.Config{InsecureSkipVerify: true})
		plain := &http.Client{Timeout: 5 * time.Second}
		for addr, name := range found {
			for _, path := range []string{"/members", "/metrics", "/debug/pprof/", "/v3/kv/range", "/api/v1/secrets", "/configz"} {
				for scheme, client := range map[string]*http.Client{"https": anonymous, "http": plain} {
					url := scheme + "://" + addr + path
					if code := get(t, client, url); code >= 200 && code < 400 {
						t.Errorf("%s: %s answered %d without credentials", name, url, code)
					}
				}
			}
		}
		t.Logf("listeners: %v", found)
	})
}

// get returns the status of a GET, 0 when there is no answer.
func get(t *testing.T, client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func pool(t *testing.T, path string) *x509.CertPool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	return pool
}

func keyPair(t *testing.T, p pkiFiles, name string) tls.Certificate {
	cert, err := tls.LoadX509KeyPair(p.cert(name), p.key(name))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// listeners are the TCP addresses pid listens on: its sockets' inodes
// looked up in the kernel's tables.
func listeners(t *testing.T, pid int) []netip.AddrPort {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var addrs []netip.AddrPort
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			addrs = append(addrs, procAddr(t, fields[1]))
		}
		f.Close()
	}
	return addrs
}

// procAddr decodes an address of /proc/net/tcp{,6}: the IP in 32-bit words
// of host (little-endian) order, then the port, in hex.
func procAddr(t *testing.T, s string) netip.AddrPort {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip, ok := netip.AddrFromSlice(raw)
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}
