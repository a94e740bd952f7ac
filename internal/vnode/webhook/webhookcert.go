package webhook

// The webhook's certificate lives in a Secret, so that every replica serves
// the same one and a restart keeps it: the leader makes it (a CA of its own
// and a certificate it signs), rotates it at two thirds of its life and
// puts the CA into the webhook configuration; every replica serves the
// newest certificate the configuration's CA bundle trusts, so no replica
// switches before the apiserver would accept it.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/cert"

	"github.com/spoteci/spoteci/internal/pki"
)

// The Secret's keys: the serving certificate and key, the CA bundle the
// configuration carries (the current CA, then the one before it) and the
// current CA's key.
const (
	secretCert   = "tls.crt"
	secretKey    = "tls.key"
	secretCA     = "ca.crt"
	secretCAKey  = "ca.key"
	webhookCheck = 5 * time.Second // how often replicas look at the Secret
)

// webhookPEM is the Secret's content, parsed.
type webhookPEM struct {
	cert   *tls.Certificate
	bundle []byte // PEM: current CA first
	ca     *x509.Certificate
	caKey  crypto.Signer
}

func parseWebhookSecret(data map[string][]byte) (*webhookPEM, error) {
	pair, err := tls.X509KeyPair(data[secretCert], data[secretKey])
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCert(data[secretCA])
	if err != nil {
		return nil, fmt.Errorf("the CA: %w", err)
	}
	caKey, err := pki.ParseKey(data[secretCAKey])
	if err != nil {
		return nil, fmt.Errorf("the CA key: %w", err)
	}
	return &webhookPEM{cert: &pair, bundle: data[secretCA], ca: ca, caKey: caKey}, nil
}

// fresh says whether p serves names for another two thirds-of-life.
func (p *webhookPEM) fresh(names []string, now time.Time) bool {
	leaf := p.cert.Leaf
	if now.After(leaf.NotBefore.Add(webhookCertLife*2/3)) || now.After(p.ca.NotAfter.Add(-webhookCertLife/3)) {
		return false
	}
	for _, name := range names {
		if leaf.VerifyHostname(name) != nil {
			return false
		}
	}
	return true
}

// issueWebhookCert makes a CA and a certificate for names signed by it; the
// bundle is the new CA followed by previous's current CA, so that replicas
// still serving the old certificate stay trusted.
func issueWebhookCert(names []string, previous *webhookPEM, now time.Time) (map[string][]byte, error) {
	ca, caKey, err := pki.NewCA(pki.Spec{Config: cert.Config{CommonName: "spoteci admission webhook CA", NotBefore: now.Add(-time.Minute)},
		NotAfter: now.Add(webhookCertLife + time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("admission webhook CA: %w", err)
	}
	leaf, key, err := pki.Issue(pki.Spec{Config: cert.Config{CommonName: names[0], AltNames: pki.AltNames(names...),
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: now.Add(-time.Minute)},
		NotAfter: now.Add(webhookCertLife)}, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("admission webhook certificate: %w", err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, err
	}
	caKeyPEM, err := pki.EncodeKey(caKey)
	if err != nil {
		return nil, err
	}
	bundle := []*x509.Certificate{ca}
	if previous != nil {
		bundle = append(bundle, previous.ca)
	}
	return map[string][]byte{
		secretCert:  pki.EncodeCerts(leaf),
		secretKey:   keyPEM,
		secretCA:    pki.EncodeCerts(bundle...),
		secretCAKey: caKeyPEM,
	}, nil
}

// readSecret returns the Secret and its parsed content (nil when empty or
// unreadable as a certificate).
func (h *Server) readSecret(ctx context.Context) (*corev1.Secret, *webhookPEM, error) {
	sec, err := h.kube.CoreV1().Secrets(h.namespace).Get(ctx, h.secret, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	p, _ := parseWebhookSecret(sec.Data)
	return sec, p, nil
}

// keepSecret makes sure the Secret holds a certificate fresh for the
// webhook's names, making or rotating it when not, and returns its content.
// Two leaders (of two nodes) may race: the loser's write conflicts and it
// takes the winner's.
func (h *Server) keepSecret(ctx context.Context, now time.Time) (*webhookPEM, error) {
	secrets := h.kube.CoreV1().Secrets(h.namespace)
	sec, cur, err := h.readSecret(ctx)
	if apierrors.IsNotFound(err) {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: h.secret, Namespace: h.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "spoteci"}}, Type: corev1.SecretTypeOpaque}
	} else if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", h.namespace, h.secret, err)
	}
	if cur != nil && cur.fresh(h.names(), now) {
		return cur, nil
	}
	data, err := issueWebhookCert(h.names(), cur, now)
	if err != nil {
		return nil, err
	}
	sec.Data = data
	if sec.ResourceVersion == "" {
		_, err = secrets.Create(ctx, sec, metav1.CreateOptions{})
	} else {
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
		_, cur, err = h.readSecret(ctx)
		if err == nil && cur == nil {
			err = fmt.Errorf("the Secret another writer made holds no certificate")
		}
		return cur, err
	}
	if err != nil {
		return nil, fmt.Errorf("writing Secret %s/%s: %w", h.namespace, h.secret, err)
	}
	h.log.Info("admission webhook certificate made", "secret", h.namespace+"/"+h.secret, "names", h.names())
	return parseWebhookSecret(data)
}

// loadCert serves the Secret's certificate once the configuration's CA
// bundle trusts it (or when nothing is served yet).
func (h *Server) loadCert(ctx context.Context) error {
	_, p, err := h.readSecret(ctx)
	if err != nil || p == nil {
		return err
	}
	if cur := h.cert.Load(); cur != nil && bytes.Equal(cur.Certificate[0], p.cert.Certificate[0]) {
		return nil
	}
	if h.cert.Load() != nil {
		cfg, err := h.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, ConfigurationName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !trusts(cfg, p.cert.Leaf, time.Now()) {
			return nil
		}
	}
	h.cert.Store(p.cert)
	return nil
}

// trusts says whether every webhook of cfg trusts leaf at now.
func trusts(cfg *admissionregistrationv1.MutatingWebhookConfiguration, leaf *x509.Certificate, now time.Time) bool {
	for _, w := range cfg.Webhooks {
		pool, err := cert.NewPoolFromBytes(w.ClientConfig.CABundle)
		if err != nil {
			return false
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return false
		}
	}
	return true
}
