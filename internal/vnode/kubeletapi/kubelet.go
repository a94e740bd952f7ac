// Package kubeletapi is the virtual node's kubelet port, as a kubelet
// serves it: container logs, exec and the resource endpoints
// (/stats/summary, /metrics/resource) of the node's pods, answered by the
// provider; callers authenticated by the cluster's client CA or a
// TokenReview and authorized by a SubjectAccessReview (kubeletauth.go), on
// a serving certificate the cluster signs through the CSR API
// (serving.go).
package kubeletapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Config sets up a Server.
type Config struct {
	NodeName string
	Kube     kubernetes.Interface
	// Provider reads the instances' logs and metrics and runs exec.
	Provider provider.Provider
	// Listen is the port's address.
	Listen string
	// NodeIP is the address the Node reports, a name of the serving
	// certificate.
	NodeIP net.IP
	// Certificate is the port's; nil: one the cluster signs through the
	// CSR API (self-signed until issued).
	Certificate *tls.Certificate
	// ApproveCSR: the node approves its own serving certificate request
	// (a local cluster whose admin it runs as).
	ApproveCSR bool
	Logger     *slog.Logger
}

// Server is the node's kubelet port: logs, exec and stats of its pods, as
// the apiserver and metrics-server ask a kubelet for them. Its serving
// certificate and its authentication caches outlive a leadership term.
type Server struct {
	nodeName string
	listen   string
	started  time.Time
	provider provider.Provider
	auth     *kubeletAuth
	serving  *servingCert
	fixed    bool // the certificate was given: nothing to keep
	log      *slog.Logger
}

// New returns a Server of cfg; Serve starts it.
func New(cfg Config) (*Server, error) {
	s := &Server{nodeName: cfg.NodeName, listen: cfg.Listen, started: time.Now(), provider: cfg.Provider,
		auth: newKubeletAuth(cfg.Kube, cfg.NodeName, cfg.Logger), fixed: cfg.Certificate != nil, log: cfg.Logger}
	serving, err := newServingCert(cfg.Kube, cfg.NodeName, cfg.NodeIP, cfg.ApproveCSR, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if cfg.Certificate != nil {
		serving.cur.Store(cfg.Certificate)
	}
	s.serving = serving
	return s, nil
}

// KeepCertificate keeps the serving certificate issued and fresh until ctx
// ends; it returns at once when the certificate was given.
func (s *Server) KeepCertificate(ctx context.Context) {
	if !s.fixed {
		s.serving.run(ctx)
	}
}

// handler answers one term's requests, about the pods of its lister.
type handler struct {
	*Server
	pods corelisters.PodLister
	// instanceID is the ID of a pod's instance: the last poll's, else
	// the one its status names; empty when none.
	instanceID func(*corev1.Pod) string
}

// Serve serves the part of the kubelet API that kubectl logs, exec and
// top use, on its own TLS port (with the certificate of servingCert), to
// callers the cluster authenticates and authorizes (kubeletAuth), until
// ctx ends. It returns the port, and the error that stops the server
// early.
func (s *Server) Serve(ctx context.Context, pods corelisters.PodLister, instanceID func(*corev1.Pod) string) (int, <-chan error, error) {
	k := &handler{Server: s, pods: pods, instanceID: instanceID}
	ln, err := net.Listen("tcp", k.listen)
	if err != nil {
		return 0, nil, fmt.Errorf("kubelet API: listening on %s: %w", k.listen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", k.containerLogs)
	mux.HandleFunc("/exec/{namespace}/{pod}/{container}", k.exec)
	mux.HandleFunc("/exec/{namespace}/{pod}/{uid}/{container}", k.exec)
	mux.HandleFunc("GET /stats/summary", k.statsSummary)
	mux.HandleFunc("GET /metrics/resource", k.metricsResource)
	mux.HandleFunc("GET /runningpods/", k.runningPods)
	// Client certificates are asked for, and checked against the cluster's
	// client CA by kubeletAuth (which reads it again as it rotates).
	srv := &http.Server{Handler: k.auth.wrap(mux), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{GetCertificate: k.serving.GetCertificate, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}}
	errs := make(chan error, 1)
	go func() {
		if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	return ln.Addr().(*net.TCPAddr).Port, errs, nil
}

// containerLogs answers GET /containerLogs/{ns}/{pod}/{container} with the
// query parameters kubectl sends.
func (k *handler) containerLogs(w http.ResponseWriter, r *http.Request) {
	id, ok := k.instanceOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req, limit, err := logQuery(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.Tail == 0 && q.Has("tailLines") {
		return // --tail=0: no lines
	}
	req.ContainerGroupId, req.ContainerName = id, r.PathValue("container")
	stream, err := k.provider.Logs(r.Context(), req)
	if err != nil {
		serviceError(w, err)
		return
	}
	defer stream.Close()
	w.Header().Set("Content-Type", "text/plain")
	var out io.Reader = stream
	if limit > 0 { // kubectl logs --limit-bytes: the first bytes, then the stream ends
		out = io.LimitReader(stream, limit)
	}
	eciapi.CopyFlushing(w, out)
}

// logQuery decodes the log query kubectl sends (follow, tailLines,
// timestamps, sinceSeconds, previous, limitBytes); limit is 0 when not
// given.
func logQuery(q url.Values) (req eciapi.DescribeContainerLogRequest, limit int64, err error) {
	req = eciapi.DescribeContainerLogRequest{Follow: q.Get("follow") == "true", Timestamps: q.Get("timestamps") == "true", Previous: q.Get("previous") == "true"}
	if v := q.Get("tailLines"); v != "" {
		if req.Tail, err = strconv.Atoi(v); err != nil || req.Tail < 0 {
			return req, 0, errors.New("tailLines must be a non-negative integer")
		}
	}
	if v := q.Get("sinceSeconds"); v != "" {
		if req.SinceSeconds, err = strconv.Atoi(v); err != nil || req.SinceSeconds < 0 {
			return req, 0, errors.New("sinceSeconds must be a non-negative integer")
		}
	}
	if v := q.Get("limitBytes"); v != "" {
		if limit, err = strconv.ParseInt(v, 10, 64); err != nil || limit < 1 {
			return req, 0, errors.New("limitBytes must be a positive integer")
		}
	}
	return req, limit, nil
}

// instanceOf finds the instance of the pod a kubelet API request names
// ({namespace}, {pod}, and {uid} if given); it answers the request itself
// when there is none.
func (k *handler) instanceOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	pod, err := k.pods.Pods(r.PathValue("namespace")).Get(r.PathValue("pod"))
	if apierrors.IsNotFound(err) {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", r.PathValue("namespace"), r.PathValue("pod"), k.nodeName), http.StatusNotFound)
		return "", false
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return "", false
	}
	if uid := r.PathValue("uid"); uid != "" && uid != string(pod.UID) {
		http.Error(w, fmt.Sprintf("pod %s/%s has UID %s, not %s", pod.Namespace, pod.Name, pod.UID, uid), http.StatusNotFound)
		return "", false
	}
	id := k.instanceID(pod)
	if id == "" {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: no instance yet", r.PathValue("container"), pod.Name), http.StatusBadRequest)
		return "", false
	}
	return id, true
}

// exec answers the apiserver's /exec/{ns}/{pod}/{container}?command=...
// (kubectl exec) as a kubelet with a CRI runtime does: the service hands out
// a one-time stream URL for the command (ExecContainerCommand), and the
// upgraded connection is proxied to it.
func (k *handler) exec(w http.ResponseWriter, r *http.Request) {
	id, ok := k.instanceOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := eciapi.ExecContainerCommandRequest{ContainerGroupId: id, ContainerName: r.PathValue("container"), Command: q["command"],
		TTY: isTrue(q.Get("tty")), Stdin: isTrue(q.Get("input")) || isTrue(q.Get("stdin"))}
	uri, err := k.provider.Exec(r.Context(), req)
	if err != nil {
		serviceError(w, err)
		return
	}
	target, err := url.Parse(uri)
	if err != nil {
		http.Error(w, "bad stream URL from the ECI service: "+err.Error(), http.StatusBadGateway)
		return
	}
	proxy.NewUpgradeAwareHandler(target, nil, false, true, streamResponder{k}).ServeHTTP(w, r)
}

// streamResponder answers a proxy failure.
type streamResponder struct{ k *handler }

func (s streamResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	s.k.log.Error("proxying an exec stream", "path", r.URL.Path, "err", err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// serviceError answers with the ECI service's error and its status (500
// when the service could not be asked).
func serviceError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	var reqErr *provider.RequestError
	if errors.As(err, &reqErr) {
		status = reqErr.Status
	}
	http.Error(w, err.Error(), status)
}

func isTrue(v string) bool { return v == "1" || v == "true" }
