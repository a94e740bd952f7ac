// Package pki makes the keys and certificates of spoteci, on client-go's
// certificate helpers (k8s.io/client-go/util/cert, util/keyutil): the
// control plane's CAs and leaves (files in <state>/pki), the admission
// webhook's CA and serving certificate (a Secret), the kubelet API's
// self-signed fallback, and the tests'.
//
// Every key is ECDSA P-256: every component accepts it, service-account
// tokens sign with it (ES256), and it is made in microseconds where RSA
// takes a noticeable part of a start.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// Spec is what a certificate says: client-go's subject, names and usages,
// and the end of its validity.
type Spec struct {
	cert.Config
	NotAfter time.Time
}

// NewKey makes a P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return key, nil
}

// NewCA makes a key and a self-signed CA certificate of s for it (its
// names and usages aside: a CA names no host). Not client-go's
// NewSelfSignedCACert: that one lives ten years from now, always, where
// the webhook's CA lives as long as the certificate it signs.
func NewCA(s Spec) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	tmpl := template(s)
	tmpl.DNSNames, tmpl.IPAddresses, tmpl.ExtKeyUsage = nil, nil, nil
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
	return sign(tmpl, nil, nil)
}

// Issue makes a key and a certificate of s for it, signed by ca and caKey.
func Issue(s Spec, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return sign(template(s), ca, caKey)
}

// Sign makes a certificate of s for pub, signed by ca and caKey: a signer's
// answer to a certificate request.
func Sign(s Spec, pub crypto.PublicKey, ca *x509.Certificate, caKey crypto.Signer) (*x509.Certificate, error) {
	return create(template(s), pub, ca, caKey)
}

// SelfSigned makes a key and a certificate of s signed by that key, as a
// TLS certificate.
func SelfSigned(s Spec) (*tls.Certificate, error) {
	leaf, key, err := sign(template(s), nil, nil)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// AltNames sorts names into the IP addresses and DNS names a certificate
// carries, as a client checks a URL's host against one or the other.
func AltNames(names ...string) cert.AltNames {
	var alt cert.AltNames
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			alt.IPs = append(alt.IPs, ip)
		} else {
			alt.DNSNames = append(alt.DNSNames, name)
		}
	}
	return alt
}

func template(s Spec) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: s.CommonName, Organization: s.Organization},
		NotBefore:   s.NotBefore,
		NotAfter:    s.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: s.Usages,
		DNSNames:    s.AltNames.DNSNames,
		IPAddresses: s.AltNames.IPs,
	}
}

// sign makes a key and a certificate of tmpl for it, signed by parent and
// parentKey (nil: self-signed).
func sign(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	c, err := create(tmpl, key.Public(), parent, parentKey)
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

// create signs a certificate of tmpl for pub, with a random serial number.
func create(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	var err error
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", tmpl.Subject.CommonName, err)
	}
	return c, nil
}

// EncodeCerts is certs in PEM, in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	out, _ := cert.EncodeCertificates(certs...) // encoding to memory does not fail
	return out
}

// ParseCert is the first certificate of PEM data.
func ParseCert(data []byte) (*x509.Certificate, error) {
	certs, err := cert.ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// EncodeKey is key in PEM as SEC 1 ("EC PRIVATE KEY"), as client-go and
// kubectl write it.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	return keyutil.MarshalPrivateKeyToPEM(key)
}

// ParseKey reads a private key in any PEM form client-go knows (PKCS #8,
// SEC 1, PKCS #1).
func ParseKey(data []byte) (crypto.Signer, error) {
	key, err := keyutil.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a key of type %T cannot sign", key)
	}
	return signer, nil
}

// WriteFiles writes cert and key to certPath and keyPath, each in one
// rename; the key in PKCS #8 ("PRIVATE KEY"), readable by the control
// plane's components and by spoteci of every version.
func WriteFiles(certPath, keyPath string, c *x509.Certificate, key crypto.Signer) error {
	// Key first: a certificate without its key on disk would be taken for
	// a whole pair by a reader that looks at the certificate only.
	if err := WriteKeyFile(keyPath, key); err != nil {
		return err
	}
	return atomicfile.Write(certPath, EncodeCerts(c), 0o644)
}

// WriteKeyFile writes key to path in PKCS #8, readable by its owner only.
func WriteKeyFile(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", path, err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: keyutil.PrivateKeyBlockType, Bytes: der}), 0o600)
}

// WritePublicKeyFile writes key's public half to path (PKIX, "PUBLIC KEY").
func WritePublicKeyFile(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encoding public key %s: %w", path, err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: keyutil.PublicKeyBlockType, Bytes: der}), 0o644)
}

// LoadFiles reads the certificate in certPath and the key in keyPath. A
// missing file's error is fs.ErrNotExist.
func LoadFiles(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certs, err := cert.CertsFromFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := ParseKey(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	return certs[0], key, nil
}
