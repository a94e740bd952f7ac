package cli_test

import (
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestStateFolderIsPrivate: a server started on a fresh folder, then on
// the same folder loosened as older versions left it (0755, files 0644),
// keeps nothing that holds a secret open to other users.
func TestStateFolderIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	srv := startServer(t, dir)
	checkPrivate(t, dir)
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()

	// What a spoteci before issue 19 made: a 0755 folder, 0644 files.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		mode := fs.FileMode(0o644)
		if e.IsDir() {
			mode = 0o755
		}
		if err := os.Chmod(filepath.Join(dir, e.Name()), mode); err != nil {
			t.Fatal(err)
		}
	}
	startServer(t, dir)
	// startServer returns as soon as eci.json reads, which it already did:
	// the server has checked its folder once it listens.
	waitFor(t, "the restarted server to listen", func() bool {
		info, err := eciapi.ReadServerInfo(dir)
		if err != nil {
			return false
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(info.Endpoint, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	checkPrivate(t, dir)
}

// checkPrivate walks dir: the folder itself is 0700, everything directly in
// it closed to group and other, and every file that holds a secret (the
// database and its WAL and SHM, eci.json, keys, kubeconfigs, tokens)
// anywhere in it as well.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	secrets := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a container's file that went away meanwhile
		}
		fi, err := d.Info()
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		name := d.Name()
		secret := strings.HasPrefix(name, "eci.db") || name == eciapi.InfoFile || strings.HasSuffix(name, ".key") ||
			strings.Contains(name, "kubeconfig") || strings.HasSuffix(name, ".token")
		switch {
		case rel == ".":
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("the state folder has mode %#o, want 0700", fi.Mode().Perm())
			}
		case !strings.Contains(rel, string(filepath.Separator)) || secret && d.Type().IsRegular():
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %#o: open to other users", rel, fi.Mode().Perm())
			}
		}
		if secret && d.Type().IsRegular() {
			secrets++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if secrets < 2 { // eci.db and eci.json at least
		t.Errorf("found %d files that hold secrets, want the database and eci.json at least", secrets)
	}
}
