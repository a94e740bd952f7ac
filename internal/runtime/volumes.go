package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// volumesDir holds an instance's volumes, one folder each.
const volumesDir = "volumes"

// checkVolumes refuses volumes and mounts that would reach outside their
// folders; it runs in Start, so that a bad request fails at once.
func checkVolumes(spec Instance) error {
	names := map[string]bool{}
	for _, v := range spec.Volumes {
		if err := validName("volume name", v.Name); err != nil {
			return err
		}
		if names[v.Name] {
			return fmt.Errorf("volume %q: %w: used twice", v.Name, ErrInvalidName)
		}
		names[v.Name] = true
		for _, f := range v.Files {
			if !filepath.IsLocal(f.Path) {
				return fmt.Errorf("volume %q: file path %q must be relative and stay inside the volume", v.Name, f.Path)
			}
		}
	}
	for _, c := range spec.Containers {
		for _, m := range c.Mounts {
			if !names[m.Volume] {
				return fmt.Errorf("container %q mounts volume %q, which the instance does not have", c.Name, m.Volume)
			}
			if !filepath.IsAbs(m.Path) {
				return fmt.Errorf("container %q: mount path %q must be absolute", c.Name, m.Path)
			}
			if m.SubPath != "" && !filepath.IsLocal(m.SubPath) {
				return fmt.Errorf("container %q: subPath %q must be relative and stay inside volume %q", c.Name, m.SubPath, m.Volume)
			}
		}
	}
	return nil
}

// setUpVolumes creates an instance's volume folders and writes their files.
// Idempotent: a folder already there is kept as it is (an emptyDir keeps
// what containers wrote into it).
func setUpVolumes(in *instance) error {
	for _, v := range in.spec.Volumes {
		dir := filepath.Join(in.dir, volumesDir, v.Name)
		if exists(dir) {
			continue
		}
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o777); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		os.Chmod(tmp, 0o777) // whatever user the container runs as may write an emptyDir, as with a kubelet
		if v.Memory {
			if err := os.Rename(tmp, dir); err != nil {
				return err
			}
			opts := "mode=1777"
			if v.SizeLimit > 0 {
				opts += ",size=" + strconv.FormatInt(v.SizeLimit, 10) // as a kubelet sizes a memory emptyDir
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
				return fmt.Errorf("volume %s: tmpfs: %w", v.Name, err)
			}
			if err := ownVolume(dir, in.spec.Security.FSGroup, false); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			continue
		}
		for _, f := range v.Files {
			path := filepath.Join(tmp, f.Path)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			mode := os.FileMode(f.Mode) & os.ModePerm
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(path, f.Data, mode); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			os.Chmod(path, mode) // whatever the umask
		}
		if len(v.Files) > 0 {
			os.Chmod(tmp, 0o755)
		}
		if err := ownVolume(tmp, in.spec.Security.FSGroup, len(v.Files) > 0); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	return nil
}

// tearDownVolumes unmounts the tmpfs volumes of an instance.
func tearDownVolumes(in *instance) error {
	var errs []error
	for _, v := range in.spec.Volumes {
		if v.Memory {
			dir := filepath.Join(in.dir, volumesDir, v.Name)
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmounting volume %s: %w", v.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// volumeMounts are the OCI mounts of a container's volumes.
func volumeMounts(in *instance, c Container) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.Mounts {
		src := filepath.Join(in.dir, volumesDir, m.Volume)
		readOnly := m.ReadOnly
		for _, v := range in.spec.Volumes {
			if v.Name == m.Volume && len(v.Files) > 0 {
				readOnly = true
			}
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
			if !exists(src) {
				// As a kubelet: a missing subPath of a writable volume is
				// created as a folder.
				if readOnly {
					return nil, fmt.Errorf("subPath %q does not exist in volume %q", m.SubPath, m.Volume)
				}
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, err
				}
			}
			// The resolved path must stay in the volume, whatever links it crossed.
			real, err := filepath.EvalSymlinks(src)
			root, rerr := filepath.EvalSymlinks(filepath.Join(in.dir, volumesDir, m.Volume))
			if err != nil || rerr != nil || !strings.HasPrefix(real+"/", root+"/") {
				return nil, fmt.Errorf("subPath %q of volume %q leaves the volume", m.SubPath, m.Volume)
			}
			src = real
		}
		opts := []string{"rbind", "rprivate"}
		if readOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		out = append(out, specs.Mount{Source: src, Destination: m.Path, Type: "bind", Options: opts})
	}
	return out, nil
}

// withIPEnv adds the variables of names, set to ip, to env.
func withIPEnv(env, names []string, ip string) []string {
	out := slices.Clone(env)
	for _, n := range names {
		out = append(out, n+"="+ip)
	}
	return out
}
