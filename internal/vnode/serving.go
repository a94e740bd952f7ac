package vnode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"

	"github.com/spoteci/spoteci/internal/pki"
)

// servingCSRPoll is how often an unissued serving certificate is looked at.
const servingCSRPoll = 500 * time.Millisecond

// servingCert is the kubelet port's certificate, as a kubelet with
// serverTLSBootstrap gets it: signed by the cluster through the CSR API
// (signer kubernetes.io/kubelet-serving, subject system:node:<name> in
// system:nodes, the node's addresses as names), so that an apiserver with
// --kubelet-certificate-authority trusts the port. Until the cluster has
// issued it (someone must approve the request: `kubectl certificate approve`,
// an approver such as kubelet-csr-approver, or the node itself when told
// to) the port serves a self-signed one. It is requested again when two
// thirds of its life have passed.
type servingCert struct {
	kube     kubernetes.Interface
	nodeName string
	ip       net.IP // the InternalIP the Node reports
	// approve: the node approves its own request (local clusters whose
	// admin it runs as).
	approve bool
	log     *slog.Logger
	cur     atomic.Pointer[tls.Certificate]
}

func newServingCert(kube kubernetes.Interface, nodeName string, ip net.IP, approve bool, log *slog.Logger) (*servingCert, error) {
	s := &servingCert{kube: kube, nodeName: nodeName, ip: ip, approve: approve, log: log}
	self, err := selfSigned(nodeName, ip)
	if err != nil {
		return nil, err
	}
	s.cur.Store(self)
	return s, nil
}

// GetCertificate is tls.Config's: the certificate of the moment.
func (s *servingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// run asks for certificates until ctx ends.
func (s *servingCert) run(ctx context.Context) {
	for ctx.Err() == nil {
		cert, err := s.request(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("kubelet serving certificate: the port keeps its current one", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
			continue
		}
		s.cur.Store(cert)
		life := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore)
		s.log.Info("kubelet serving certificate issued by the cluster", "not_after", cert.Leaf.NotAfter)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(cert.Leaf.NotBefore.Add(life * 2 / 3))):
		}
	}
}

// request makes a key and a CertificateSigningRequest, approves it if told
// to, and waits for the certificate.
func (s *servingCert) request(ctx context.Context) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + s.nodeName, Organization: []string{"system:nodes"}},
		DNSNames:    []string{s.nodeName},
		IPAddresses: []net.IP{s.ip},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	csr, err := s.kube.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "spoteci-serving-" + s.nodeName + "-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating a CertificateSigningRequest: %w", err)
	}
	if s.approve {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "SpoteciLocalCluster",
			Message: "approved by the virtual node of the local cluster it administers"})
		if _, err := s.kube.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("approving %s: %w", csr.Name, err)
		}
	} else {
		s.log.Info("waiting for the kubelet serving certificate to be approved", "csr", csr.Name, "approve_with", "kubectl certificate approve "+csr.Name)
	}
	for {
		got, err := s.kube.CertificatesV1().CertificateSigningRequests().Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", csr.Name, err)
		}
		for _, c := range got.Status.Conditions {
			if (c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed) && c.Status == corev1.ConditionTrue {
				return nil, fmt.Errorf("%s was %s: %s", csr.Name, c.Type, c.Message)
			}
		}
		if len(got.Status.Certificate) > 0 {
			return certificateOf(got.Status.Certificate, key)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(servingCSRPoll):
		}
	}
}

// certificateOf pairs the issued PEM chain with its key.
func certificateOf(chain []byte, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	var cert tls.Certificate
	for block, rest := pem.Decode(chain); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			cert.Certificate = append(cert.Certificate, block.Bytes)
		}
	}
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("the issued certificate holds no PEM certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("the issued certificate: %w", err)
	}
	cert.PrivateKey, cert.Leaf = key, leaf
	return &cert, nil
}

// selfSigned is the port's certificate until the cluster issues one.
func selfSigned(host string, ip net.IP) (*tls.Certificate, error) {
	now := time.Now()
	c, err := pki.SelfSigned(pki.Spec{Config: cert.Config{CommonName: host,
		AltNames: cert.AltNames{DNSNames: []string{host, "localhost"}, IPs: []net.IP{ip}},
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, NotBefore: now.Add(-time.Hour)},
		NotAfter: now.Add(365 * 24 * time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("kubelet API: %w", err)
	}
	return c, nil
}
