package registry

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations that name an image in an OCI image layout's index.json:
// containerd's export writes the full name in the first and the tag in the
// second; other tools write a full reference in the second.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// Target is the reference in the local registry at registryAddr for an image
// name as a pod or an archive gives it: the registry host is dropped (the
// local registry stands in for every registry through containerd's mirrors)
// and Docker Hub's short names are expanded, so "perl" becomes
// ADDR/library/perl:latest and "registry.example.com/eci_open/perl:5" becomes
// ADDR/eci_open/perl:5. A digest reference keeps its digest.
func Target(registryAddr, image string) (name.Reference, error) {
	addr := strings.TrimPrefix(strings.TrimPrefix(registryAddr, "http://"), "https://")
	r, err := name.ParseReference(image)
	if err != nil {
		return nil, err
	}
	repo := addr + "/" + r.Context().RepositoryStr()
	switch r := r.(type) {
	case name.Digest:
		return name.NewDigest(repo+"@"+r.DigestStr(), name.Insecure)
	default:
		return name.NewTag(repo+":"+r.Identifier(), name.Insecure)
	}
}

// Load pushes the images in the archive at archivePath to the registry at
// registryAddr ("127.0.0.1:PORT") over plain HTTP with the push credential
// auth (Authenticator) and returns the references it pushed.
//
// The archive is either a `docker save` tarball (it has a manifest.json; its
// images are pushed under their RepoTags) or an OCI archive, a tar of an OCI
// image layout (it has an index.json; each manifest or index it lists is
// pushed under the name in its io.containerd.image.name annotation, or in its
// org.opencontainers.image.ref.name annotation when that is a full
// reference). Either may be gzip-compressed.
//
// When refs are given they replace the archive's names: the archive's one
// image (entries that share a digest count once) is pushed under every ref;
// an OCI archive with several images is pushed as one image index, its
// index.json, under every ref. Names go through Target.
func Load(ctx context.Context, registryAddr string, auth authn.Authenticator, archivePath string, refs ...string) ([]string, error) {
	tarPath, cleanup, err := uncompressed(archivePath)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	hasManifest, hasIndex, err := sniff(tarPath)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", archivePath, err)
	}
	var items []item
	switch {
	case hasManifest:
		items, err = dockerItems(tarPath, len(refs) > 0)
	case hasIndex:
		// ggcr reads an image layout from a folder, lazily: it stays until
		// the push is done.
		dir, derr := os.MkdirTemp("", "spoteci-oci-*")
		if derr != nil {
			return nil, derr
		}
		defer os.RemoveAll(dir)
		if err = untar(tarPath, dir); err == nil {
			items, err = ociItems(dir, len(refs) > 0)
		}
	default:
		return nil, fmt.Errorf("%s is neither a docker save tarball (no manifest.json) nor an OCI archive (no index.json)", archivePath)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archivePath, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s holds no image", archivePath)
	}
	if len(refs) > 0 {
		if len(items) > 1 {
			return nil, fmt.Errorf("%s holds %d images; names given on the command line apply to one image", archivePath, len(items))
		}
		items[0].names = refs
	}
	return push(ctx, registryAddr, auth, archivePath, items)
}

// item is one image or index of an archive and the names to push it under.
type item struct {
	t      remote.Taggable
	digest string
	names  []string
}

func push(ctx context.Context, registryAddr string, auth authn.Authenticator, archivePath string, items []item) ([]string, error) {
	todo := map[name.Reference]remote.Taggable{}
	owner := map[string]string{}
	var pushed []string
	for _, it := range items {
		if len(it.names) == 0 {
			return nil, fmt.Errorf("%s: image %s has no name in the archive; give one (--name)", archivePath, it.digest)
		}
		for _, n := range it.names {
			ref, err := Target(registryAddr, n)
			if err != nil {
				return nil, fmt.Errorf("%s: image name %q: %w", archivePath, n, err)
			}
			if d, ok := owner[ref.String()]; ok {
				if d != it.digest {
					return nil, fmt.Errorf("%s: %s names two images, %s and %s", archivePath, n, d, it.digest)
				}
				continue
			}
			owner[ref.String()] = it.digest
			todo[ref] = it.t
			pushed = append(pushed, ref.String())
		}
	}
	if err := remote.MultiWrite(todo, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return nil, fmt.Errorf("pushing %s to %s: %w", archivePath, registryAddr, err)
	}
	return pushed, nil
}

// dockerItems reads a docker save tarball: one item per image it lists.
func dockerItems(tarPath string, named bool) ([]item, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, err
	}
	var items []item
	for i, d := range m {
		var tag *name.Tag
		switch {
		case len(d.RepoTags) > 0:
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", d.RepoTags[0], err)
			}
			tag = &t
		case len(m) > 1:
			return nil, fmt.Errorf("image %d of %d (config %s) has no tag: a docker archive with several images needs a tag on each", i+1, len(m), d.Config)
		case !named:
			return nil, fmt.Errorf("its image has no tag; give it a name (--name)")
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, err
		}
		h, err := img.Digest()
		if err != nil {
			return nil, err
		}
		items = append(items, item{t: img, digest: h.String(), names: d.RepoTags})
	}
	return items, nil
}

// ociItems reads an unpacked OCI image layout: one item per distinct
// manifest or index its index.json lists, or, when refs are given and there
// are several, the whole index as one item.
func ociItems(dir string, named bool) ([]item, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var items []item
	byDigest := map[v1.Hash]int{}
	for _, desc := range im.Manifests {
		n := annotatedName(desc.Annotations)
		if i, ok := byDigest[desc.Digest]; ok {
			if n != "" {
				items[i].names = append(items[i].names, n)
			}
			continue
		}
		var t remote.Taggable
		switch {
		case desc.MediaType.IsImage():
			t, err = idx.Image(desc.Digest)
		case desc.MediaType.IsIndex():
			t, err = idx.ImageIndex(desc.Digest)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		it := item{t: t, digest: desc.Digest.String()}
		if n != "" {
			it.names = []string{n}
		}
		byDigest[desc.Digest] = len(items)
		items = append(items, it)
	}
	if named && len(items) > 1 {
		h, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		return []item{{t: idx, digest: h.String()}}, nil
	}
	return items, nil
}

func annotatedName(a map[string]string) string {
	if n := a[AnnotationImageName]; n != "" {
		return n
	}
	// A bare tag ("latest", "5") names no repository.
	if n := a[AnnotationRefName]; strings.ContainsAny(n, "/:@") {
		return n
	}
	return ""
}

// uncompressed returns the path of the archive as a plain tar: the archive
// itself, or a temporary copy when it is gzip-compressed.
func uncompressed(archivePath string) (string, func(), error) {
	nop := func() {}
	f, err := os.Open(archivePath)
	if err != nil {
		return "", nop, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(2)
	if err != nil || magic[0] != 0x1f || magic[1] != 0x8b {
		return archivePath, nop, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return "", nop, fmt.Errorf("%s: %w", archivePath, err)
	}
	tmp, err := os.CreateTemp("", "spoteci-load-*.tar")
	if err != nil {
		return "", nop, err
	}
	cleanup := func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, zr)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nop, fmt.Errorf("decompressing %s: %w", archivePath, err)
	}
	return tmp.Name(), cleanup, nil
}

// sniff tells whether the tar at p has a manifest.json (docker save) and an
// index.json (OCI image layout) at its top.
func sniff(p string) (manifest, index bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	tr := tar.NewReader(f) // skips file contents by seeking
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return manifest, index, nil
		}
		if err != nil {
			return false, false, err
		}
		switch path.Clean(hdr.Name) {
		case "manifest.json":
			manifest = true
		case "index.json":
			index = true
		}
	}
}

// untar unpacks the regular files and folders of the tar at p into dir,
// refusing names that leave it.
func untar(p, dir string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if rel == "." {
			continue
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("entry %q leaves the archive", hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
