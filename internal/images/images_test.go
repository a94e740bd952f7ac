package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/spoteci/spoteci/internal/registry"
)

func TestBusyboxBuildPublishPull(t *testing.T) {
	if _, err := packageVersion(BusyboxPackage); err != nil {
		t.Skip(err)
	}
	cache := t.TempDir()
	var progress bytes.Buffer
	img, _ := Lookup("busybox")
	res, err := img.Build(t.Context(), cache, Options{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", progress.String())
	if !res.Built || res.Size == 0 {
		t.Fatalf("result %+v", res)
	}
	// A second build reuses the archive; a forced one, in another folder,
	// gives the same digest.
	again, err := img.Build(t.Context(), cache, Options{})
	if err != nil || again.Built || again.Digest != res.Digest {
		t.Fatalf("second build: %+v, %v", again, err)
	}
	other, err := img.Build(t.Context(), t.TempDir(), Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if other.Digest != res.Digest {
		t.Errorf("rebuilt digest %s, first %s", other.Digest, res.Digest)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, ".build-*")); len(leftovers) > 0 {
		t.Errorf("build folders left: %v", leftovers)
	}

	reg, err := registry.Start(t.Context(), t.TempDir(), "", "test-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// Publish only the busybox image: the perl one is not in this cache.
	saved := Builtin
	Builtin = []Image{img}
	t.Cleanup(func() { Builtin = saved })
	pushed, err := Publish(t.Context(), reg.Addr(), reg.Authenticator(), cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{reg.Addr() + "/library/busybox:latest"}; !slices.Equal(pushed, want) {
		t.Fatalf("pushed %v, want %v", pushed, want)
	}
	if pushed, err := Publish(t.Context(), reg.Addr(), reg.Authenticator(), cache); err != nil || len(pushed) != 0 {
		t.Fatalf("second Publish pushed %v, %v; want nothing", pushed, err)
	}

	ref, err := registry.Target(reg.Addr(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != res.Digest {
		t.Errorf("pulled %s, built %s", d, res.Digest)
	}
	cf, err := pulled.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Cmd, []string{"sh"}) || cf.OS != "linux" || !cf.Created.Equal(Epoch) {
		t.Errorf("config: cmd %q os %s created %s", cf.Config.Cmd, cf.OS, cf.Created)
	}
	layers, err := pulled.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = hdr
	}
	bb := entries["bin/busybox"]
	if bb == nil || bb.Typeflag != tar.TypeReg || bb.Mode&0o111 == 0 || bb.Size < 500_000 || bb.Uid != 0 {
		t.Fatalf("bin/busybox: %+v", bb)
	}
	if sh := entries["bin/sh"]; sh == nil || sh.Typeflag != tar.TypeSymlink || sh.Linkname != "/bin/busybox" {
		t.Errorf("bin/sh: %+v", sh)
	}
	if tmp := entries["tmp/"]; tmp == nil || tmp.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp/: %+v", tmp)
	}
	if entries["etc/passwd"] == nil || entries["etc/group"] == nil {
		t.Error("no etc/passwd or etc/group")
	}
}

func TestWriteLayer(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/perl"), []byte("#!perl"), 0o755))
	must(os.Link(filepath.Join(root, "usr/bin/perl"), filepath.Join(root, "usr/bin/perl5.36.0")))
	must(os.Symlink("perl", filepath.Join(root, "usr/bin/p")))
	must(os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("su"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/su"), 0o755|fs.ModeSetuid))
	old := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	must(os.Chtimes(filepath.Join(root, "usr/bin/su"), old, old))

	dst := filepath.Join(t.TempDir(), "l.tar.gz")
	st, err := writeLayer(root, dst, true)
	must(err)
	if st.Entries != 6 {
		t.Errorf("%d entries, want 6", st.Entries)
	}
	out, err := exec.Command("tar", "-tvzf", dst).CombinedOutput()
	must(err)
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var names []string
	for _, l := range lines {
		names = append(names, strings.Fields(l)[5])
	}
	want := []string{"usr/", "usr/bin/", "usr/bin/p", "usr/bin/perl", "usr/bin/perl5.36.0", "usr/bin/su"}
	if !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	for _, l := range lines {
		switch f := strings.Fields(l); f[5] {
		case "usr/bin/perl5.36.0":
			if !strings.HasPrefix(f[0], "h") || f[len(f)-1] != "usr/bin/perl" {
				t.Errorf("not a hard link: %s", l)
			}
		case "usr/bin/p":
			if !strings.HasPrefix(f[0], "l") {
				t.Errorf("not a symlink: %s", l)
			}
		case "usr/bin/su":
			if f[0] != "-rwsr-xr-x" || f[3] != "2020-01-02" || f[1] != "0/0" {
				t.Errorf("su: %s", l)
			}
		case "usr/":
			if f[3] != "2023-06-10" {
				t.Errorf("usr/ not clamped: %s", l)
			}
		}
	}
	// The same tree gives the same bytes.
	dst2 := filepath.Join(t.TempDir(), "l.tar.gz")
	_, err = writeLayer(root, dst2, true)
	must(err)
	a, _ := os.ReadFile(dst)
	b, _ := os.ReadFile(dst2)
	if !bytes.Equal(a, b) {
		t.Error("two layers of one tree differ")
	}
}

func TestDebianMirror(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := DebianMirror(dir); m != DefaultMirror {
		t.Errorf("no sources: %s", m)
	}
	must(os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(`Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
`), 0o644))
	must(os.WriteFile(filepath.Join(dir, "sources.list.d", "other.list.disabled"), []byte("deb http://no.example/debian bookworm main\n"), 0o644))
	if m, from := DebianMirror(dir); m != "http://mirror.example/debian" {
		t.Errorf("deb822: %s from %s", m, from)
	}
	must(os.WriteFile(filepath.Join(dir, "sources.list"), []byte("# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n"), 0o644))
	if m, _ := DebianMirror(dir); m != "http://one.example/debian" {
		t.Errorf("one-line: %s", m)
	}
}

func TestShadowDates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(p, []byte("root:*:20784:0:99999:7:::\nnobody:*::0:99999:7:::\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := fixShadowDates(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if want := "root:*:19518:0:99999:7:::\nnobody:*::0:99999:7:::\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

// TestPerlImage checks the perl image: unpacked, it prints 2,000 digits of
// pi in a chroot. It runs on bin/images/perl.tar when that is built (make
// images), or on a fresh build when SPOTECI_TEST_PERL_BUILD=1 asks for one (a
// debootstrap: a minute or so). It needs root for debootstrap and chroot.
func TestPerlImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (debootstrap, chroot)")
	}
	img, _ := Lookup("perl")
	archive := img.Path(filepath.Join("..", "..", DefaultCacheDir))
	cached, cerr := readIndex(archive)
	if os.Getenv("SPOTECI_TEST_PERL_BUILD") != "" {
		var progress bytes.Buffer
		res, err := img.Build(t.Context(), t.TempDir(), Options{Progress: &progress, Force: true})
		t.Logf("%s", progress.String())
		if err != nil {
			t.Fatal(err)
		}
		if cerr == nil {
			// Equal unless Debian updated a package since the cached build.
			t.Logf("fresh build %s, cached %s: same digest %v", res.Digest, cached.Manifests[0].Digest, res.Digest == cached.Manifests[0].Digest)
		}
		archive = res.Path
	} else if cerr != nil {
		t.Skipf("%v: build it (make images) or set SPOTECI_TEST_PERL_BUILD=1", cerr)
	}

	oci := t.TempDir()
	if out, err := exec.Command("tar", "-xf", archive, "-C", oci).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	idx, err := layout.ImageIndexFromPath(oci)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(img.Repos) {
		t.Errorf("%d names in the archive, want %d", len(im.Manifests), len(img.Repos))
	}
	image, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Cmd) != 2 || !strings.HasPrefix(cf.Config.Cmd[0], "perl5.") || cf.Config.Cmd[1] != "-de0" {
		t.Errorf("Cmd %q, want Docker Hub's [perl5.x.y -de0]", cf.Config.Cmd)
	}
	layers, err := image.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	untar := exec.Command("tar", "-x", "-C", root)
	untar.Stdin = rc
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking the layer: %v: %s", err, out)
	}
	rc.Close()
	for _, gone := range []string{"var/lib/apt/lists/partial", "usr/share/man/man1", "var/cache/apt/archives"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is in the image", gone)
		}
	}
	// The runtime provides /dev; perl -e opens /dev/null.
	if err := syscall.Mknod(filepath.Join(root, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chroot", root, cf.Config.Cmd[0], "-Mbignum=bpi", "-wle", "print bpi(2000)")
	cmd.Env = cf.Config.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %.300s", err, out)
	}
	digits := 0
	for _, c := range out {
		if '0' <= c && c <= '9' {
			digits++
		}
	}
	if !strings.HasPrefix(string(out), "3.14159265358979") || digits != 2000 {
		t.Errorf("bpi(2000) printed %d digits: %.80s…", digits, out)
	}
}
