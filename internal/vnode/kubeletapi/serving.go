package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certificatesv1client "k8s.io/client-go/kubernetes/typed/certificates/v1"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"

	"github.com/spoteci/spoteci/internal/pki"
)

// servingCert is the kubelet port's certificate, as a kubelet with
// serverTLSBootstrap gets it, and through the kubelet's own machinery
// (client-go's certificate manager): signed by the cluster through the CSR
// API (signer kubernetes.io/kubelet-serving, subject system:node:<name> in
// system:nodes, the node's addresses as names), so that an apiserver with
// --kubelet-certificate-authority trusts the port. Until the cluster has
// issued it (someone must approve the request: `kubectl certificate approve`,
// an approver such as kubelet-csr-approver, or the node itself when told
// to) the port serves a self-signed one. The manager asks again at 70 to
// 90% of the certificate's life, and again after a quarter of an hour
// without an answer.
type servingCert struct {
	kube     kubernetes.Interface
	nodeName string
	ip       net.IP // the InternalIP the Node reports
	// approve: the node approves its own request (local clusters whose
	// admin it runs as).
	approve bool
	log     *slog.Logger
	cur     atomic.Pointer[tls.Certificate] // served
	// issued is the cluster's latest, kept across leadership terms (in
	// memory: a restarted node asks again).
	issued atomic.Pointer[tls.Certificate]
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

// run keeps the certificate issued and fresh until ctx ends.
func (s *servingCert) run(ctx context.Context) {
	ctx = withKlog(ctx, s.log)
	m, err := certificate.NewManager(&certificate.Config{
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) { return nodeCSRs{s.kube, s}, nil },
		Template: &x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "system:node:" + s.nodeName, Organization: []string{"system:nodes"}},
			DNSNames:    []string{s.nodeName},
			IPAddresses: []net.IP{s.ip},
		},
		SignerName:       certificatesv1.KubeletServingSignerName,
		GetUsages:        certificate.DefaultKubeletServingGetUsages,
		CertificateStore: s,
		Name:             "kubelet serving certificate",
		Ctx:              &ctx,
	})
	if err != nil {
		s.log.Error("kubelet serving certificate: the port keeps its current one", "err", err)
		return
	}
	m.Start()
	<-ctx.Done()
	m.Stop()
}

// withKlog gives ctx log as its klog logger: client-go's and
// component-helpers' controllers log through klog, and report errors
// through utilruntime, with the logger of their context.
func withKlog(ctx context.Context, log *slog.Logger) context.Context {
	return klog.NewContext(ctx, logr.FromSlogHandler(log.Handler()))
}

// Current is the manager's Store's: the cluster's latest certificate.
func (s *servingCert) Current() (*tls.Certificate, error) {
	if c := s.issued.Load(); c != nil {
		return c, nil
	}
	none := certificate.NoCertKeyError("no kubelet serving certificate issued yet")
	return nil, &none
}

// Update is the manager's Store's: it serves the certificate the cluster
// issued from now on.
func (s *servingCert) Update(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the issued kubelet serving certificate: %w", err)
	}
	s.issued.Store(&c)
	s.cur.Store(&c)
	s.log.Info("kubelet serving certificate issued by the cluster", "not_after", c.Leaf.NotAfter)
	return &c, nil
}

// nodeCSRs is the client the manager requests through: the node's own,
// except that its CSRs are named after the node and, when the node is
// told to, approved by it as they are made.
type nodeCSRs struct {
	kubernetes.Interface
	s *servingCert
}

// IsWatchListSemanticsUnSupported passes on what the node's client says of
// itself (the reflector that waits for the certificate asks), so that a
// client without watch-list streaming, as the tests' fake, is read by list
// and watch.
func (c nodeCSRs) IsWatchListSemanticsUnSupported() bool {
	u, ok := c.Interface.(interface{ IsWatchListSemanticsUnSupported() bool })
	return ok && u.IsWatchListSemanticsUnSupported()
}

func (c nodeCSRs) CertificatesV1() certificatesv1client.CertificatesV1Interface {
	return nodeCSRGroup{c.Interface.CertificatesV1(), c.s}
}

type nodeCSRGroup struct {
	certificatesv1client.CertificatesV1Interface
	s *servingCert
}

func (g nodeCSRGroup) CertificateSigningRequests() certificatesv1client.CertificateSigningRequestInterface {
	return approvingCSRs{g.CertificatesV1Interface.CertificateSigningRequests(), g.s}
}

type approvingCSRs struct {
	certificatesv1client.CertificateSigningRequestInterface
	s *servingCert
}

func (a approvingCSRs) Create(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, opts metav1.CreateOptions) (*certificatesv1.CertificateSigningRequest, error) {
	if csr.Name == "" {
		csr.GenerateName = "spoteci-serving-" + a.s.nodeName + "-"
	}
	made, err := a.CertificateSigningRequestInterface.Create(ctx, csr, opts)
	if err != nil {
		return nil, err
	}
	if !a.s.approve {
		a.s.log.Info("waiting for the kubelet serving certificate to be approved", "csr", made.Name, "approve_with", "kubectl certificate approve "+made.Name)
		return made, nil
	}
	approved := made.DeepCopy()
	approved.Status.Conditions = append(approved.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "SpoteciLocalCluster",
		Message: "approved by the virtual node of the local cluster it administers"})
	if _, err := a.UpdateApproval(ctx, made.Name, approved, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("approving %s: %w", made.Name, err)
	}
	return made, nil
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
