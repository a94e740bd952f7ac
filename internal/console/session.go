package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept: signing in again and again cannot
// grow memory without end (the oldest go first).
const maxSessions = 1000

const cookieName = "spoteci_console"

// session is one signed-in browser.
type session struct {
	csrf    string // the token every POST of this session carries
	expires time.Time
}

// sessions are the signed-in browsers, by session ID. Safe for concurrent use.
type sessions struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	byID  map[string]session
}

func newSessions(c clock.PassiveClock) *sessions {
	return &sessions{clock: c, byID: map[string]session{}}
}

// randomToken is 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open starts a session and returns its ID.
func (s *sessions) open() (id string, sess session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if len(s.byID) >= maxSessions {
		var oldest string
		for k, v := range s.byID {
			if !v.expires.After(now) {
				delete(s.byID, k)
			} else if oldest == "" || v.expires.Before(s.byID[oldest].expires) {
				oldest = k
			}
		}
		if len(s.byID) >= maxSessions {
			delete(s.byID, oldest)
		}
	}
	id, sess = randomToken(), session{csrf: randomToken(), expires: now.Add(SessionTTL)}
	s.byID[id] = sess
	return id, sess
}

// get is the live session of r, if any.
func (s *sessions) get(r *http.Request) (id string, sess session, ok bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok = s.byID[c.Value]
	if ok && !sess.expires.After(s.clock.Now()) {
		delete(s.byID, c.Value)
		return "", session{}, false
	}
	return c.Value, sess, ok
}

// alive reports whether session id still holds (a stream checks it as it goes).
func (s *sessions) alive(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	return ok && sess.expires.After(s.clock.Now())
}

func (s *sessions) close(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// setCookie gives the browser its session (or, with id empty, takes it back).
func setCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	c := &http.Cookie{Name: cookieName, Value: id, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil, Expires: expires}
	if id == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// sameToken compares secrets in constant time.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// securityHeaders are on every answer of the console.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
