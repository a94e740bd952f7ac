package cli_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/spoteci/spoteci/internal/registry"
)

// TestImageLoadNeedsToken: the server's local registry takes pushes with the
// admin token of eci.json only (spoteci image load finds it there), refuses
// them without it, and serves every read anonymously, the built-in images
// that the server published at start among them.
func TestImageLoadNeedsToken(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir)
	sd := "--state-dir=" + dir
	info, err := registry.ReadInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) name.Reference {
		r, err := name.ParseReference(info.Address+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := remote.Head(ref("library/busybox:latest")); err != nil {
		t.Fatalf("the built-in busybox was not published at start: %v", err)
	}

	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "app.tar")
	if err := tarball.WriteToFile(archive, name.MustParseReference("app:1"), img); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "image", "load", archive, "--name", "tenant/app:1", "--token", "guess", sd); err == nil ||
		!strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("image load with a wrong token: %v, want UNAUTHORIZED", err)
	}
	if err := remote.Write(ref("library/busybox:latest"), img); err == nil {
		t.Error("an anonymous push overwrote library/busybox:latest")
	} else if te := (*transport.Error)(nil); !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous push: %v, want a 401", err)
	}
	if out := mustRun(t, "image", "load", archive, "--name", "tenant/app:1", sd); strings.TrimSpace(out) != info.Address+"/tenant/app:1" {
		t.Errorf("image load printed %q", out)
	}
	got, err := remote.Image(ref("tenant/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	want, _ := img.Digest()
	if gd != want {
		t.Errorf("tenant/app:1 is %s, loaded %s", gd, want)
	}
	if d, err := remote.Head(ref("library/busybox:latest")); err != nil || d.Digest == want {
		t.Errorf("library/busybox:latest after the refused push: %v, %v", d, err)
	}
}
