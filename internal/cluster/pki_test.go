package cluster

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestEnsurePKIIssuesVerifiableCertsAndKeepsThem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := ensurePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, _, err := loadPair(p.cert("ca"), p.key("ca"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, s := range leafSpecs() {
		cert, _, err := loadPair(p.cert(s.name), p.key(s.name))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		opts := x509.VerifyOptions{Roots: roots, KeyUsages: s.usage}
		if len(s.dns) > 0 {
			opts.DNSName = s.dns[0]
		}
		if _, err := cert.Verify(opts); err != nil {
			t.Errorf("%s does not verify against the CA: %v", s.name, err)
		}
	}
	admin, _, _ := loadPair(p.cert("admin"), p.key("admin"))
	if !slices.Contains(admin.Subject.Organization, "system:masters") {
		t.Errorf("admin organizations = %v, want system:masters", admin.Subject.Organization)
	}
	api, _, _ := loadPair(p.cert("apiserver"), p.key("apiserver"))
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
	sched, _, err := loadPair(p.cert("scheduler"), p.key("scheduler"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sched.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("re-issued scheduler certificate: %v", err)
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
