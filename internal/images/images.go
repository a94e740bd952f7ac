// Package images builds the container images spoteci's instances run, offline
// from Debian packages, and publishes them into the local registry
// (internal/registry) under the names the examples' pods ask for.
//
// Each image is one layer made from a root filesystem folder: `perl` is a
// Debian 12 `debootstrap --variant=minbase` system with perl and
// libmath-bigint-perl, `busybox` is the static busybox of Debian's
// busybox-static package with a link per applet. A build writes an OCI
// archive (a tar of an OCI image layout) into a cache folder, bin/images by
// default; a cached archive is reused until its recipe stamp changes. Files,
// the layer and the config carry times clamped to Epoch, and entries are
// written in a fixed order, so the same packages give the same digests.
package images

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/spoteci/spoteci/internal/registry"
)

// DefaultCacheDir is where `spoteci image build` keeps the archives.
const DefaultCacheDir = "bin/images"

// AnnotationStamp, on an archive's index.json, identifies the recipe and the
// inputs it was built from.
const AnnotationStamp = "org.spoteci.image.stamp"

// PathEnv is the PATH of every image, Docker's default.
const PathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image is one image spoteci builds.
type Image struct {
	Name    string   // "perl"
	Archive string   // file name of its OCI archive in the cache folder
	Repos   []string // the references it is published under in the local registry
	About   string   // one line on what is in it

	// stamp names the recipe and its inputs: an archive with another stamp
	// is rebuilt.
	stamp func() (string, error)
	// fill populates b.rootfs and returns the image's config.
	fill func(ctx context.Context, b *builder) (v1.Config, error)
	// rootOwned writes every file as owned by root (a build without root).
	rootOwned bool
}

// Builtin are the images spoteci's examples use. Docker Hub's short name
// `perl` is docker.io/library/perl:latest; the others are the names the ECI
// guides' pods use, served through containerd mirrors that send every
// registry host to the local registry.
var Builtin = []Image{
	{
		Name:    "perl",
		Archive: "perl.tar",
		Repos:   []string{"library/perl:latest", "ostest/perl:latest", "eci_open/perl:5"},
		About:   "Debian 12 minbase, perl 5.36 and libmath-bigint-perl 1.999838",
		stamp:   perlStamp,
		fill:    fillPerl,
	},
	{
		Name:      "busybox",
		Archive:   "busybox.tar",
		Repos:     []string{"library/busybox:latest"},
		About:     "Debian's static busybox and a link per applet",
		stamp:     busyboxStamp,
		fill:      fillBusybox,
		rootOwned: true,
	},
	{
		Name:      "spoteci",
		Archive:   "spoteci.tar",
		Repos:     []string{NodeRepo},
		About:     "the running spoteci binary (static), CA certificates and a non-root user: the chart's node",
		stamp:     nodeStamp,
		fill:      fillNode,
		rootOwned: true,
	},
}

// Lookup returns the Builtin image called name.
func Lookup(name string) (Image, bool) {
	for _, img := range Builtin {
		if img.Name == name {
			return img, true
		}
	}
	return Image{}, false
}

// Path is the image's archive in cacheDir.
func (img Image) Path(cacheDir string) string { return filepath.Join(cacheDir, img.Archive) }

// Options tune Build.
type Options struct {
	// Mirror is the Debian mirror debootstrap downloads from; "" means the
	// one the machine's apt sources use for bookworm (DebianMirror).
	Mirror string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Force rebuilds images whose cached archive is current.
	Force bool
}

// Result describes an image's archive after Build.
type Result struct {
	Image    Image
	Path     string        // the archive
	Digest   v1.Hash       // of the image manifest
	Size     int64         // of the archive, bytes
	Built    bool          // false when the cached archive was current
	Duration time.Duration // of the build
}

// Build builds the named images (every Builtin image when none is named) into
// cacheDir, skipping those whose archive is there with the current stamp.
func Build(ctx context.Context, cacheDir string, opts Options, names ...string) ([]Result, error) {
	todo := Builtin
	if len(names) > 0 {
		todo = nil
		for _, n := range names {
			img, ok := Lookup(n)
			if !ok {
				return nil, fmt.Errorf("no image %q (there are %s)", n, strings.Join(builtinNames(), ", "))
			}
			todo = append(todo, img)
		}
	}
	var results []Result
	for _, img := range todo {
		res, err := img.Build(ctx, cacheDir, opts)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

func builtinNames() []string {
	var ns []string
	for _, img := range Builtin {
		ns = append(ns, img.Name)
	}
	return ns
}

// Build writes the image's archive into cacheDir unless it is there with
// the current stamp (or opts.Force).
func (img Image) Build(ctx context.Context, cacheDir string, opts Options) (Result, error) {
	start := time.Now()
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	b := &builder{img: img, opts: opts, progress: progress}
	res := Result{Image: img, Path: img.Path(cacheDir)}
	stamp, err := img.stamp()
	if err != nil {
		return res, fmt.Errorf("image %s: %w", img.Name, err)
	}
	if !opts.Force {
		if idx, err := readIndex(res.Path); err == nil && idx.Annotations[AnnotationStamp] == stamp && len(idx.Manifests) > 0 {
			res.Digest = idx.Manifests[0].Digest
			if fi, err := os.Stat(res.Path); err == nil {
				res.Size = fi.Size()
			}
			b.logf("%s is current (%s)", res.Path, stamp)
			return res, nil
		}
	}
	b.logf("building %s: %s", res.Path, img.About)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return res, err
	}
	if b.cacheDir, err = filepath.Abs(cacheDir); err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(cacheDir, ".build-"+img.Name+"-")
	if err != nil {
		return res, err
	}
	defer func() {
		if err := removeTree(work); err != nil {
			b.logf("leaving %s: %v", work, err)
		}
	}()
	b.rootfs = filepath.Join(work, "rootfs")
	if err := os.Mkdir(b.rootfs, 0o755); err != nil {
		return res, err
	}
	cfg, err := img.fill(ctx, b)
	if err != nil {
		return res, fmt.Errorf("image %s: %w", img.Name, err)
	}

	layerPath := filepath.Join(work, "layer.tar.gz")
	t := time.Now()
	st, err := writeLayer(b.rootfs, layerPath, img.rootOwned)
	if err != nil {
		return res, fmt.Errorf("image %s: writing its layer: %w", img.Name, err)
	}
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return res, err
	}
	lsize, _ := layer.Size()
	b.logf("layer: %d entries, %s of files, %s compressed, in %s", st.Entries, mib(st.Bytes), mib(lsize), time.Since(t).Round(100*time.Millisecond))

	image, err := assemble(img, layer, cfg, stamp)
	if err != nil {
		return res, err
	}
	if err := writeArchive(filepath.Join(work, "oci"), res.Path, img, image, stamp); err != nil {
		return res, fmt.Errorf("image %s: %w", img.Name, err)
	}
	res.Built = true
	res.Duration = time.Since(start)
	if res.Digest, err = image.Digest(); err != nil {
		return res, err
	}
	if fi, err := os.Stat(res.Path); err == nil {
		res.Size = fi.Size()
	}
	b.logf("wrote %s (%s, %s) in %s", res.Path, res.Digest, mib(res.Size), res.Duration.Round(100*time.Millisecond))
	return res, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// builder is what a recipe works with.
type builder struct {
	img      Image
	opts     Options
	progress io.Writer
	cacheDir string // absolute
	rootfs   string
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "%s: %s\n", b.img.Name, fmt.Sprintf(format, args...))
}

// assemble makes the one-layer image: OCI media types, linux on this
// machine's architecture, times at Epoch.
func assemble(img Image, layer v1.Layer, cfg v1.Config, stamp string) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	image, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: Epoch},
			CreatedBy: "spoteci image build " + img.Name,
			Comment:   stamp,
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := image.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = cfg
	return mutate.ConfigFile(image, cf)
}

// writeArchive writes image as an OCI image layout in dir, one descriptor
// per repository it is published under, and tars it into dst (through a
// temporary file, renamed once complete).
func writeArchive(dir, dst string, img Image, image v1.Image, stamp string) error {
	idx := mutate.Annotations(empty.Index, map[string]string{AnnotationStamp: stamp}).(v1.ImageIndex)
	var adds []mutate.IndexAddendum
	for _, repo := range img.Repos {
		ref, err := name.NewTag(repo)
		if err != nil {
			return err
		}
		adds = append(adds, mutate.IndexAddendum{Add: image, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
			Annotations: map[string]string{
				registry.AnnotationImageName: "docker.io/" + ref.RepositoryStr() + ":" + ref.TagStr(),
				registry.AnnotationRefName:   ref.TagStr(),
			},
		}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	if _, err := layout.Write(dir, idx); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := tarLayout(dir, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// tarLayout tars an image layout folder with fixed times, modes and owners:
// oci-layout and index.json first, then the blobs in name order.
func tarLayout(dir, dst string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return err
	}
	rank := func(f string) int {
		switch f {
		case "oci-layout":
			return 0
		case "index.json":
			return 1
		}
		return 2
	}
	sort.Slice(files, func(i, j int) bool {
		if ri, rj := rank(files[i]), rank(files[j]); ri != rj {
			return ri < rj
		}
		return files[i] < files[j]
	})
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	for _, rel := range files {
		for d := path.Dir(rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dirList []string
	for d := range dirs {
		dirList = append(dirList, d)
	}
	sort.Strings(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: Epoch}); err != nil {
			return err
		}
	}
	for _, rel := range files {
		src, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		fi, err := src.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: fi.Size(), ModTime: Epoch})
		}
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// readIndex reads index.json from an OCI archive.
func readIndex(archive string) (*v1.IndexManifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no index.json", archive)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		if path.Clean(hdr.Name) == "index.json" {
			var idx v1.IndexManifest
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, fmt.Errorf("%s: index.json: %w", archive, err)
			}
			return &idx, nil
		}
	}
}

// Publish loads every Builtin image's archive from cacheDir into the
// registry at registryAddr (pushing with auth, registry.Authenticator) under
// its Repos, skipping the references that
// already hold the archive's digest, so that it costs a few HEAD requests
// when nothing changed. It returns the references it pushed. Images not
// built yet are skipped and reported in an error that wraps fs.ErrNotExist.
func Publish(ctx context.Context, registryAddr string, auth authn.Authenticator, cacheDir string) ([]string, error) {
	var pushed []string
	var notBuilt []error
	for _, img := range Builtin {
		archive := img.Path(cacheDir)
		idx, err := readIndex(archive)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// The others are published all the same.
				notBuilt = append(notBuilt, fmt.Errorf("image %s is not built (run `spoteci image build --cache-dir %s`): %w", img.Name, cacheDir, err))
				continue
			}
			return pushed, err
		}
		if len(idx.Manifests) == 0 {
			return pushed, fmt.Errorf("%s lists no image", archive)
		}
		want := idx.Manifests[0].Digest
		var missing []string
		for _, repo := range img.Repos {
			ref, err := registry.Target(registryAddr, repo)
			if err != nil {
				return pushed, err
			}
			if desc, err := remote.Head(ref, remote.WithContext(ctx)); err == nil && desc.Digest == want {
				continue
			}
			missing = append(missing, repo)
		}
		if len(missing) == 0 {
			continue
		}
		refs, err := registry.Load(ctx, registryAddr, auth, archive, missing...)
		pushed = append(pushed, refs...)
		if err != nil {
			return pushed, err
		}
	}
	return pushed, errors.Join(notBuilt...)
}
