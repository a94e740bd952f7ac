package cluster

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spoteci/spoteci/internal/pki"
)

func TestEnsurePKIIssuesVerifiableCertsAndKeepsThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := ensurePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]*x509.CertPool{}
	for _, name := range []string{clusterCA, etcdCA} {
		ca, _, err := pki.LoadFiles(p.cert(name), p.key(name))
		if err != nil {
			t.Fatal(err)
		}
		pools[name] = x509.NewCertPool()
		pools[name].AddCert(ca)
	}
	roots := pools[clusterCA]
	for _, s := range leafSpecs() {
		cert, _, err := pki.LoadFiles(p.cert(s.name), p.key(s.name))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// Each CA verifies its own leaves only: etcd trusts no certificate
		// of the cluster CA.
		for name, pool := range pools {
			_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			if (err == nil) != (name == s.issuer()) {
				t.Errorf("%s verifies against %s: %v, want only against %s", s.name, name, err == nil, s.issuer())
			}
		}
		opts := x509.VerifyOptions{Roots: pools[s.issuer()], KeyUsages: s.usage}
		if len(s.dns) > 0 {
			opts.DNSName = s.dns[0]
		}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("%s does not verify against the CA: %v", s.name, err)
		}
	}
	admin, _, _ := pki.LoadFiles(p.cert("admin"), p.key("admin"))
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin organizations = %v, want system:masters", admin.Subject.Organization)
	}
	api, _, _ := pki.LoadFiles(p.cert("apiserver"), p.key("apiserver"))
	if err := api.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("apiserver certificate: %v", err)
	}
	if err := api.VerifyHostname("kubernetes.default.svc"); err != nil {
		t.Errorf("apiserver certificate: %v", err)
	}

	// A second start must keep every file as it is.
	before := readAll(t, dir)
	if _, err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, dir)
	for name, data := range before {
		if !bytes.Equal(data, after[name]) {
			t.Errorf("%s changed on the second ensurePKI", name)
		}
	}

	// A lost leaf is issued again by the same CA.
	if err := os.Remove(p.cert("scheduler")); err != nil {
		t.Fatal(err)
	}
	if _, err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	sched, _, err := pki.LoadFiles(p.cert("scheduler"), p.key("scheduler"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sched.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("re-issued scheduler certificate: %v", err)
	}
}

// A state folder from before etcd had a CA of its own: etcd's certificates,
// signed by the cluster CA, are issued again by the etcd CA; the others stay.
func TestEnsurePKIMovesEtcdToItsOwnCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := ensurePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := pki.LoadFiles(p.cert(clusterCA), p.key(clusterCA))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range leafSpecs() {
		if s.issuer() != etcdCA {
			continue
		}
		cert, key, err := issue(s, ca, caKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFiles(p.cert(s.name), p.key(s.name), cert, key); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{p.cert(etcdCA), p.key(etcdCA), p.cert("etcd-peer"), p.key("etcd-peer")} {
		os.Remove(f)
	}
	before := readAll(t, dir)

	if _, err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	etcd, _, err := pki.LoadFiles(p.cert(etcdCA), p.key(etcdCA))
	if err != nil {
		t.Fatal(err)
	}
	after := readAll(t, dir)
	for _, s := range leafSpecs() {
		cert, _, err := pki.LoadFiles(p.cert(s.name), p.key(s.name))
		if err != nil {
			t.Fatal(err)
		}
		if s.issuer() == etcdCA {
			if err := cert.CheckSignatureFrom(etcd); err != nil {
				t.Errorf("%s is not signed by the etcd CA: %v", s.name, err)
			}
			continue
		}
		if !bytes.Equal(before[s.name+".crt"], after[s.name+".crt"]) {
			t.Errorf("%s changed, want it kept", s.name)
		}
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = data
	}
	return m
}
