package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Validity of everything we issue: long, because this CA only ever lives in one
// state folder on one machine, and an expired local cluster is a puzzling failure.
const certValidity = 10 * 365 * 24 * time.Hour

// A leaf certificate issued by one of the CAs.
type certSpec struct {
	name  string // file stem in the pki folder
	ca    string // stem of the issuing CA: clusterCA or etcdCA
	cn    string // user name for client certificates
	orgs  []string
	usage []x509.ExtKeyUsage
	dns   []string
	ips   []net.IP
}

// KubernetesServiceIP is the first address of --service-cluster-ip-range: the
// in-cluster address of the "kubernetes" service, which the serving
// certificate must name.
const KubernetesServiceIP = "10.0.0.1"

var serviceIP = net.ParseIP(KubernetesServiceIP)

const serviceCIDR = "10.0.0.0/24"

var loopback = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// The two CAs, as kubeadm has them: etcd trusts only its own, so no
// certificate the cluster CA signs (the controller-manager signs CSRs with
// it) opens etcd's client or peer port.
const (
	clusterCA = "ca"
	etcdCA    = "etcd-ca"
)

func leafSpecs() []certSpec {
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return []certSpec{
		{name: "apiserver", cn: "kube-apiserver", usage: server,
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
			ips: append([]net.IP{serviceIP}, loopback...)},
		// Client usage too, as kubeadm's: etcd's gateway dials etcd's own
		// client port with it.
		{name: "etcd-server", ca: etcdCA, cn: "etcd", usage: append(server, client...),
			dns: []string{"localhost"}, ips: loopback},
		// etcd's peer listener serves it and a member dials its peers with
		// it (kubeadm's etcd/peer): TLS with client certificates both ways.
		{name: "etcd-peer", ca: etcdCA, cn: "etcd-peer", usage: append(server, client...),
			dns: []string{"localhost"}, ips: loopback},
		{name: "apiserver-etcd-client", ca: etcdCA, cn: "kube-apiserver-etcd-client", usage: client},
		// The apiserver presents this to kubelets (the virtual node) for logs and exec.
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client",
			orgs: []string{"system:masters"}, usage: client},
		// system:masters is bound to cluster-admin by the RBAC bootstrap policy.
		{name: "admin", cn: "spoteci-admin", orgs: []string{"system:masters"}, usage: client},
		// These user names are the subjects of the default RBAC bindings.
		{name: "controller-manager", cn: "system:kube-controller-manager", usage: client},
		{name: "scheduler", cn: "system:kube-scheduler", usage: client},
	}
}

// issuer is the stem of the CA that issues s.
func (s certSpec) issuer() string {
	if s.ca == "" {
		return clusterCA
	}
	return s.ca
}

// pki is the set of files in <state>/pki.
type pki struct{ dir string }

func (p pki) cert(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p pki) key(name string) string  { return filepath.Join(p.dir, name+".key") }
func (p pki) saKey() string           { return filepath.Join(p.dir, "sa.key") }
func (p pki) saPub() string           { return filepath.Join(p.dir, "sa.pub") }

// ensurePKI creates what is missing in dir and keeps what exists, so a restarted
// cluster keeps its identity (and the kubeconfigs handed out stay valid).
// A new CA means every leaf it issues is issued again, and so does a leaf
// that its CA did not sign (etcd's, made by the cluster CA before etcd had
// a CA of its own) or whose usages changed.
func ensurePKI(dir string) (pki, error) {
	p := pki{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, fmt.Errorf("create pki folder: %w", err)
	}
	type ca struct {
		cert  *x509.Certificate
		key   crypto.Signer
		fresh bool
	}
	cas := map[string]ca{}
	for _, name := range []string{clusterCA, etcdCA} {
		cert, key, err := loadPair(p.cert(name), p.key(name))
		fresh := errors.Is(err, fs.ErrNotExist)
		switch {
		case fresh:
			if cert, key, err = newCA(name); err != nil {
				return p, err
			}
			if err := writePair(p.cert(name), p.key(name), cert, key); err != nil {
				return p, err
			}
		case err != nil:
			return p, fmt.Errorf("load %s: %w", name, err)
		}
		cas[name] = ca{cert, key, fresh}
	}
	for _, s := range leafSpecs() {
		issuer := cas[s.issuer()]
		if !issuer.fresh && current(p.cert(s.name), s, issuer.cert) && exists(p.key(s.name)) {
			continue
		}
		cert, key, err := issue(s, issuer.cert, issuer.key)
		if err != nil {
			return p, fmt.Errorf("issue %s certificate: %w", s.name, err)
		}
		if err := writePair(p.cert(s.name), p.key(s.name), cert, key); err != nil {
			return p, err
		}
	}
	if cas[clusterCA].fresh || !exists(p.saKey()) || !exists(p.saPub()) {
		if err := writeSAKeys(p.saKey(), p.saPub()); err != nil {
			return p, err
		}
	}
	return p, nil
}

// current reports whether the certificate in path exists, ca signed it and
// it has the usages s asks for.
func current(path string, s certSpec, ca *x509.Certificate) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	return err == nil && cert.CheckSignatureFrom(ca) == nil && slices.Equal(cert.ExtKeyUsage, s.usage)
}

func newKey() (*ecdsa.PrivateKey, error) {
	// P-256: supported by every component and by service-account tokens (ES256),
	// and generated in microseconds where RSA takes a noticeable part of a start.
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(name string) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, fmt.Errorf("CA serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "spoteci-" + name},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA: %w", err)
	}
	return cert, key, nil
}

func issue(s certSpec, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, fmt.Errorf("serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  s.usage,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	return cert, key, nil
}

func writeSAKeys(keyPath, pubPath string) error {
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encode service-account public key: %w", err)
	}
	return writePEM(pubPath, "PUBLIC KEY", pub, 0o644)
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) error {
	// Key first: a certificate without its key on disk would be "kept" by ensurePKI.
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", cert.Raw, 0o644)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s: no certificate PEM block", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("%s: no key PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: key of type %T cannot sign", keyPath, k)
	}
	return cert, signer, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
