// Package webhook reads the label as ACK does: a mutating admission
// webhook gives pods labelled alibabacloud.com/eci: "true", or made in a
// namespace so labelled, the toleration and node selector of the virtual
// node. Pods without it never land on the node (its taint stays). Its
// certificate, of a CA of its own, lives in a Secret (webhookcert.go).
package webhook

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/vnode/nodecontroller"
)

// LabelECI asks for ECI, on a pod or on its namespace, as on ACK.
const LabelECI = "alibabacloud.com/eci"

// ConfigurationName is the MutatingWebhookConfiguration the node
// keeps.
const ConfigurationName = "spoteci-eci-label"

// webhookPath is where the webhook answers AdmissionReviews.
const webhookPath = "/mutate-pods"

// webhookCertLife is how long a serving certificate lasts; the leader makes
// a new CA and certificate at two thirds of it.
const webhookCertLife = 30 * 24 * time.Hour

// Config sets up a Server.
type Config struct {
	Kube kubernetes.Interface
	// Listen is the address the webhook serves at.
	Listen string
	// Namespace/Secret keeps the certificate.
	Namespace, Secret string
	// Service, in Namespace, is how the apiserver reaches the replicas;
	// empty: at the URL of this replica's address (a node outside the
	// cluster, on the apiserver's host).
	Service string
	Logger  *slog.Logger
}

// Server serves the mutation on its own TLS port. Every replica serves;
// the leader also keeps the certificate's Secret and the webhook
// configuration (webhookcert.go).
type Server struct {
	kube              kubernetes.Interface
	listen            string
	namespace, secret string
	service           string
	log               *slog.Logger
	addr              net.Addr
	cert              atomic.Pointer[tls.Certificate]
}

// New returns a Server of cfg; Serve starts it.
func New(cfg Config) *Server {
	return &Server{kube: cfg.Kube, listen: cfg.Listen, namespace: cfg.Namespace, secret: cfg.Secret, service: cfg.Service, log: cfg.Logger}
}

// Serve listens and serves reviews until ctx ends, with the Secret's
// certificate once there is one (/healthz says whether there is).
func (h *Server) Serve(ctx context.Context) (<-chan error, error) {
	ln, err := net.Listen("tcp", h.listen)
	if err != nil {
		return nil, fmt.Errorf("admission webhook: listening on %s: %w", h.listen, err)
	}
	h.addr = ln.Addr()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+webhookPath, h.serveReview)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := h.cert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no certificate yet: the leader makes it")
		}}}
	errs := make(chan error, 1)
	go func() {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	go func() {
		wait.NonSlidingUntilWithContext(ctx, func(ctx context.Context) {
			if err := h.loadCert(ctx); err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
				h.log.Error("admission webhook: reading the certificate", "err", err)
			}
		}, webhookCheck)
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	return errs, nil
}

// Keep, run by the leader, keeps the certificate fresh and the
// configuration pointing at the webhook with its CA, until ctx ends.
func (h *Server) Keep(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		p, err := h.keepSecret(ctx, time.Now())
		if err == nil {
			err = h.register(ctx, p.bundle)
		}
		if err == nil {
			err = h.loadCert(ctx)
		}
		if err != nil && ctx.Err() == nil {
			h.log.Error("admission webhook: keeping the certificate and configuration", "err", err)
		}
	}, time.Minute)
}

// names are the names the apiserver calls the webhook by.
func (h *Server) names() []string {
	if h.service != "" {
		svc := h.service + "." + h.namespace + ".svc"
		return []string{svc, svc + ".cluster.local"}
	}
	host, _, _ := net.SplitHostPort(h.addr.String())
	return []string{host, "localhost"}
}

func (h *Server) clientConfig(caBundle []byte) admissionregistrationv1.WebhookClientConfig {
	path := webhookPath
	if h.service != "" {
		return admissionregistrationv1.WebhookClientConfig{CABundle: caBundle,
			Service: &admissionregistrationv1.ServiceReference{Namespace: h.namespace, Name: h.service, Path: &path}}
	}
	url := fmt.Sprintf("https://%s%s", h.addr, webhookPath)
	return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
}

// register creates or updates the webhook configuration: two webhooks, one
// for pods with the label and one for pods of namespaces with it, so that
// no other pod is ever sent to this webhook. Their failure policy is Fail:
// a pod that asks for ECI while the webhook is down is refused with the
// reason rather than run silently on an ordinary node; other pods are
// never affected, and kube-system is left out.
func (h *Server) register(ctx context.Context, caBundle []byte) error {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	eci := metav1.LabelSelector{MatchLabels: map[string]string{LabelECI: "true"}}
	notSystem := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}}}}
	hook := func(name string, object, namespace metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            h.clientConfig(caBundle),
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
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName, Labels: map[string]string{"app.kubernetes.io/managed-by": "spoteci"}},
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
func (h *Server) serveReview(w http.ResponseWriter, r *http.Request) {
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
var eciToleration = corev1.Toleration{Key: nodecontroller.TaintKey, Operator: corev1.TolerationOpEqual, Value: nodecontroller.TaintValue, Effect: corev1.TaintEffectNoSchedule}

// eciPatch is what makes pod land on the virtual node: the toleration of
// its taint and the node selector type=virtual-kubelet, each unless
// already there. Nothing else of the pod changes.
func eciPatch(pod *corev1.Pod) []jsonPatchOp {
	var ops []jsonPatchOp
	tolerated := false
	for _, t := range pod.Spec.Tolerations {
		if t.MatchToleration(&eciToleration) || t.Operator == corev1.TolerationOpExists && (t.Key == "" || t.Key == nodecontroller.TaintKey) && (t.Effect == "" || t.Effect == corev1.TaintEffectNoSchedule) {
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
