package images

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Epoch is the time every file, layer and config of a built image is
// clamped to, so that the same inputs give the same digests: Debian 12's
// release day. A file older than that keeps its own time (a packaged file's
// time comes from its .deb, which is the same at every build).
var Epoch = time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)

// layerStats counts what writeLayer wrote.
type layerStats struct {
	Entries int   // tar entries
	Bytes   int64 // of regular file content
	Skipped int   // devices, pipes and sockets, left out
}

// writeLayer writes the tree under root as a gzip-compressed tar to dst, in
// the form of an image layer: names relative to root without a leading "./",
// entries in lexical order, modes (with setuid, setgid and sticky bits),
// owners (numeric only, or 0:0 when rootOwned), symlinks and hard links kept,
// modification times clamped to Epoch, no access or change times. Devices,
// pipes and sockets are left out: the runtime provides /dev. Extended
// attributes (file capabilities) are not carried.
func writeLayer(root, dst string, rootOwned bool) (layerStats, error) {
	var st layerStats
	f, err := os.Create(dst)
	if err != nil {
		return st, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.DefaultCompression) // BestCompression: 0.3% smaller, 5 times slower
	if err != nil {
		return st, err
	}
	tw := tar.NewWriter(zw)

	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var link string
		switch fi.Mode().Type() {
		case 0, fs.ModeDir:
		case fs.ModeSymlink:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			st.Skipped++
			return nil
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if rootOwned {
			hdr.Uid, hdr.Gid = 0, 0
		}
		hdr.ModTime = clamp(fi.ModTime())
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && sys.Nlink > 1 {
			key := inode{uint64(sys.Dev), sys.Ino}
			if first, ok := seen[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				seen[key] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		st.Entries++
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		n, err := io.Copy(tw, src)
		st.Bytes += n
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	return st, err
}

func clamp(t time.Time) time.Time {
	if t.After(Epoch) {
		return Epoch
	}
	return t.Truncate(time.Second).UTC()
}
