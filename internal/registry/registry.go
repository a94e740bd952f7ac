// Package registry runs a local OCI distribution registry on 127.0.0.1 that
// containerd pulls the instances' images from over plain HTTP, and loads image
// archives (docker save tarballs and OCI archives) into it.
//
// The protocol is go-containerregistry's pkg/registry. That handler takes a
// pluggable blob store but keeps manifests and tags in a map in memory, so
// this package adds the disk:
//
//   - Blobs go to <dir>/blobs/sha256/<hex> through a BlobHandler of ours. It
//     is not ggcr's NewDiskBlobHandler because that one re-hashes the whole
//     blob on every HEAD and GET (its Stat verifies the content), answers 500
//     instead of 404 for a missing blob, and leaves its temporary file behind
//     when an upload fails its digest check. Ours stats by size, writes
//     through a temporary file that is renamed into place only once ggcr's
//     verifying reader reached the end without a digest or size error.
//   - Manifests: the registry's handler is wrapped; each manifest PUT or
//     DELETE that the in-memory registry accepts is journaled before the
//     client gets its answer: the manifest bytes are stored under their
//     digest in <dir>/manifests/sha256/<hex> (apart from the blobs, so that a
//     blob DELETE cannot take a manifest with it), and <dir>/refs.json maps repository → tag or digest →
//     (digest, media type). At Start, every journaled reference is replayed
//     as a PUT into a fresh in-memory registry (image manifests before
//     indexes, since ggcr checks that an index's children exist), so tags,
//     digests, tag lists and the catalog come back exactly as they were.
//
// Replaying the registry's own protocol keeps one source of truth for what
// a manifest PUT means (ggcr's handler), needs no second copy of the content
// (an OCI layout would duplicate what the blob store holds) and persists
// pushes made by any client, not only by Load. refs.json is small (one entry
// per tag and per manifest digest) and is replaced atomically on each change.
//
// Uploads still in progress (a chunked blob upload between its PATCH and its
// PUT) live in memory and are lost at a restart; the client retries them.
//
// # Who may push
//
// Reads (GET and HEAD of manifests, blobs, tag lists) need no credential:
// containerd pulls the instances' images anonymously. Every other request
// (blob uploads, manifest PUTs, DELETEs) needs the push credential given to
// Start, the service's admin token (the Token of eci.json): as a bearer token
// (Authorization: Bearer TOKEN) or as the password of basic auth under any
// user name (User by convention). Without it the answer is the distribution
// spec's 401 UNAUTHORIZED with a WWW-Authenticate: Basic challenge, and
// nothing changes. The API's base, GET /v2/, answers 401 to a request without
// the credential too: that is how clients (go-containerregistry, crane,
// containerd) learn that they must send one, while their anonymous reads go
// on. Authenticator is the credential as go-containerregistry's pushers take
// it.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/spoteci/spoteci/internal/atomicfile"
)

// DefaultListen is the address Start listens on when given none: loopback,
// a port chosen by the kernel.
const DefaultListen = "127.0.0.1:0"

// maxManifestSize bounds a manifest PUT body, as registries do (4 MiB).
const maxManifestSize = 4 << 20

// User is the user name of the basic-auth credential that Authenticator
// gives; the registry checks the password only.
const User = "spoteci"

// realm is the realm of the registry's basic-auth challenge.
const realm = "spoteci local registry"

// Authenticator is the push credential for a registry started with token,
// as go-containerregistry's remote takes it (remote.WithAuth): basic auth,
// user User, password token.
func Authenticator(token string) authn.Authenticator {
	return &authn.Basic{Username: User, Password: token}
}

// Registry is a running registry server. Its content lives under the folder
// given to Start and survives a restart on the same folder.
type Registry struct {
	dir   string
	ln    net.Listener
	srv   *http.Server
	inner http.Handler
	blobs *blobStore
	mfs   *blobStore // manifest bytes by digest
	log   *slog.Logger
	token string // the push credential

	mu   sync.Mutex // serializes manifest writes and refs.json
	refs refsFile

	inflight  atomic.Int64 // requests being served
	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// refsFile is <dir>/refs.json: repository → reference (tag or digest) → ref.
type refsFile struct {
	Repositories map[string]map[string]refEntry `json:"repositories"`
}

type refEntry struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
}

// Start opens (or creates) the registry stored under dir and serves it on
// listen, a loopback address ("" means DefaultListen). Pushes need token
// (see Authenticator), which must not be empty. The server stops when ctx is
// done or Close is called. log receives one debug line per request; nil
// discards them.
func Start(ctx context.Context, dir, listen, token string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if token == "" {
		return nil, errors.New("registry: no push credential (an empty token would let anyone push)")
	}
	if listen == "" {
		listen = DefaultListen
	}
	if err := checkLoopback(listen); err != nil {
		return nil, err
	}
	// Private like the state folder it lives in (internal/statedir).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	blobs, err := newBlobStore(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, err
	}
	mfs, err := newBlobStore(filepath.Join(dir, "manifests"))
	if err != nil {
		return nil, err
	}
	r := &Registry{dir: dir, blobs: blobs, mfs: mfs, log: log, token: token, done: make(chan struct{})}
	reqLog := slog.NewLogLogger(log.With("component", "registry").Handler(), slog.LevelDebug)
	r.inner = ggcrregistry.New(
		ggcrregistry.Logger(reqLog),
		ggcrregistry.WithBlobHandler(blobs),
	)
	if err := r.replay(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r.ln = ln
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          reqLog,
	}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("registry stopped", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = r.Close()
		case <-r.done:
		}
	}()
	log.Info("registry listening", "addr", r.Addr(), "dir", dir)
	return r, nil
}

// checkLoopback refuses to serve beyond this machine a registry that
// answers reads without authentication, over plain HTTP.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("registry: listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("registry: listen address %q is not a loopback address (the registry serves reads without authentication, over plain HTTP)", listen)
	}
	return nil
}

// Addr is the address the registry serves on, "127.0.0.1:PORT", which is
// also the host part of the references it holds.
func (r *Registry) Addr() string { return r.ln.Addr().String() }

// Authenticator is the registry's push credential (see the package
// function Authenticator).
func (r *Registry) Authenticator() authn.Authenticator { return Authenticator(r.token) }

// Dir is the folder the registry keeps its content in.
func (r *Registry) Dir() string { return r.dir }

// Close stops the server, letting requests in flight finish for up to five
// seconds. The content stays on disk.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Shutdown stops accepting and closes idle connections at once, but
		// waits up to 5 s for a connection that has sent no request yet
		// (as clients that dial ahead leave): once no request is in flight,
		// Close ends those.
		shut := make(chan error, 1)
		go func() { shut <- r.srv.Shutdown(ctx) }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for r.inflight.Load() > 0 && ctx.Err() == nil {
			<-tick.C
		}
		closeErr := r.srv.Close()
		if err := <-shut; err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.closeErr = err
		} else if closeErr != nil {
			r.closeErr = closeErr
		}
	})
	return r.closeErr
}

// ServeHTTP refuses writes without the push credential, journals manifest
// writes and hands everything to ggcr's handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.inflight.Add(1)
	defer r.inflight.Add(-1)
	if !r.authorized(req) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			r.log.Warn("registry: write refused without the push credential", "method", req.Method, "path", req.URL.Path, "remote", req.RemoteAddr)
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", realm))
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		writeRegError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: pushes need the admin token of eci.json (basic auth, any user name, or a bearer token)")
		return
	}
	if repo, target, ok := manifestPath(req.URL.Path); ok && (req.Method == http.MethodPut || req.Method == http.MethodDelete) {
		r.writeManifest(w, req, repo, target)
		return
	}
	if req.Method == http.MethodGet && req.Header.Get("Range") != "" {
		r.completeRange(req)
	}
	r.inner.ServeHTTP(w, req)
}

// authorized reports whether req may go on: a read needs no credential,
// except the API's base /v2/, which clients ask to learn whether they must
// send one; everything else needs the push credential.
func (r *Registry) authorized(req *http.Request) bool {
	base := req.URL.Path == "/v2/" || req.URL.Path == "/v2"
	if (req.Method == http.MethodGet || req.Method == http.MethodHead) && !base {
		return true
	}
	var given string
	if _, pass, ok := req.BasicAuth(); ok {
		given = pass
	} else if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		given = strings.TrimSpace(tok)
	}
	return given != "" && subtle.ConstantTimeCompare([]byte(given), []byte(r.token)) == 1
}

// manifestPath splits /v2/<repo>/manifests/<target>.
func manifestPath(p string) (repo, target string, ok bool) {
	elem := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(elem) < 4 || elem[0] != "v2" || elem[len(elem)-2] != "manifests" {
		return "", "", false
	}
	return strings.Join(elem[1:len(elem)-2], "/"), elem[len(elem)-1], true
}

// completeRange rewrites an open-ended "bytes=N-" range on a blob, which
// containerd sends to resume a download, into the "bytes=N-M" form ggcr's
// handler understands.
func (r *Registry) completeRange(req *http.Request) {
	rng := req.Header.Get("Range")
	if !strings.HasPrefix(rng, "bytes=") || !strings.HasSuffix(rng, "-") {
		return
	}
	start, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"), 10, 64)
	if err != nil {
		return
	}
	elem := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")
	if len(elem) < 4 || elem[len(elem)-2] != "blobs" {
		return
	}
	h, err := v1.NewHash(elem[len(elem)-1])
	if err != nil {
		return
	}
	size, err := r.blobs.Stat(req.Context(), "", h)
	if err != nil || start >= size {
		return
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, size-1))
}

// writeManifest runs a manifest PUT or DELETE through the in-memory registry
// and, when it succeeds, records it on disk before answering.
func (r *Registry) writeManifest(w http.ResponseWriter, req *http.Request, repo, target string) {
	var body []byte
	if req.Method == http.MethodPut {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxManifestSize+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > maxManifestSize {
			writeRegError(w, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", "manifest larger than 4 MiB")
			return
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)

	var err error
	switch {
	case req.Method == http.MethodPut && rec.Code == http.StatusCreated:
		err = r.recordPut(req.Context(), repo, target, body, req.Header.Get("Content-Type"))
	case req.Method == http.MethodDelete && rec.Code == http.StatusAccepted:
		err = r.recordDelete(repo, target)
	}
	if err != nil {
		r.log.Error("registry: persisting manifest", "repo", repo, "reference", target, "err", err)
		writeRegError(w, http.StatusInternalServerError, "UNKNOWN", "persisting manifest: "+err.Error())
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func writeRegError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

func (r *Registry) recordPut(ctx context.Context, repo, target string, body []byte, mediaType string) error {
	sum := sha256.Sum256(body)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if _, err := r.mfs.Stat(ctx, "", h); err != nil {
		if err := r.mfs.Put(ctx, "", h, io.NopCloser(bytes.NewReader(body))); err != nil {
			return err
		}
	}
	if r.refs.Repositories == nil {
		r.refs.Repositories = map[string]map[string]refEntry{}
	}
	refs := r.refs.Repositories[repo]
	if refs == nil {
		refs = map[string]refEntry{}
		r.refs.Repositories[repo] = refs
	}
	e := refEntry{Digest: h.String(), MediaType: mediaType}
	refs[h.String()] = e
	refs[target] = e
	return r.saveRefs()
}

func (r *Registry) recordDelete(repo, target string) error {
	refs := r.refs.Repositories[repo]
	if _, ok := refs[target]; !ok {
		return nil
	}
	delete(refs, target)
	if len(refs) == 0 {
		delete(r.refs.Repositories, repo)
	}
	return r.saveRefs()
}

func (r *Registry) refsPath() string { return filepath.Join(r.dir, "refs.json") }

func (r *Registry) saveRefs() error {
	b, err := json.MarshalIndent(r.refs, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(r.refsPath(), append(b, '\n'), 0o644)
}

// replay loads refs.json and PUTs every journaled reference into the fresh
// in-memory registry: manifests first, then indexes, retrying those whose
// children are not in yet (indexes of indexes) until no more go in.
func (r *Registry) replay() error {
	b, err := os.ReadFile(r.refsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := json.Unmarshal(b, &r.refs); err != nil {
		return fmt.Errorf("registry: %s: %w", r.refsPath(), err)
	}
	type put struct{ repo, target string }
	var todo []put
	for repo, refs := range r.refs.Repositories {
		for target := range refs {
			todo = append(todo, put{repo, target})
		}
	}
	isIndex := func(p put) bool {
		return types.MediaType(r.refs.Repositories[p.repo][p.target].MediaType).IsIndex()
	}
	sort.Slice(todo, func(i, j int) bool {
		a, b := todo[i], todo[j]
		if ia, ib := isIndex(a), isIndex(b); ia != ib {
			return !ia
		}
		if a.repo != b.repo {
			return a.repo < b.repo
		}
		return a.target < b.target
	})
	for len(todo) > 0 {
		var failed []put
		var errs []error
		for _, p := range todo {
			if err := r.replayOne(p.repo, p.target); err != nil {
				failed = append(failed, p)
				errs = append(errs, err)
			}
		}
		if len(failed) == len(todo) {
			// Kept in refs.json (a later start may have what they lack) but
			// not served.
			for i, p := range failed {
				r.log.Warn("registry: cannot restore a reference", "repo", p.repo, "reference", p.target, "err", errs[i])
			}
			return nil
		}
		todo = failed
	}
	return nil
}

func (r *Registry) replayOne(repo, target string) error {
	e := r.refs.Repositories[repo][target]
	h, err := v1.NewHash(e.Digest)
	if err != nil {
		return err
	}
	rc, err := r.mfs.Get(context.Background(), "", h)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+target, bytes.NewReader(body))
	req.Header.Set("Content-Type", e.MediaType)
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d %s", req.URL.Path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

// blobStore keeps blobs in <dir>/sha256/<hex>, the layout of an OCI image
// layout's blobs folder.
type blobStore struct{ dir string }

func newBlobStore(dir string) (*blobStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	// Temporaries of uploads cut short by a crash.
	if tmps, err := filepath.Glob(filepath.Join(dir, ".upload-*")); err == nil {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	return &blobStore{dir: dir}, nil
}

func (s *blobStore) path(h v1.Hash) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return "", fmt.Errorf("%w: unsupported digest %s", ggcrregistry.ErrNotFound, h)
	}
	return filepath.Join(s.dir, h.Algorithm, h.Hex), nil
}

func (s *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	p, err := s.path(h)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ggcrregistry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	p, err := s.path(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ggcrregistry.ErrNotFound
	}
	return f, err
}

// Put stores the blob read from rc, which ggcr's handler wraps in a reader
// that fails at its end when the digest or size is wrong: only a blob read
// to its end without error is renamed into place.
func (s *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	p, err := s.path(h)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

func (s *blobStore) Delete(_ context.Context, _ string, h v1.Hash) error {
	p, err := s.path(h)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ggcrregistry.ErrNotFound
	}
	return err
}
