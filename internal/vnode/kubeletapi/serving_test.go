package kubeletapi

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/cert"

	"github.com/spoteci/spoteci/internal/pki"
)

// The port serves a self-signed certificate until the cluster issues one
// through a kubelet-serving CSR; with approve the node approves its own
// request, without it the request waits for an admin.
func TestServingCertFromCSR(t *testing.T) {
	for _, approve := range []bool{true, false} {
		t.Run(map[bool]string{true: "node approves", false: "admin approves"}[approve], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			kube := fake.NewClientset()
			kube.PrependReactor("create", "certificatesigningrequests", generateName)
			ca, caKey, err := pki.NewCA(pki.Spec{Config: cert.Config{CommonName: "cluster CA"}, NotAfter: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			go fakeSigner(ctx, t, kube, ca, caKey, !approve)

			ip := net.ParseIP("10.0.0.7")
			s, err := newServingCert(kube, "vn1", ip, approve, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			self, _ := s.GetCertificate(nil)
			if self.Leaf.CheckSignature(self.Leaf.SignatureAlgorithm, self.Leaf.RawTBSCertificate, self.Leaf.Signature) != nil {
				t.Fatal("the first certificate is not self-signed")
			}
			go s.run(ctx)

			var got *tls.Certificate
			for got == nil || got == self {
				if ctx.Err() != nil {
					t.Fatal("no certificate issued")
				}
				time.Sleep(20 * time.Millisecond)
				got, _ = s.GetCertificate(nil)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			if _, err := got.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.7", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("served certificate: %v", err)
			}
			if cn := got.Leaf.Subject.CommonName; cn != "system:node:vn1" {
				t.Errorf("CN %q", cn)
			}
			csrs, err := kube.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
			if err != nil || len(csrs.Items) != 1 {
				t.Fatalf("CSRs: %v %v", len(csrs.Items), err)
			}
			csr := csrs.Items[0]
			if !strings.HasPrefix(csr.Name, "spoteci-serving-vn1-") || csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
				t.Errorf("CSR %s for %s", csr.Name, csr.Spec.SignerName)
			}
			reason := csr.Status.Conditions[0].Reason
			if approve != (reason == "SpoteciLocalCluster") {
				t.Errorf("approved with reason %q", reason)
			}
		})
	}
}

// generateName names a created object as the apiserver does and the fake
// clientset does not.
func generateName(action k8stesting.Action) (bool, runtime.Object, error) {
	obj := action.(k8stesting.CreateAction).GetObject().(metav1.Object)
	if obj.GetName() == "" {
		obj.SetName(obj.GetGenerateName() + rand.String(5))
	}
	return false, nil, nil
}

// fakeSigner does what the controller-manager (and, with approve, an admin)
// would: approves pending requests if told to, and signs approved ones.
func fakeSigner(ctx context.Context, t *testing.T, kube kubernetes.Interface, ca *x509.Certificate, caKey crypto.Signer, approve bool) {
	csrs := kube.CertificatesV1().CertificateSigningRequests()
	for ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		list, err := csrs.List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, csr := range list.Items {
			if len(csr.Status.Certificate) > 0 {
				continue
			}
			if len(csr.Status.Conditions) == 0 {
				if approve {
					csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved,
						Status: corev1.ConditionTrue, Reason: "KubectlApprove"}}
					if _, err := csrs.UpdateApproval(ctx, csr.Name, &csr, metav1.UpdateOptions{}); err != nil {
						t.Log("approving:", err)
					}
				}
				continue
			}
			block, _ := pem.Decode(csr.Spec.Request)
			req, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Errorf("CSR %s: %v", csr.Name, err)
				return
			}
			leaf, err := pki.Sign(pki.Spec{Config: cert.Config{CommonName: req.Subject.CommonName, Organization: req.Subject.Organization,
				AltNames: cert.AltNames{DNSNames: req.DNSNames, IPs: req.IPAddresses}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				NotBefore: time.Now().Add(-time.Minute)}, NotAfter: time.Now().Add(time.Hour)}, req.PublicKey, ca, caKey)
			if err != nil {
				t.Error(err)
				return
			}
			csr.Status.Certificate = pki.EncodeCerts(leaf)
			if _, err := csrs.UpdateStatus(ctx, &csr, metav1.UpdateOptions{}); err != nil {
				t.Log("signing:", err)
			}
		}
	}
}
