package vnode

// The label as ACK reads it: a mutating admission webhook gives pods
// labelled alibabacloud.com/eci: "true", or made in a namespace so
// labelled, the toleration and node selector of the virtual node. Pods
// without it never land on the node (its taint stays).

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// LabelECI asks for ECI, on a pod or on its namespace, as on ACK.
const LabelECI = "alibabacloud.com/eci"

// WebhookConfigurationName is the MutatingWebhookConfiguration the node
// keeps.
const WebhookConfigurationName = "spoteci-eci-label"

// webhookPath is where the webhook answers AdmissionReviews.
const webhookPath = "/mutate-pods"

// webhookCertLife is how long a serving certificate lasts; the webhook
// makes a new CA and certificate at two thirds of it and puts the new CA
// into the configuration.
const webhookCertLife = 30 * 24 * time.Hour

// labelWebhook serves the mutation on its own TLS port with a certificate
// it makes itself, and keeps the webhook configuration (with its CA) in the
// cluster.
type labelWebhook struct {
	kube   kubernetes.Interface
	listen string
	log    *slog.Logger
	cert   atomic.Pointer[tls.Certificate]
}

// run serves until ctx ends. It returns once the configuration points at
// the port, or with the error that prevented it.
func (h *labelWebhook) run(ctx context.Context) (<-chan error, error) {
	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return nil, fmt.Errorf("admission webhook: listening on %s: %w", h.listen, err)
	}
	url := fmt.Sprintf("https://%s%s", ln.Addr(), webhookPath)
	ca, err := h.issue()
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := h.register(ctx, url, ca); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+webhookPath, h.serveReview)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return h.cert.Load(), nil
		}}}
	errs := make(chan error, 1)
	go func() {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	go func() {
		rotate := time.NewTimer(webhookCertLife * 2 / 3)
		defer rotate.Stop()
		for {
			select {
			case <-ctx.Done():
				shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				srv.Shutdown(shutdown)
				return
			case <-rotate.C:
			}
			// The new CA goes into the configuration before the new
			// certificate is served, with the old CA beside it.
			old := h.cert.Load()
			ca, err := h.issue()
			if err == nil {
				err = h.register(ctx, url, append(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Certificate[1]})...))
			}
			if err != nil {
				h.log.Error("admission webhook: rotating the certificate", "err", err)
				h.cert.Store(old)
				rotate.Reset(time.Minute)
				continue
			}
			rotate.Reset(webhookCertLife * 2 / 3)
		}
	}()
	h.log.Info("admission webhook ready", "url", url, "label", LabelECI)
	return errs, nil
}

// issue makes a CA and a serving certificate for 127.0.0.1 signed by it,
// serves the certificate from now on, and returns the CA's PEM.
func (h *labelWebhook) issue() ([]byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "spoteci admission webhook CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(webhookCertLife + time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("admission webhook CA: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "spoteci-webhook"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(webhookCertLife),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("admission webhook certificate: %w", err)
	}
	h.cert.Store(&tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key})
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// register creates or updates the webhook configuration: two webhooks, one
// for pods with the label and one for pods of namespaces with it, so that
// no other pod is ever sent to this webhook. Their failure policy is Fail:
// a pod that asks for ECI while the webhook is down is refused with the
// reason rather than run silently on an ordinary node; other pods are
// never affected, and kube-system is left out.
func (h *labelWebhook) register(ctx context.Context, url string, caBundle []byte) error {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	eci := metav1.LabelSelector{MatchLabels: map[string]string{LabelECI: "true"}}
	notSystem := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}}}}
	hook := func(name string, object, namespace metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			ObjectSelector:          &object,
			NamespaceSelector:       &namespace,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}
	}
	nsECI := notSystem.DeepCopy()
	nsECI.MatchLabels = eci.MatchLabels
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName, Labels: map[string]string{"app.kubernetes.io/managed-by": "spoteci"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("pod.eci.spoteci.io", eci, notSystem),
			// A pod labelled itself is already mutated by the first.
			hook("namespace.eci.spoteci.io", metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: LabelECI, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"true"}}}}, *nsECI),
		},
	}
	client := h.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cur, err := client.Get(ctx, cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = client.Create(ctx, cfg, metav1.CreateOptions{})
	case err == nil:
		cur.Webhooks, cur.Labels = cfg.Webhooks, cfg.Labels
		_, err = client.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("admission webhook: writing MutatingWebhookConfiguration %s: %w", cfg.Name, err)
	}
	return nil
}

// serveReview answers one AdmissionReview.
func (h *labelWebhook) serveReview(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err != nil || review.Request == nil {
		http.Error(w, "want an AdmissionReview v1 with a request", http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusBadRequest, Message: "not a pod: " + err.Error()}
	} else if patch := eciPatch(&pod); len(patch) > 0 {
		resp.Patch, _ = json.Marshal(patch)
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
	}
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(review)
}

// jsonPatchOp is one operation of a JSON patch (RFC 6902).
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// eciToleration is the toleration of the node's taint.
var eciToleration = corev1.Toleration{Key: TaintKey, Operator: corev1.TolerationOpEqual, Value: taintValue, Effect: corev1.TaintEffectNoSchedule}

// eciPatch is what makes pod land on the virtual node: the toleration of
// its taint and the node selector type=virtual-kubelet, each unless
// already there. Nothing else of the pod changes.
func eciPatch(pod *corev1.Pod) []jsonPatchOp {
	var ops []jsonPatchOp
	tolerated := false
	for _, t := range pod.Spec.Tolerations {
		if t.MatchToleration(&eciToleration) || t.Operator == corev1.TolerationOpExists && (t.Key == "" || t.Key == TaintKey) && (t.Effect == "" || t.Effect == corev1.TaintEffectNoSchedule) {
			tolerated = true
		}
	}
	if !tolerated {
		if len(pod.Spec.Tolerations) == 0 {
			ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/tolerations", Value: []corev1.Toleration{eciToleration}})
		} else {
			ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/tolerations/-", Value: eciToleration})
		}
	}
	if pod.Spec.NodeSelector["type"] != "virtual-kubelet" {
		if len(pod.Spec.NodeSelector) == 0 {
			ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/nodeSelector", Value: map[string]string{"type": "virtual-kubelet"}})
		} else {
			ops = append(ops, jsonPatchOp{Op: "add", Path: "/spec/nodeSelector/type", Value: "virtual-kubelet"})
		}
	}
	return ops
}
