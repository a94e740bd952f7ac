package eci

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spoteci/spoteci/internal/openapi"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// maxBody bounds a request body; a group's request is a few KB.
const maxBody = 1 << 20

// Credentials are what the service's APIs accept.
type Credentials struct {
	// Token is the bearer token of the admin API under /api/v1/.
	Token string
	// AccessKeys map the AccessKey IDs that may sign OpenAPI calls to
	// their secrets.
	AccessKeys map[string]string
}

// api is the service on HTTP: it checks credentials, decodes requests,
// runs the service's actions and shapes their answers.
type api struct {
	svc      *Service
	token    string // of the admin API
	verifier *openapi.Verifier
	rpc      map[string]rpcAction // the OpenAPI's actions
	admin    map[string]actionFunc
}

// Metrics is the registry /metrics serves, for the service's neighbours on
// its listener (the console) to add theirs.
func (s *Service) Metrics() prometheus.Registerer { return s.metrics.registry }

// Handler serves ECI's and ECS's actions at / as Alibaba Cloud's OpenAPI
// (signed with an AccessKey); the admin API under /api/v1/ (bearer token:
// market overrides, bills, followed logs); /metrics and /healthz.
func (s *Service) Handler(creds Credentials) http.Handler {
	a := &api{svc: s, token: creds.Token, verifier: &openapi.Verifier{Secrets: creds.AccessKeys, Now: s.cfg.Wall}}
	a.rpc = a.rpcActions()
	// The admin API: what ECI has no action for. ECI's own actions are
	// answered at / only, so that nothing leans on a shape ECI lacks.
	a.admin = map[string]actionFunc{
		eciapi.ActionDescribeBill:     action(s.DescribeBill),
		eciapi.ActionModifySpotMarket: action(s.ModifySpotMarket),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			openapi.WriteError(w, newRequestID(), r.Host, &APIError{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "OpenAPI calls are GET or POST"})
			return
		}
		a.serveOpenAPI(w, r)
	})
	// The metrics show what was billed: the admin token reads them, as
	// Prometheus sends it (authorization.credentials in a scrape config).
	metrics := promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			writeError(w, newRequestID(), errUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	// The exec streams: their one-time URL is their credential.
	mux.Handle(streamPrefix, s.stream)
	mux.HandleFunc("POST "+eciapi.APIPrefix+eciapi.ActionStreamContainerLog, func(w http.ResponseWriter, r *http.Request) {
		a.streamLog(w, r, newRequestID())
	})
	mux.HandleFunc("POST "+eciapi.APIPrefix+"{action}", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		name := r.PathValue("action")
		code := a.serveAction(w, r, newRequestID(), a.admin[name], false)
		if a.admin[name] == nil {
			name = "unknown"
		}
		s.metrics.latency.WithLabelValues(name, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
	})
	mux.HandleFunc(eciapi.APIPrefix+"{action}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newRequestID(), &APIError{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "actions are called with POST"})
	})
	return mux
}

// actionFunc runs an action on a JSON body and returns the response to encode.
type actionFunc func(ctx context.Context, requestID string, body []byte) (any, error)

// action adapts a typed action to the JSON handler. Unknown fields are
// refused so that a misspelt field is an error, not a silent default.
func action[Req, Resp any](f func(context.Context, Req) (Resp, error)) actionFunc {
	return func(ctx context.Context, requestID string, body []byte) (any, error) {
		req, err := decodeJSON[Req](body)
		if err != nil {
			return nil, err
		}
		resp, err := f(ctx, req)
		if err != nil {
			return nil, err
		}
		return withRequestID(resp, requestID), nil
	}
}

// decodeJSON decodes an admin request body: one JSON object (or nothing),
// no unknown field, nothing after it.
func decodeJSON[Req any](body []byte) (Req, error) {
	var req Req
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, &APIError{Status: 400, Code: "InvalidParameter", Message: "malformed request body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, &APIError{Status: 400, Code: "InvalidParameter", Message: "malformed request body: data after the JSON object"}
	}
	return req, nil
}

// serveAction checks the token, decodes the body and runs f. With noBody the
// success is left to the caller to write.
func (a *api) serveAction(w http.ResponseWriter, r *http.Request, requestID string, f actionFunc, noBody bool) int {
	if !a.authorized(r) {
		return writeError(w, requestID, errUnauthorized)
	}
	if f == nil {
		return writeError(w, requestID, &APIError{Status: http.StatusNotFound, Code: "InvalidAction.NotFound",
			Message: fmt.Sprintf("unknown action %q", r.PathValue("action"))})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return writeError(w, requestID, &APIError{Status: http.StatusRequestEntityTooLarge, Code: "InvalidParameter", Message: "request body too large or unreadable: " + err.Error()})
	}
	resp, err := f(context.WithValue(r.Context(), requestHost{}, r.Host), requestID, body)
	if err != nil {
		return writeError(w, requestID, err)
	}
	if noBody {
		return http.StatusOK
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return writeError(w, requestID, fmt.Errorf("encoding response: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return http.StatusOK
}

var errUnauthorized = &APIError{Status: http.StatusUnauthorized, Code: "Unauthorized",
	Message: "missing or wrong bearer token: send Authorization: Bearer <token> (see eci.json in the state folder)"}

// authorized reports whether r carries the admin API's bearer token.
func (a *api) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) == 1
}

func writeError(w http.ResponseWriter, requestID string, err error) int {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		apiErr = &APIError{Status: http.StatusInternalServerError, Code: "InternalError", Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(apiErr.Status)
	refusal, _ := apiErr.Spoteci.(*eciapi.FieldRefusal)
	json.NewEncoder(w).Encode(eciapi.Error{RequestId: requestID, Code: apiErr.Code, Message: apiErr.Message, Spoteci: refusal})
	return apiErr.Status
}

func newRequestID() string { return strings.ToUpper(newID()[4:]) }

// streamLog writes a container's log as text/plain, flushing as it grows
// while Follow keeps it open.
func (a *api) streamLog(w http.ResponseWriter, r *http.Request, requestID string) {
	var rc io.ReadCloser
	code := a.serveAction(w, r, requestID, action(func(ctx context.Context, req eciapi.DescribeContainerLogRequest) (struct{}, error) {
		var err error
		rc, _, err = a.svc.OpenLog(req)
		return struct{}{}, err
	}), true)
	if code != http.StatusOK {
		return
	}
	defer rc.Close()
	go func() { <-r.Context().Done(); rc.Close() }() // the client went away: stop following
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	eciapi.CopyFlushing(w, rc)
}
