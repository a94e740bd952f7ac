package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/spoteci/spoteci/internal/openapi"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Prefix is where the console is mounted on the service's mux.
const Prefix = "/console/"

// Service is what the console reads and changes: the service's own actions
// (*eci.Service has them all).
type Service interface {
	DescribeContainerGroups(context.Context, eciapi.DescribeContainerGroupsRequest) (eciapi.DescribeContainerGroupsResponse, error)
	DescribeBill(context.Context, eciapi.DescribeBillRequest) (eciapi.DescribeBillResponse, error)
	DescribeSpotPriceHistory(context.Context, eciapi.DescribeSpotPriceHistoryRequest) (eciapi.DescribeSpotPriceHistoryResponse, error)
	DescribeAvailableResource(context.Context, eciapi.DescribeAvailableResourceRequest) (eciapi.DescribeAvailableResourceResponse, error)
	ModifySpotMarket(context.Context, eciapi.ModifySpotMarketRequest) (eciapi.ModifySpotMarketResponse, error)
	DescribeContainerGroupStatus(context.Context, eciapi.DescribeContainerGroupStatusRequest) (eciapi.DescribeContainerGroupStatusResponse, error)
	DescribeSpotAdvice(context.Context, eciapi.DescribeSpotAdviceRequest) (eciapi.DescribeSpotAdviceResponse, error)
	// OpenLog opens a container's log (following it if asked) and names
	// the container.
	OpenLog(eciapi.DescribeContainerLogRequest) (io.ReadCloser, string, error)
}

// Config configures a Console.
type Config struct {
	Service Service
	// Token is the admin token, the console's one password.
	Token string
	// Poll is how often a live page looks for changes (default 1 s).
	Poll time.Duration
	// Resync is how often a live page is sent whole, for what changes with
	// time alone (default 30 s).
	Resync time.Duration
	// Clock is the wall clock of sessions; nil is the real one.
	Clock clock.WithTicker
	Log   *slog.Logger
	// Metrics, if set, gets the console's own metrics: how long it spends
	// drawing pages (spoteci_console_draw_duration_seconds).
	Metrics prometheus.Registerer
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the web console under Prefix.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*template.Template // by page file name
	mux      *http.ServeMux
	origins  *http.CrossOriginProtection
	draws    *prometheus.HistogramVec
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.Service == nil || cfg.Token == "" {
		return nil, errors.New("console: a service and an admin token are required")
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Resync == 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Console{cfg: cfg, sessions: newSessions(cfg.Clock), pages: map[string]*template.Template{},
		mux: http.NewServeMux(), origins: http.NewCrossOriginProtection(),
		draws: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spoteci_console_draw_duration_seconds",
			Help:    "Time the console spent answering a request (kind page), drawing a live page's update (live, rows) or asking whether it changed (probe), by page.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"page", "kind"})}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(c.draws); err != nil {
			return nil, fmt.Errorf("console: metrics: %w", err)
		}
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	for _, name := range names {
		if name == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		c.pages[strings.TrimPrefix(name, "templates/")] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET "+Prefix+"signin", c.signInPage)
	c.mux.HandleFunc("POST "+Prefix+"signin", c.signIn)
	c.mux.HandleFunc("POST "+Prefix+"signout", c.signedIn(c.signOut))
	c.mux.HandleFunc("GET "+Prefix+"{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"instances", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET "+Prefix+"instances", c.signedIn(c.live(liveView{page: c.instances, scope: instancesScope, rows: c.instanceRows})))
	c.mux.HandleFunc("GET "+Prefix+"instances/{id}", c.signedIn(c.live(liveView{page: c.instance, scope: instanceScope})))
	c.mux.HandleFunc("GET "+Prefix+"jobs/{namespace}/{name}", c.signedIn(c.live(liveView{page: c.job, scope: jobScope})))
	c.mux.HandleFunc("GET "+Prefix+"instances/{id}/logs", c.signedIn(c.logs))
	c.mux.HandleFunc("GET "+Prefix+"bills", c.signedIn(c.page(c.bills)))
	c.mux.HandleFunc("GET "+Prefix+"bills.csv", c.signedIn(c.billsCSV))
	c.mux.HandleFunc("GET "+Prefix+"market", c.signedIn(c.page(c.market)))
	c.mux.HandleFunc("POST "+Prefix+"market", c.signedIn(c.modifyMarket))
	return c, nil
}

// ServeHTTP serves the console; mount it at Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := c.origins.Check(r); err != nil {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
	}
	if wantsStream(r) {
		c.mux.ServeHTTP(w, r) // a stream times its own draws
		return
	}
	start := time.Now()
	c.mux.ServeHTTP(w, r)
	c.drew(r, "page", time.Since(start))
}

// wantsStream says whether r is a browser's EventSource: a live page and a
// log answer it with server-sent events on the page's own URL.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// drew counts time spent drawing for r's page.
func (c *Console) drew(r *http.Request, kind string, d time.Duration) {
	c.draws.WithLabelValues(pageLabel(r), kind).Observe(d.Seconds())
}

// pageLabel is the console's page r asks for, by the first part of its
// path: one of a known few, so that the metric's labels stay bounded.
func pageLabel(r *http.Request) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	switch first {
	case "instances", "jobs", "bills", "bills.csv", "market", "signin", "signout", "static":
		return first
	case "":
		return "root"
	}
	return "other"
}

// view is what a page template gets: the page's data and the frame's.
type view struct {
	Title string
	CSRF  string // empty when signed out
	Now   time.Time
	Error string
	// Since is a live page's cursor: its stream sends what changed after it.
	Since string
	Data  any
}

// signedInHandler is a handler that runs in a session.
type signedInHandler func(w http.ResponseWriter, r *http.Request, id string, sess session)

// signedIn runs h in the request's session: without one, pages send the
// browser to sign in (and back), anything else gets a 401. A POST must
// carry the session's CSRF token.
func (c *Console) signedIn(h signedInHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, sess, ok := c.sessions.get(r)
		if !ok {
			if r.Method == http.MethodGet && !wantsStream(r) && !strings.HasSuffix(r.URL.Path, ".csv") {
				http.Redirect(w, r, Prefix+"signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameToken(r.PostFormValue("csrf"), sess.csrf) {
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
				return
			}
		}
		h(w, r, id, sess)
	}
}

// render writes page with the data, or a 500 page.
func (c *Console) render(w http.ResponseWriter, code int, page string, v view) {
	var b bytes.Buffer
	if err := c.pages[page].Execute(&b, v); err != nil {
		c.cfg.Log.Error("console: rendering", "page", page, "err", err)
		http.Error(w, "rendering "+page+" failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// signInPage is the sign-in form; next is where to go after it.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "signin.html", view{Title: "Sign in", Data: safeNext(r.FormValue("next"))})
}

// signIn opens a session for the right token. It needs no CSRF token (there
// is no session yet); CrossOriginProtection keeps other sites from posting
// it, and only the admin token opens a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := safeNext(r.PostFormValue("next"))
	if !sameToken(r.PostFormValue("token"), c.cfg.Token) {
		c.cfg.Log.Warn("console: sign-in refused: wrong token", "remote", r.RemoteAddr)
		c.render(w, http.StatusUnauthorized, "signin.html", view{Title: "Sign in", Error: "Wrong token.", Data: next})
		return
	}
	id, sess := c.sessions.open()
	setCookie(w, r, id, sess.expires)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, id string, _ session) {
	c.sessions.close(id)
	setCookie(w, r, "", time.Time{})
	http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
}

// safeNext is a place in the console to go to after signing in: a path
// under Prefix, never another site ("//evil", "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return Prefix + "instances"
	}
	return next
}

// pageFunc gathers a page's data: its template, title and data.
type pageFunc func(r *http.Request) (page, title string, data any, err error)

// page serves a page drawn by f.
func (c *Console) page(f pageFunc) signedInHandler {
	return func(w http.ResponseWriter, r *http.Request, _ string, sess session) {
		page, title, data, err := f(r)
		if err != nil {
			c.fail(w, sess, err)
			return
		}
		c.render(w, http.StatusOK, page, view{Title: title, CSRF: sess.csrf, Now: c.cfg.Clock.Now(), Data: data})
	}
}

// fail answers an error of the service: what the service said, as a page.
func (c *Console) fail(w http.ResponseWriter, sess session, err error) {
	c.render(w, statusOf(err), "error.html", view{Title: "Error", CSRF: sess.csrf, Error: err.Error()})
}

// statusOf is the HTTP status of an error: what the service said of a
// request it refused, 400 for one the console refuses, else 500.
func statusOf(err error) int {
	var refused *openapi.Error
	var badInput *inputError
	switch {
	case errors.As(err, &refused) && refused.Status >= 400 && refused.Status < 500:
		return refused.Status
	case errors.As(err, &badInput):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// inputError is a request the console itself refuses.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }
