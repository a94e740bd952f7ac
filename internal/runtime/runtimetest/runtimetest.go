// Package runtimetest starts, for the tests of packages that run instances,
// the real parts the runtime needs: containerd (as spoteci starts it) and a
// local registry holding the built-in images. One Env serves a whole test
// binary: start it in TestMain.
package runtimetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spoteci/spoteci/internal/images"
	"github.com/spoteci/spoteci/internal/registry"
	"github.com/spoteci/spoteci/internal/runtime/daemon"
)

// Env is what a test binary shares.
type Env struct {
	Daemon   *daemon.Daemon
	Registry *registry.Registry
	// Images lists the built-in images published to Registry: busybox
	// always, perl when its archive was built (make images).
	Images []string
	// ImageCache holds the archives published (busybox at least).
	ImageCache string
	dir        string
}

// Start starts containerd and the registry and publishes the built-in
// images: busybox, built into a temporary cache if the repository's
// bin/images lacks it, and perl if bin/images has it. ImageCache returns
// the cache used.
func Start(ctx context.Context) (*Env, error) {
	dir, err := os.MkdirTemp("", "spoteci-env-")
	if err != nil {
		return nil, err
	}
	e := &Env{dir: dir}
	fail := func(err error) (*Env, error) {
		e.Close()
		return nil, err
	}
	if e.Daemon, err = daemon.Start(ctx, filepath.Join(dir, "containerd"), nil); err != nil {
		return fail(err)
	}
	// The push credential of this test binary's registry: random, as the
	// service's admin token is.
	token := make([]byte, 16)
	rand.Read(token)
	if e.Registry, err = registry.Start(ctx, filepath.Join(dir, "registry"), "", hex.EncodeToString(token), nil); err != nil {
		return fail(err)
	}
	cache := RepoImages()
	if _, err := os.Stat(filepath.Join(cache, "busybox.tar")); err != nil {
		cache = filepath.Join(dir, "images")
	}
	e.ImageCache = cache
	if _, err := images.Build(ctx, cache, images.Options{}, "busybox"); err != nil {
		return fail(fmt.Errorf("building the busybox image: %w", err))
	}
	if cache != RepoImages() {
		// perl, when make images built it, comes from the repository's cache.
		if perl, ok := images.Lookup("perl"); ok && exists(perl.Path(RepoImages())) {
			os.Symlink(perl.Path(RepoImages()), perl.Path(cache))
		}
	}
	pushed, err := images.Publish(ctx, e.Registry.Addr(), e.Registry.Authenticator(), cache)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("publishing the images: %w", err))
	}
	e.Images = pushed
	return e, nil
}

// RepoImages is the image cache of the repository (bin/images), which
// `make images` fills.
func RepoImages() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(string(out[:len(out)-1])), "bin", "images")
}

// Mirror is the registry mirror that sends every image to the registry.
func (e *Env) Mirror() string { return "*=http://" + e.Registry.Addr() }

// Close stops containerd and the registry and deletes the temporary folder.
func (e *Env) Close() {
	ctx := context.Background()
	if e.Registry != nil {
		e.Registry.Close()
	}
	if e.Daemon != nil {
		e.Daemon.Stop(ctx)
		// Every test removed its instances; a shim still bound to this
		// containerd (a task whose delete met a closed connection) would
		// outlive the tests, as spoteci down does not let it.
		if killed := e.Daemon.StopIdleShims(); len(killed) > 0 {
			fmt.Fprintf(os.Stderr, "runtimetest: killed %d shims left without a container: %v\n", len(killed), killed)
		}
	}
	os.RemoveAll(e.dir)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
