package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/spoteci/spoteci/internal/vnode/nodecontroller"
)

// The webhook's patch, applied as the apiserver applies it, gives the pod
// the node's toleration and selector once, and keeps what the pod had.
func TestECIPatch(t *testing.T) {
	for _, c := range []struct {
		name string
		spec corev1.PodSpec
		ops  int
	}{
		{"bare", corev1.PodSpec{}, 2},
		{"with others", corev1.PodSpec{NodeSelector: map[string]string{"zone": "a"},
			Tolerations: []corev1.Toleration{{Key: "other", Operator: corev1.TolerationOpExists}}}, 2},
		{"already routed", corev1.PodSpec{NodeSelector: map[string]string{"type": "virtual-kubelet"}, Tolerations: []corev1.Toleration{eciToleration}}, 0},
		{"tolerates everything", corev1.PodSpec{Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: c.spec}
			ops := eciPatch(pod)
			if len(ops) != c.ops {
				t.Fatalf("%d operations %+v, want %d", len(ops), ops, c.ops)
			}
			before, _ := json.Marshal(pod)
			after := before
			if len(ops) > 0 {
				raw, _ := json.Marshal(ops)
				patch, err := jsonpatch.DecodePatch(raw)
				if err != nil {
					t.Fatal(err)
				}
				if after, err = patch.Apply(before); err != nil {
					t.Fatalf("the apiserver would refuse the patch: %v", err)
				}
			}
			var got corev1.Pod
			json.Unmarshal(after, &got)
			if got.Spec.NodeSelector["type"] != "virtual-kubelet" {
				t.Errorf("node selector %v", got.Spec.NodeSelector)
			}
			tolerated := false
			for _, tol := range got.Spec.Tolerations {
				tolerated = tolerated || tol.ToleratesTaint(klog.Background(), &corev1.Taint{Key: nodecontroller.TaintKey, Value: nodecontroller.TaintValue, Effect: corev1.TaintEffectNoSchedule}, false)
			}
			if !tolerated {
				t.Errorf("tolerations %v do not tolerate the node's taint", got.Spec.Tolerations)
			}
			for k, v := range c.spec.NodeSelector {
				if got.Spec.NodeSelector[k] != v {
					t.Errorf("the pod's selector %s=%s was lost", k, v)
				}
			}
			if len(got.Spec.Tolerations) < len(c.spec.Tolerations) {
				t.Errorf("tolerations lost: %v", got.Spec.Tolerations)
			}
		})
	}
}

// The webhook answers an AdmissionReview with the request's UID and a
// JSON patch, and refuses what is not one.
func TestServeReview(t *testing.T) {
	h := &Server{}
	pod, _ := json.Marshal(corev1.Pod{})
	body, _ := json.Marshal(admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{UID: "u-1", Object: runtime.RawExtension{Raw: pod}}})
	w := httptest.NewRecorder()
	h.serveReview(w, httptest.NewRequest(http.MethodPost, webhookPath, bytes.NewReader(body)))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(w.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	if r := review.Response; r.UID != "u-1" || !r.Allowed || r.PatchType == nil || len(r.Patch) == 0 {
		t.Errorf("response %+v", r)
	}
	w = httptest.NewRecorder()
	h.serveReview(w, httptest.NewRequest(http.MethodPost, webhookPath, bytes.NewReader([]byte("{}"))))
	if w.Code != http.StatusBadRequest {
		t.Errorf("a review without a request: %d", w.Code)
	}
}

// BenchmarkLabelWebhook sends the webhook 100 AdmissionReviews a second of
// a typical pod over TLS, as the apiserver does, and reports the p99 of the
// answers. Target: at most 10 ms.
func BenchmarkLabelWebhook(b *testing.B) {
	h := &Server{}
	data, err := issueWebhookCert([]string{"127.0.0.1"}, nil, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	p, err := parseWebhookSecret(data)
	if err != nil {
		b.Fatal(err)
	}
	caPEM := data[secretCA]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(h.serveReview))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{*p.cert}} // httptest would put its own in an empty list
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	pod, _ := json.Marshal(corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pi-abcde", Namespace: "default", Labels: map[string]string{LabelECI: "true", "job-name": "pi"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "pi", Image: "perl",
			Command: []string{"perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"}}}}})
	body, _ := json.Marshal(admissionv1.AdmissionReview{Request: &admissionv1.AdmissionRequest{UID: "u", Object: runtime.RawExtension{Raw: pod}}})
	var took []time.Duration
	tick := time.NewTicker(10 * time.Millisecond) // 100 a second
	defer tick.Stop()
	b.ResetTimer()
	for b.Loop() {
		<-tick.C
		start := time.Now()
		resp, err := client.Post(srv.URL+webhookPath, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
}
