package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testToken is the push credential of the tests' registries.
const testToken = "test-token"

// withAuth is the option that pushes with the tests' credential.
var withAuth = remote.WithAuth(Authenticator(testToken))

func start(t *testing.T, dir string) *Registry {
	t.Helper()
	r, err := Start(t.Context(), dir, "", testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ref(t *testing.T, r *Registry, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Addr()+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pull fetches ref in full (manifest, config, every layer) and returns its digest.
func pull(t *testing.T, ref name.Reference) v1.Hash {
	t.Helper()
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	if _, err := img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil { // the verifying reader checks the digest
			t.Fatalf("layer of %s: %v", ref, err)
		}
		rc.Close()
	}
	return digest(t, img)
}

func TestPushPullRestart(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir)

	img := randomImage(t)
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, r, "ostest/perl:latest"), img, withAuth); err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(ref(t, r, "eci_open/perl:5").(name.Tag), img, withAuth); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref(t, r, "multi/arch:v1"), idx, withAuth); err != nil {
		t.Fatal(err)
	}
	// A tag pushed then deleted stays deleted.
	if err := remote.Write(ref(t, r, "gone/away:x"), randomImage(t), withAuth); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(ref(t, r, "gone/away:x"), withAuth); err != nil {
		t.Fatal(err)
	}
	want := digest(t, img)
	if got := pull(t, ref(t, r, "ostest/perl:latest")); got != want {
		t.Fatalf("pulled %s, pushed %s", got, want)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, dir)
	if r2.Addr() == "" {
		t.Fatal("no address")
	}
	for _, s := range []string{"ostest/perl:latest", "eci_open/perl:5", "ostest/perl@" + want.String()} {
		if got := pull(t, ref(t, r2, s)); got != want {
			t.Errorf("after restart %s is %s, want %s", s, got, want)
		}
	}
	got, err := remote.Index(ref(t, r2, "multi/arch:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, got) != digest(t, idx) {
		t.Errorf("index digest changed over a restart")
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if got := pull(t, ref(t, r2, "multi/arch@"+d.Digest.String())); got != d.Digest {
			t.Errorf("child %s pulled as %s", d.Digest, got)
		}
	}
	if _, err := remote.Head(ref(t, r2, "gone/away:x")); err == nil {
		t.Error("deleted tag came back after a restart")
	}
	tags, err := remote.List(ref(t, r2, "ostest/perl:latest").Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tags, []string{"latest"}) {
		t.Errorf("tags %v, want [latest]", tags)
	}
}

func TestOpenEndedRange(t *testing.T) {
	r := start(t, t.TempDir())
	img := randomImage(t)
	if err := remote.Write(ref(t, r, "a/b:c"), img, withAuth); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d := digest(t, layers[0])
	size, _ := layers[0].Size()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/a/b/blobs/%s", r.Addr(), d), nil)
	req.Header.Set("Range", "bytes=10-")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || int64(len(b)) != size-10 {
		t.Fatalf("status %d, %d bytes; want 206 and %d bytes", resp.StatusCode, len(b), size-10)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := Start(context.Background(), t.TempDir(), "0.0.0.0:0", testToken, nil); err == nil {
		t.Fatal("Start listened on all interfaces")
	}
}

func TestInfo(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadInfo(dir); err == nil {
		t.Fatal("ReadInfo of an empty folder succeeded")
	}
	if err := WriteInfo(dir, Info{Address: "127.0.0.1:5000"}); err != nil {
		t.Fatal(err)
	}
	info, err := ReadInfo(dir)
	if err != nil || info.Address != "127.0.0.1:5000" {
		t.Fatalf("ReadInfo = %+v, %v", info, err)
	}
}

func TestTarget(t *testing.T) {
	for in, want := range map[string]string{
		"perl":                        "127.0.0.1:1/library/perl:latest",
		"docker.io/library/perl:5.36": "127.0.0.1:1/library/perl:5.36",
		"ostest/perl":                 "127.0.0.1:1/ostest/perl:latest",
		"registry.cn-hangzhou.aliyuncs.com/eci_open/perl:5": "127.0.0.1:1/eci_open/perl:5",
		"busybox@sha256:" + fmt.Sprintf("%064x", 1):         "127.0.0.1:1/library/busybox@sha256:" + fmt.Sprintf("%064x", 1),
	} {
		got, err := Target("127.0.0.1:1", in)
		if err != nil || got.String() != want {
			t.Errorf("Target(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

func TestLoadDockerArchive(t *testing.T) {
	r := start(t, t.TempDir())
	img := randomImage(t)
	tag, _ := name.NewTag("perl:5.36")
	archive := filepath.Join(t.TempDir(), "perl.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	pushed, err := Load(t.Context(), r.Addr(), r.Authenticator(), archive)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{r.Addr() + "/library/perl:5.36"}; !slices.Equal(pushed, want) {
		t.Fatalf("pushed %v, want %v", pushed, want)
	}
	want := digest(t, img)
	if got := pull(t, ref(t, r, "library/perl:5.36")); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	// Names given replace the archive's.
	pushed, err = Load(t.Context(), r.Addr(), r.Authenticator(), archive, "ostest/perl:latest", "eci_open/perl:5")
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed) != 2 {
		t.Fatalf("pushed %v", pushed)
	}
	if got := pull(t, ref(t, r, "eci_open/perl:5")); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
}

func TestLoadOCIArchive(t *testing.T) {
	r := start(t, t.TempDir())
	a, b := randomImage(t), randomImage(t)
	multi, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	named := func(n string) map[string]string {
		return map[string]string{AnnotationImageName: n, AnnotationRefName: "latest"}
	}
	ii := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Annotations: named("docker.io/library/a:latest")}},
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Annotations: named("docker.io/ostest/a:latest")}},
		mutate.IndexAddendum{Add: b, Descriptor: v1.Descriptor{Annotations: map[string]string{AnnotationRefName: "example.com/b:2"}}},
		mutate.IndexAddendum{Add: multi, Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex, Annotations: named("multi:1")}},
	)
	archive := ociArchive(t, ii)

	pushed, err := Load(t.Context(), r.Addr(), r.Authenticator(), archive)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pushed)
	want := []string{r.Addr() + "/b:2", r.Addr() + "/library/a:latest", r.Addr() + "/library/multi:1", r.Addr() + "/ostest/a:latest"}
	if !slices.Equal(pushed, want) {
		t.Fatalf("pushed %v, want %v", pushed, want)
	}
	if got := pull(t, ref(t, r, "ostest/a:latest")); got != digest(t, a) {
		t.Errorf("ostest/a is %s, want %s", got, digest(t, a))
	}
	if got := pull(t, ref(t, r, "b:2")); got != digest(t, b) {
		t.Errorf("b is %s, want %s", got, digest(t, b))
	}
	gotIdx, err := remote.Index(ref(t, r, "library/multi:1"))
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, gotIdx) != digest(t, multi) {
		t.Error("multi:1 is not the archive's index")
	}

	// One image under several names plus --name: pushed once under the refs.
	single := ociArchive(t, mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Annotations: named("x:1")}},
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Annotations: named("y:1")}},
	))
	pushed, err = Load(t.Context(), r.Addr(), r.Authenticator(), single, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pushed, []string{r.Addr() + "/library/busybox:latest"}) {
		t.Fatalf("pushed %v", pushed)
	}
	// Several images plus --name: the whole index under the name.
	if _, err := Load(t.Context(), r.Addr(), r.Authenticator(), archive, "all:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Index(ref(t, r, "library/all:1")); err != nil {
		t.Fatal(err)
	}
	// An image without a name and no --name is an error.
	unnamed := ociArchive(t, mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: b}))
	if _, err := Load(t.Context(), r.Addr(), r.Authenticator(), unnamed); err == nil {
		t.Error("loaded an unnamed image without a name")
	}
}

// ociArchive writes ii as an OCI image layout and tars it.
func ociArchive(t *testing.T, ii v1.ImageIndex) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := layout.Write(dir, ii); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "oci.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return archive
}

// TestPushNeedsCredentials: every write without the push credential is
// refused with the distribution spec's 401 UNAUTHORIZED and a basic-auth
// challenge, and changes nothing; writes with it (basic auth under any user
// name, or a bearer token) go through; reads need none.
func TestPushNeedsCredentials(t *testing.T) {
	if _, err := Start(t.Context(), t.TempDir(), "", "", nil); err == nil {
		t.Fatal("Start without a push credential succeeded")
	}
	r := start(t, t.TempDir())
	perl, evil := randomImage(t), randomImage(t)
	if err := remote.Write(ref(t, r, "eci_open/perl:5"), perl, withAuth); err != nil {
		t.Fatal(err)
	}

	// go-containerregistry's pusher, anonymous and with a wrong password.
	for what, opt := range map[string]remote.Option{
		"anonymous":      remote.WithAuth(authn.Anonymous),
		"wrong password": remote.WithAuth(&authn.Basic{Username: User, Password: "guess"}),
		"wrong bearer":   remote.WithAuth(authn.FromConfig(authn.AuthConfig{RegistryToken: "guess"})),
	} {
		err := remote.Write(ref(t, r, "eci_open/perl:5"), evil, opt)
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s push: %v, want a 401", what, err)
		}
	}

	// The same by hand: each write method, answered 401 with the spec's body
	// and a challenge that standard clients answer.
	m, err := perl.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := perl.MediaType()
	layers, _ := evil.Layers()
	evilLayer := digest(t, layers[0])
	base := "http://" + r.Addr() + "/v2/eci_open/perl"
	do := func(method, url string, body []byte, auth func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPut && strings.Contains(url, "/manifests/") {
			req.Header.Set("Content-Type", string(mt))
		}
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, w := range []struct{ method, url string }{
		{http.MethodPut, base + "/manifests/other"},
		{http.MethodDelete, base + "/manifests/5"},
		{http.MethodPost, base + "/blobs/uploads/"},
		{http.MethodPost, base + "/blobs/uploads/?digest=" + evilLayer.String()},
		{http.MethodPatch, base + "/blobs/uploads/1"},
		{http.MethodPut, base + "/blobs/uploads/1?digest=" + evilLayer.String()},
		{http.MethodDelete, base + "/blobs/" + evilLayer.String()},
		{http.MethodGet, "http://" + r.Addr() + "/v2/"},
	} {
		resp := do(w.method, w.url, m, nil)
		var body struct {
			Errors []struct{ Code, Message string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Errorf("%s %s: decoding the answer: %v", w.method, w.url, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || len(body.Errors) != 1 || body.Errors[0].Code != "UNAUTHORIZED" ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Basic realm="`) {
			t.Errorf("%s %s without credentials: %d %+v, WWW-Authenticate %q; want 401 UNAUTHORIZED with a Basic challenge",
				w.method, w.url, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// Nothing changed: the tag still holds perl, no other tag or blob came.
	if got := pull(t, ref(t, r, "eci_open/perl:5")); got != digest(t, perl) {
		t.Fatalf("eci_open/perl:5 is %s after refused pushes, want %s", got, digest(t, perl))
	}
	if _, err := remote.Head(ref(t, r, "eci_open/perl:other")); err == nil {
		t.Error("a refused manifest PUT made a tag")
	}
	if resp := do(http.MethodHead, base+"/blobs/"+evilLayer.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of a refused push's layer: %d, want 404", resp.StatusCode)
	}

	// With the credential: basic auth under any user name, or a bearer token.
	if resp := do(http.MethodGet, "http://"+r.Addr()+"/v2/", nil, func(req *http.Request) { req.SetBasicAuth("anyone", testToken) }); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with the credential: %d, want 200", resp.StatusCode)
	}
	if resp := do(http.MethodPut, base+"/manifests/other", m, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+testToken) }); resp.StatusCode != http.StatusCreated {
		t.Errorf("manifest PUT with the bearer token: %d, want 201", resp.StatusCode)
	}
	if err := remote.Write(ref(t, r, "eci_open/perl:6"), evil, remote.WithAuth(authn.FromConfig(authn.AuthConfig{RegistryToken: testToken}))); err != nil {
		t.Errorf("push with the bearer token: %v", err)
	}
	if err := remote.Write(ref(t, r, "eci_open/perl:5"), evil, remote.WithAuth(&authn.Basic{Username: "ci", Password: testToken})); err != nil {
		t.Fatalf("push with basic auth: %v", err)
	}
	// Reads stay anonymous.
	if got := pull(t, ref(t, r, "eci_open/perl:5")); got != digest(t, evil) {
		t.Errorf("eci_open/perl:5 is %s after an authenticated push, want %s", got, digest(t, evil))
	}
	if got := pull(t, ref(t, r, "eci_open/perl:other")); got != digest(t, perl) {
		t.Errorf("eci_open/perl:other is %s, want %s", got, digest(t, perl))
	}
}
