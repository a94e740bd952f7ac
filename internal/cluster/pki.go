package cluster

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/util/cert"

	"github.com/spoteci/spoteci/internal/pki"
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

// pkiFiles is the set of files in <state>/pki.
type pkiFiles struct{ dir string }

func (p pkiFiles) cert(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p pkiFiles) key(name string) string  { return filepath.Join(p.dir, name+".key") }
func (p pkiFiles) saKey() string           { return filepath.Join(p.dir, "sa.key") }
func (p pkiFiles) saPub() string           { return filepath.Join(p.dir, "sa.pub") }

// ensurePKI creates what is missing in dir and keeps what exists, so a restarted
// cluster keeps its identity (and the kubeconfigs handed out stay valid).
// A new CA means every leaf it issues is issued again, and so does a leaf
// that its CA did not sign (etcd's, made by the cluster CA before etcd had
// a CA of its own) or whose usages changed.
func ensurePKI(dir string) (pkiFiles, error) {
	p := pkiFiles{dir: dir}
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
		crt, key, err := pki.LoadFiles(p.cert(name), p.key(name))
		fresh := errors.Is(err, fs.ErrNotExist)
		switch {
		case fresh:
			if crt, key, err = newCA(name); err != nil {
				return p, err
			}
			if err := pki.WriteFiles(p.cert(name), p.key(name), crt, key); err != nil {
				return p, err
			}
		case err != nil:
			return p, fmt.Errorf("load %s: %w", name, err)
		}
		cas[name] = ca{crt, key, fresh}
	}
	for _, s := range leafSpecs() {
		issuer := cas[s.issuer()]
		if !issuer.fresh && current(p.cert(s.name), s, issuer.cert) && exists(p.key(s.name)) {
			continue
		}
		crt, key, err := issue(s, issuer.cert, issuer.key)
		if err != nil {
			return p, fmt.Errorf("issue %s certificate: %w", s.name, err)
		}
		if err := pki.WriteFiles(p.cert(s.name), p.key(s.name), crt, key); err != nil {
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
	certs, err := cert.CertsFromFile(path)
	return err == nil && certs[0].CheckSignatureFrom(ca) == nil && slices.Equal(certs[0].ExtKeyUsage, s.usage)
}

func newCA(name string) (*x509.Certificate, crypto.Signer, error) {
	now := time.Now()
	ca, key, err := pki.NewCA(pki.Spec{Config: cert.Config{CommonName: "spoteci-" + name,
		NotBefore: now.Add(-time.Hour)}, // tolerate small clock skew
		NotAfter: now.Add(certValidity)})
	if err != nil {
		return nil, nil, fmt.Errorf("CA %s: %w", name, err)
	}
	return ca, key, nil
}

func issue(s certSpec, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	now := time.Now()
	return pki.Issue(pki.Spec{Config: cert.Config{CommonName: s.cn, Organization: s.orgs,
		AltNames: cert.AltNames{DNSNames: s.dns, IPs: s.ips}, Usages: s.usage,
		NotBefore: now.Add(-time.Hour)}, NotAfter: now.Add(certValidity)}, ca, caKey)
}

func writeSAKeys(keyPath, pubPath string) error {
	key, err := pki.NewKey()
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	if err := pki.WriteKeyFile(keyPath, key); err != nil {
		return err
	}
	return pki.WritePublicKeyFile(pubPath, key)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
