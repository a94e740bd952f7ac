package images

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The Debian release the images are made of.
const (
	DebianSuite   = "bookworm"
	DefaultMirror = "http://deb.debian.org/debian"
)

// perlPackages are installed on top of minbase. Debian 12's perl carries
// Math::BigInt 1.999830, whose Math::BigInt::Calc dies in
// `perl -Mbignum=bpi -wle 'print bpi(2000)'`; libmath-bigint-perl 1.999838
// prints the 2,000 digits and comes first in @INC.
var perlPackages = []string{"perl", "libmath-bigint-perl"}

// perlDigits is how many digits of pi the build checks the image prints.
const perlDigits = 2000

func perlStamp() (string, error) {
	return fmt.Sprintf("perl/1 debian=%s variant=minbase packages=%s arch=%s",
		DebianSuite, strings.Join(perlPackages, ","), debianArch()), nil
}

func debianArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	}
	return runtime.GOARCH
}

// fillPerl debootstraps Debian with perl into b.rootfs, checks that it
// prints 2,000 digits of pi and strips what a container does not need.
func fillPerl(ctx context.Context, b *builder) (v1.Config, error) {
	if os.Geteuid() != 0 {
		return v1.Config{}, errors.New("debootstrap needs root: run the build as root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return v1.Config{}, fmt.Errorf("%w (install it: hack/deps.sh)", err)
	}
	mirror := b.opts.Mirror
	if mirror == "" {
		var from string
		mirror, from = DebianMirror("/etc/apt")
		b.logf("mirror %s (%s)", mirror, from)
	}
	debs := filepath.Join(b.cacheDir, ".debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return v1.Config{}, err
	}
	args := []string{
		"--variant=minbase",
		"--arch=" + debianArch(),
		"--include=" + strings.Join(perlPackages, ","),
		"--cache-dir=" + debs,
		DebianSuite, b.rootfs, mirror,
	}
	b.logf("debootstrap %s", strings.Join(args, " "))
	t := time.Now()
	if err := b.run(ctx, "debootstrap", args...); err != nil {
		return v1.Config{}, err
	}
	b.logf("debootstrap done in %s", time.Since(t).Round(time.Second))

	perl, err := versionedPerl(b.rootfs)
	if err != nil {
		return v1.Config{}, err
	}
	t = time.Now()
	out, err := exec.CommandContext(ctx, "chroot", b.rootfs, "/usr/bin/perl", "-Mbignum=bpi", "-wle", fmt.Sprintf("print bpi(%d)", perlDigits)).CombinedOutput()
	digits := 0
	for _, c := range out {
		if '0' <= c && c <= '9' {
			digits++
		}
	}
	if err != nil || !strings.HasPrefix(string(out), "3.14159") || digits < perlDigits {
		return v1.Config{}, fmt.Errorf("perl in the new system does not print %d digits of pi (%v): %.200s", perlDigits, err, out)
	}
	b.logf("checked: perl -Mbignum=bpi prints %d digits of pi (%s)", digits, time.Since(t).Round(100*time.Millisecond))

	if err := stripDebian(b.rootfs); err != nil {
		return v1.Config{}, err
	}
	b.logf("stripped apt lists and caches, logs, docs, man pages and translations")
	// Docker Hub's perl image runs the debugger on an empty program by
	// default: CMD ["perl5.x.y", "-de0"].
	return v1.Config{
		Env: []string{PathEnv},
		Cmd: []string{perl, "-de0"},
	}, nil
}

// versionedPerl finds /usr/bin/perl5.x.y, the name Docker Hub's image runs.
func versionedPerl(rootfs string) (string, error) {
	re := regexp.MustCompile(`^perl5\.\d+\.\d+$`)
	ents, err := os.ReadDir(filepath.Join(rootfs, "usr/bin"))
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			return e.Name(), nil
		}
	}
	return "", errors.New("no /usr/bin/perl5.x.y in the new system")
}

// run runs a command with its output summarized into the progress: a line
// is shown when it starts a phase not seen before (by its first two words,
// so one "I: Retrieving" line stands for all); the last lines are in the
// error when it fails.
func (b *builder) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	// On cancel, let debootstrap run its exit handler, which unmounts what
	// it mounted in the target.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	var tail []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		seen := map[string]bool{}
		for sc.Scan() {
			line := sc.Text()
			tail = append(tail, line)
			if len(tail) > 30 {
				tail = tail[1:]
			}
			f := strings.Fields(line)
			if len(f) > 2 {
				f = f[:2]
			}
			if p := strings.Join(f, " "); !seen[p] {
				seen[p] = true
				b.logf("  %s", line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%s: %w; its last lines:\n%s", name, err, strings.Join(tail, "\n"))
	}
	return nil
}

// stripDebian removes from a new Debian system what a container image does
// not need (as Docker's debian:slim does) and what differs from one build to
// the next (logs, caches, backups, the host's names), and keeps later
// package installs as lean.
func stripDebian(root string) error {
	globs := []string{
		"var/cache/apt/*", "var/lib/apt/lists/*", "var/cache/debconf/*-old",
		"var/lib/dpkg/*-old", "var/cache/ldconfig/aux-cache", "var/cache/man/*",
		"usr/share/man/*", "usr/share/info/*", "usr/share/locale/*",
		"usr/share/lintian/*", "usr/share/linda",
		"tmp/*", "var/tmp/*", "dev/*", "etc/*-", "etc/machine-id", "var/lib/dbus/machine-id",
	}
	for _, g := range globs {
		ms, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	// Documentation, but the copyright files.
	docs, _ := filepath.Glob(filepath.Join(root, "usr/share/doc/*"))
	for _, d := range docs {
		ents, err := os.ReadDir(d)
		if err != nil {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
			continue
		}
		for _, e := range ents {
			if e.Name() != "copyright" {
				if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	// Logs: the files go, the folders stay.
	if err := filepath.WalkDir(filepath.Join(root, "var/log"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Remove(p)
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// debootstrap copies the host's resolver and name; the runtime mounts
	// its own over these.
	files := map[string]string{
		"etc/resolv.conf": "",
		"etc/hostname":    "",
		"etc/hosts":       "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/dpkg/dpkg.cfg.d/spoteci-minimal": "# spoteci's images leave out documentation and translations; so do later installs.\n" +
			"path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n" +
			"path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n" +
			"path-exclude /usr/share/locale/*\npath-exclude /usr/share/lintian/*\n",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		_ = os.Remove(full) // a symlink is replaced, not followed
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return fixShadowDates(filepath.Join(root, "etc/shadow"))
}

// fixShadowDates sets the "last password change" of every account, which
// shadow's tools set to the day of the build, to the day of Epoch.
func fixShadowDates(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	day := strconv.FormatInt(Epoch.Unix()/86400, 10)
	lines := strings.SplitAfter(string(b), "\n")
	for i, l := range lines {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[2] != "" {
			f[2] = day
			lines[i] = strings.Join(f, ":")
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "")), fi.Mode().Perm())
}

// DebianMirror returns the mirror the apt sources under etcApt use for
// Debian's DebianSuite (main archive, not security) and the file it is
// read from; DefaultMirror when none says.
func DebianMirror(etcApt string) (mirror, from string) {
	files := []string{filepath.Join(etcApt, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		ms, _ := filepath.Glob(filepath.Join(etcApt, "sources.list.d", pat))
		sort.Strings(ms)
		files = append(files, ms...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uri string
		if strings.HasSuffix(f, ".sources") {
			uri = mirrorDeb822(b)
		} else {
			uri = mirrorOneLine(b)
		}
		if uri != "" {
			return strings.TrimSuffix(uri, "/"), f
		}
	}
	return DefaultMirror, "the default: no apt source for " + DebianSuite
}

// mirrorOneLine reads "deb [options] URI suite components" lines.
func mirrorOneLine(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if i, j := strings.IndexByte(line, '['), strings.IndexByte(line, ']'); i >= 0 && j > i {
			line = line[:i] + line[j+1:]
		}
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "deb" && f[2] == DebianSuite {
			return f[1]
		}
	}
	return ""
}

// mirrorDeb822 reads stanzas of Types, URIs, Suites (and Enabled) fields.
func mirrorDeb822(b []byte) string {
	for _, stanza := range regexp.MustCompile(`\n\s*\n`).Split(string(b), -1) {
		fields := map[string]string{}
		var key string
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && key != "" {
				fields[key] += " " + strings.TrimSpace(line)
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				key = strings.ToLower(strings.TrimSpace(k))
				fields[key] = strings.TrimSpace(v)
			}
		}
		if strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		types, suites, uris := strings.Fields(fields["types"]), strings.Fields(fields["suites"]), strings.Fields(fields["uris"])
		if len(uris) > 0 && contains(types, "deb") && contains(suites, DebianSuite) {
			return uris[0]
		}
	}
	return ""
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// removeTree removes a build folder after unmounting anything left mounted
// in it (debootstrap mounts /proc and /sys in its target and unmounts them
// when it ends, unless it is killed). It refuses to remove a folder that
// still has a mount in it, lest it delete through a bind mount.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return err
	}
	mounts, err := mountsUnder(abs)
	if err != nil {
		return err
	}
	for _, m := range mounts { // deepest first
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if mounts, err = mountsUnder(abs); err != nil {
		return err
	}
	if len(mounts) > 0 {
		return fmt.Errorf("still mounted in it: %s", strings.Join(mounts, ", "))
	}
	return os.RemoveAll(abs)
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ms []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			ms = append(ms, mp)
		}
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i]) > len(ms[j]) })
	return ms, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}
