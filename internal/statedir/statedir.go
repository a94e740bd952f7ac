// Package statedir keeps a state folder private to the user that runs
// spoteci: the folder holds the service's database (instances' environment
// values, Secrets among them), eci.json (the admin token and the AccessKey
// pair), the cluster's keys and kubeconfigs.
//
// Secure runs at every start: it creates the folder with mode 0700, or
// tightens an existing one (a folder made by an older spoteci was 0755,
// its database 0644) and says so in the log, and refuses a folder another
// user owns or could redirect (a link or a folder of theirs on the way). What is created afterwards is created private by the code that
// writes it (keys, eci.json, kubeconfigs and the database 0600).
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// Mode is the state folder's mode, and that of the folders in it.
const Mode fs.FileMode = 0o700

// FileMode is the mode of the files that hold secrets.
const FileMode fs.FileMode = 0o600

// Secure creates dir (mode 0700) or makes it private: dir must be ours; dir
// and every folder in it lose group and other access, and so do every file
// directly in it (the database and its WAL, eci.json, kubeconfigs, tokens)
// and the keys of <dir>/pki. Each change is logged.
func Secure(dir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Checked before anything is made or changed on the way, and again on
	// the way the links lead to once it exists.
	if err := trustedPath(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, Mode); err != nil {
		return fmt.Errorf("creating state folder: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	if err := trustedPath(real); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state folder %s is not a folder", dir)
	}
	if err := owned(dir, fi); err != nil {
		return err
	}
	if err := tighten(dir, fi, Mode, log); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		switch {
		case e.Type().IsRegular():
			err = tightenPath(path, FileMode, log)
		case e.IsDir():
			err = tightenPath(path, Mode, log)
		}
		if err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "pki", "*.key"))
	for _, k := range keys {
		if err := tightenPath(k, FileMode, log); err != nil {
			return err
		}
	}
	return nil
}

// owned refuses a folder that another user owns: its owner could read
// whatever we keep in it, whatever its mode.
func owned(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("state folder %s belongs to uid %d, not to this user (uid %d), and holds secrets: use a folder of your own (--state-dir) or chown it", dir, st.Uid, uid)
	}
	return nil
}

// trustedPath refuses a path that another user could redirect: each
// component that exists (a folder or a link, not followed) must belong to
// us or to root. Otherwise its owner could swap it, or plant a link to a
// folder of ours (chmodded and written into by Secure and what follows).
func trustedPath(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	uid := os.Geteuid()
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid && st.Uid != 0 {
				what := "folder"
				if fi.Mode()&fs.ModeSymlink != 0 {
					what = "symbolic link"
				}
				return fmt.Errorf("state folder %s: %s is a %s of uid %d, who could redirect it: use a path that only this user (uid %d) and root own", dir, p, what, st.Uid, uid)
			}
			// Others may write in a folder on the way (not the state folder
			// itself, which Secure makes private): only the sticky bit
			// keeps them from renaming what is ours, as in /tmp.
			if p != abs && fi.IsDir() && fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
				return fmt.Errorf("state folder %s: other users may write in %s (mode %#o, no sticky bit) and could swap the state folder: use a path that only this user and root can change", dir, p, fi.Mode().Perm())
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state folder: %w", err)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func tightenPath(path string, mode fs.FileMode, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state folder: %w", err)
	}
	return tighten(path, fi, mode, log)
}

// tighten removes from path's mode whatever mode does not allow.
func tighten(path string, fi fs.FileInfo, mode fs.FileMode, log *slog.Logger) error {
	have := fi.Mode().Perm()
	if have&^mode == 0 {
		return nil
	}
	want := have & mode
	if err := os.Chmod(path, want|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return fmt.Errorf("making %s private: %w", path, err)
	}
	what := "file"
	if fi.IsDir() {
		what = "folder"
	}
	log.Warn("state "+what+" was open to other users: made private", "path", path,
		"from", fmt.Sprintf("%#o", have), "to", fmt.Sprintf("%#o", want))
	return nil
}
