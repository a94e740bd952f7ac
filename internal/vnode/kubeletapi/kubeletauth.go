package kubeletapi

// The kubelet port's security, as a kubelet's with authentication.x509
// (the cluster's client CA), authentication.webhook (TokenReview) and
// authorization.mode Webhook (SubjectAccessReview): 401 without a
// credential, 403 without the right on the node's subresource.

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes"
)

// Where a cluster publishes the CA of its client certificates, for kubelets
// and extension apiservers.
const (
	authConfigMapNamespace = "kube-system"
	authConfigMapName      = "extension-apiserver-authentication"
	clientCAKey            = "client-ca-file"
)

// How long decisions are kept: the kubelet's defaults
// (authentication.webhook.cacheTTL, authorization.webhook.cacheAuthorizedTTL
// and cacheUnauthorizedTTL).
const (
	tokenTTL   = 2 * time.Minute
	allowedTTL = 5 * time.Minute
	deniedTTL  = 30 * time.Second
	// caRefresh is how often the client CA is read again (it may rotate).
	caRefresh = time.Minute
)

// user is who made a request.
type user struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string]authorizationv1.ExtraValue
}

// kubeletAuth authenticates and authorizes the kubelet port's requests.
type kubeletAuth struct {
	kube     kubernetes.Interface
	nodeName string
	log      *slog.Logger

	mu        sync.Mutex
	clientCAs *x509.CertPool
	caRead    time.Time
	// tokens holds the user of each token reviewed (*user; nil: not
	// authenticated), decisions each decision (decision); both bounded,
	// so that callers with ever new tokens cannot grow them.
	tokens, decisions *cache.LRUExpireCache
}

type decision struct {
	allowed bool
	reason  string
}

// cacheSize bounds each cache of the kubelet port's reviews.
const cacheSize = 4096

func newKubeletAuth(kube kubernetes.Interface, nodeName string, log *slog.Logger) *kubeletAuth {
	return &kubeletAuth{kube: kube, nodeName: nodeName, log: log,
		tokens: cache.NewLRUExpireCache(cacheSize), decisions: cache.NewLRUExpireCache(cacheSize)}
}

// wrap answers 401 and 403 itself and passes the rest to next.
func (a *kubeletAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := a.authenticate(r)
		if err != nil {
			a.log.Error("kubelet API: authenticating", "err", err)
		}
		if u == nil {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := requestAttributes(r, a.nodeName)
		allowed, reason, err := a.authorize(r.Context(), u, attrs)
		if err != nil {
			a.log.Error("kubelet API: authorizing", "err", err)
		}
		if !allowed {
			msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s)", u.Name, attrs.Verb, attrs.Resource, attrs.Subresource)
			if reason != "" {
				msg += ": " + reason
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate returns who sent r: the subject of a client certificate the
// cluster's client CA signed, else the user of a bearer token the apiserver
// vouches for; nil when neither.
func (a *kubeletAuth) authenticate(r *http.Request) (*user, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		pool, err := a.caPool(r.Context())
		if err != nil {
			return nil, err
		}
		certs := r.TLS.PeerCertificates
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, nil // a certificate the cluster did not sign: no one
		}
		return &user{Name: certs[0].Subject.CommonName, Groups: certs[0].Subject.Organization}, nil
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, nil
	}
	return a.reviewToken(r.Context(), token)
}

// caPool is the cluster's client CA, read again every caRefresh.
func (a *kubeletAuth) caPool(ctx context.Context) (*x509.CertPool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clientCAs != nil && time.Since(a.caRead) < caRefresh {
		return a.clientCAs, nil
	}
	cm, err := a.kube.CoreV1().ConfigMaps(authConfigMapNamespace).Get(ctx, authConfigMapName, metav1.GetOptions{})
	if err != nil {
		if a.clientCAs != nil {
			return a.clientCAs, nil // keep the last one while the apiserver is away
		}
		return nil, fmt.Errorf("reading the cluster's client CA (%s/%s): %w", authConfigMapNamespace, authConfigMapName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cm.Data[clientCAKey])) {
		return nil, fmt.Errorf("%s/%s has no %s: client certificates cannot be checked", authConfigMapNamespace, authConfigMapName, clientCAKey)
	}
	a.clientCAs, a.caRead = pool, time.Now()
	return pool, nil
}

// reviewToken asks the apiserver who token is (TokenReview).
func (a *kubeletAuth) reviewToken(ctx context.Context, token string) (*user, error) {
	if u, ok := a.tokens.Get(token); ok {
		return u.(*user), nil
	}
	review, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token review: %w", err)
	}
	var u *user
	if st := review.Status; st.Authenticated {
		u = &user{Name: st.User.Username, UID: st.User.UID, Groups: st.User.Groups, Extra: map[string]authorizationv1.ExtraValue{}}
		for k, v := range st.User.Extra {
			u.Extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	a.tokens.Add(token, u, tokenTTL)
	return u, nil
}

// requestAttributes are what r asks of the node, as a kubelet maps them:
// the verb from the method, the subresource from the path (stats, metrics,
// log, else proxy: logs, exec and the rest of a pod's insides).
func requestAttributes(r *http.Request, nodeName string) authorizationv1.ResourceAttributes {
	verb := "get"
	switch r.Method {
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	sub := "proxy"
	switch p := r.URL.Path; {
	case p == "/stats" || strings.HasPrefix(p, "/stats/"):
		sub = "stats"
	case p == "/metrics" || strings.HasPrefix(p, "/metrics/"):
		sub = "metrics"
	case strings.HasPrefix(p, "/logs/"):
		sub = "log"
	}
	return authorizationv1.ResourceAttributes{Verb: verb, Resource: "nodes", Subresource: sub, Name: nodeName}
}

// authorize asks the apiserver whether u may do attrs (SubjectAccessReview).
func (a *kubeletAuth) authorize(ctx context.Context, u *user, attrs authorizationv1.ResourceAttributes) (bool, string, error) {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s", u.Name, strings.Join(u.Groups, ","), u.UID, attrs.Verb, attrs.Subresource)
	if d, ok := a.decisions.Get(key); ok {
		return d.(decision).allowed, d.(decision).reason, nil
	}
	review, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{User: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra, ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	ttl := deniedTTL
	if review.Status.Allowed {
		ttl = allowedTTL
	}
	a.decisions.Add(key, decision{allowed: review.Status.Allowed, reason: review.Status.Reason}, ttl)
	return review.Status.Allowed, review.Status.Reason, nil
}
