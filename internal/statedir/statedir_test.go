package statedir

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecureCreatesAPrivateFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := Secure(dir, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

// A folder of an older spoteci: 0755 with 0644 files, keys included.
func TestSecureTightensAnOldFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	for _, d := range []string{dir, filepath.Join(dir, "pki"), filepath.Join(dir, "logs")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]fs.FileMode{
		"eci.db": 0o644, "eci.db-wal": 0o644, "eci.json": 0o644, "kubeconfig": 0o640,
		"pki/ca.key": 0o644, "pki/ca.crt": 0o644, "logs/etcd.log": 0o644,
	}
	for name, mode := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755)
	var logs bytes.Buffer
	if err := Secure(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		".": 0o700, "pki": 0o700, "logs": 0o700,
		"eci.db": 0o600, "eci.db-wal": 0o600, "eci.json": 0o600, "kubeconfig": 0o600, "pki/ca.key": 0o600,
		// Not secrets, and behind a private folder: kept.
		"pki/ca.crt": 0o644, "logs/etcd.log": 0o644,
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %#o, want %#o", name, fi.Mode().Perm(), mode)
		}
	}
	if !strings.Contains(logs.String(), "made private") || !strings.Contains(logs.String(), "from=0755") {
		t.Errorf("no log line says what was tightened:\n%s", logs.String())
	}

	// Nothing left to do: nothing to say.
	logs.Reset()
	if err := Secure(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("a second Secure logged:\n%s", logs.String())
	}
}

func TestSecureRefusesAFolderOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a folder away takes root")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Secure(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "of uid 65534") {
		t.Fatalf("err = %v, want a refusal naming the owner", err)
	}
}

// TestSecureRefusesAnotherUsersLink: a link another user planted where
// the state folder will be, to a folder of ours, is refused before
// anything of the target is touched.
func TestSecureRefusesAnotherUsersLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a link away takes root")
	}
	base := t.TempDir()
	victim := filepath.Join(base, "victim")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "data.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "state")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := Secure(link, nil)
	if err == nil || !strings.Contains(err.Error(), "symbolic link of uid 65534") {
		t.Fatalf("err = %v, want a refusal naming the link's owner", err)
	}
	for path, want := range map[string]os.FileMode{victim: 0o755, filepath.Join(victim, "data.txt"): 0o644} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want it untouched (%#o)", path, fi.Mode().Perm(), err, want)
		}
	}
	// Under another user's folder, a new state folder is refused too.
	theirs := filepath.Join(base, "theirs")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := Secure(filepath.Join(theirs, "state"), nil); err == nil {
		t.Error("a state folder under another user's folder was accepted")
	}
	// Under a folder of ours that anyone may write in, without the sticky
	// bit, too; with it (as /tmp), not.
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := Secure(filepath.Join(shared, "state"), nil); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Errorf("err = %v, want a refusal of the world-writable folder on the way", err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := Secure(filepath.Join(shared, "state"), nil); err != nil {
		t.Errorf("under a sticky folder: %v", err)
	}
}
