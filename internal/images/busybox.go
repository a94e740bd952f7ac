package images

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BusyboxPackage is the Debian package whose /bin/busybox the busybox image
// is made of: the statically linked build, which runs with no library in the
// image. hack/deps.sh installs it.
const (
	BusyboxPackage = "busybox-static"
	BusyboxPath    = "/bin/busybox"
)

// packageVersion is the installed version of a Debian package, or an error
// saying it is not installed.
func packageVersion(pkg string) (string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}\t${Version}", pkg).Output()
	status, version, _ := strings.Cut(string(out), "\t")
	if err != nil || status != "install ok installed" || version == "" {
		return "", fmt.Errorf("package %s is not installed (install it: hack/deps.sh)", pkg)
	}
	return version, nil
}

func busyboxStamp() (string, error) {
	v, err := packageVersion(BusyboxPackage)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("busybox/1 %s=%s", BusyboxPackage, v), nil
}

// fillBusybox lays out /bin/busybox from the installed busybox-static
// package, a symbolic link per applet where `busybox --list-full` puts it,
// /etc/passwd and /etc/group with root and nobody, and the usual folders.
func fillBusybox(ctx context.Context, b *builder) (v1.Config, error) {
	if err := checkStatic(BusyboxPath, "install "+BusyboxPackage+" (hack/deps.sh), not busybox"); err != nil {
		return v1.Config{}, err
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc", 0o755}, {"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"home", 0o755},
		{"root", 0o700}, {"tmp", os.ModeSticky | 0o777}, {"var", 0o755}, {"var/tmp", os.ModeSticky | 0o777},
	}
	for _, d := range dirs {
		p := filepath.Join(b.rootfs, d.path)
		if err := os.Mkdir(p, 0o755); err != nil {
			return v1.Config{}, err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return v1.Config{}, err
		}
	}
	bin := filepath.Join(b.rootfs, "bin/busybox")
	if err := copyFile(BusyboxPath, bin, 0o755); err != nil {
		return v1.Config{}, err
	}
	out, err := exec.CommandContext(ctx, bin, "--list-full").Output()
	if err != nil {
		return v1.Config{}, fmt.Errorf("busybox --list-full: %w", err)
	}
	applets := 0
	for _, p := range strings.Fields(string(out)) {
		p = path.Clean(strings.TrimPrefix(p, "/"))
		if p == "bin/busybox" || strings.HasPrefix(p, "..") {
			continue
		}
		dst := filepath.Join(b.rootfs, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return v1.Config{}, err
		}
		if err := os.Symlink("/bin/busybox", dst); err != nil {
			return v1.Config{}, err
		}
		applets++
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\n",
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(b.rootfs, p), []byte(content), 0o644); err != nil {
			return v1.Config{}, err
		}
	}
	v, _ := packageVersion(BusyboxPackage)
	b.logf("%s %s from %s, %d applet links", BusyboxPath, v, BusyboxPackage, applets)
	return v1.Config{Env: []string{PathEnv}, Cmd: []string{"sh"}}, nil
}

// checkStatic makes sure the binary at p needs no dynamic loader; fix says
// how to get one that does not.
func checkStatic(p, fix string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%s: %w (%s)", p, err, fix)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return errors.New(p + " is dynamically linked: " + fix)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	return err
}
