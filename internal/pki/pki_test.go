package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/util/cert"
)

func TestIssueVerifiesAgainstItsCA(t *testing.T) {
	now := time.Now()
	ca, caKey, err := NewCA(Spec{Config: cert.Config{CommonName: "test CA", NotBefore: now.Add(-time.Hour)}, NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA: IsCA %v, key usage %v", ca.IsCA, ca.KeyUsage)
	}
	leaf, _, err := Issue(Spec{Config: cert.Config{CommonName: "server", Organization: []string{"org"},
		AltNames: AltNames("127.0.0.1", "localhost"), Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: now.Add(-time.Hour)}, NotAfter: now.Add(time.Hour)}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 1 {
		t.Errorf("IPs %v, DNS names %v: want one of each", leaf.IPAddresses, leaf.DNSNames)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a server certificate verifies for client authentication")
	}
}

func TestSelfSigned(t *testing.T) {
	c, err := SelfSigned(Spec{Config: cert.Config{CommonName: "node", AltNames: AltNames("node", "10.0.0.7"),
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: time.Now().Add(-time.Hour)}, NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.CheckSignature(c.Leaf.SignatureAlgorithm, c.Leaf.RawTBSCertificate, c.Leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if err := c.Leaf.VerifyHostname("10.0.0.7"); err != nil {
		t.Error(err)
	}
}

// Keys are written in PKCS #8, and read in PKCS #8 and SEC 1 (the forms
// state folders and Secrets already hold); a missing file says so.
func TestFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, err := NewCA(Spec{Config: cert.Config{CommonName: "ca"}, NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := WriteFiles(crt, key, ca, caKey); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(data); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key file is not PKCS #8: %.30q", data)
	}
	if info, err := os.Stat(key); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", info.Mode(), err)
	}
	got, gotKey, err := LoadFiles(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(ca) || !caKey.PublicKey.Equal(gotKey.Public()) {
		t.Error("loaded pair differs from the written one")
	}
	sec1, err := EncodeKey(caKey)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseKey(sec1); err != nil || !caKey.PublicKey.Equal(k.Public()) {
		t.Errorf("SEC 1 key: %v", err)
	}
	if _, _, err := LoadFiles(filepath.Join(dir, "none.crt"), key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if c, err := ParseCert(EncodeCerts(got, ca)); err != nil || !c.Equal(ca) {
		t.Errorf("ParseCert: %v", err)
	}
}
