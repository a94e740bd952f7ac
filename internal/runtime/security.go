package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// Security is a container's security context, as a kubelet hands it to
// containerd's CRI (the pod's fields merged in by the caller). The zero
// value runs the image's USER with the default capabilities
// (eciapi.DefaultCapabilities), the runtime's default seccomp profile, and
// privilege escalation allowed.
type Security struct {
	// RunAsUser and RunAsGroup override the image's USER: with RunAsGroup
	// alone the image's user (or root) runs with that group; with
	// RunAsUser alone its primary group comes from the image's /etc/passwd.
	RunAsUser  *int64 `json:",omitempty"`
	RunAsGroup *int64 `json:",omitempty"`
	// RunAsNonRoot refuses, with the kubelet's CreateContainerConfigError,
	// a container whose user is root or cannot be known to be another.
	RunAsNonRoot bool `json:",omitempty"`
	// ReadOnlyRootFilesystem makes the image's file system, /etc/hostname
	// and /etc/resolv.conf read-only; /etc/hosts and the volumes stay as
	// their mounts say, as with containerd's CRI.
	ReadOnlyRootFilesystem bool `json:",omitempty"`
	// CapAdd and CapDrop change the default capabilities as containerd's
	// CRI does: ALL first (drop ALL empties the set), then each name, drop
	// winning. Names are upper case without CAP_ (eciapi.CapabilityName).
	CapAdd  []string `json:",omitempty"`
	CapDrop []string `json:",omitempty"`
	// NoNewPrivileges sets no_new_privs (allowPrivilegeEscalation: false).
	NoNewPrivileges bool `json:",omitempty"`
}

// PodSecurity is what applies to every container of an instance.
type PodSecurity struct {
	// FSGroup owns the instance's volumes (group-writable empty ones,
	// setgid folders) and is a supplementary group of every container.
	FSGroup *int64 `json:",omitempty"`
	// SupplementalGroups are added to every container's groups.
	SupplementalGroups []int64 `json:",omitempty"`
	// StrictGroups leaves out the groups that the image's /etc/group gives
	// the user (supplementalGroupsPolicy: Strict).
	StrictGroups bool `json:",omitempty"`
	// Sysctls are set in the instance's namespaces (checked by the caller
	// to be namespaced ones).
	Sysctls map[string]string `json:",omitempty"`
}

// configError is a container the runtime refuses to create from its
// configuration (the kubelet's CreateContainerConfigError): it waits, as
// with a kubelet, and is not failed.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// podRef names the instance's pod in the kubelet's messages.
func (in *instance) podRef() string {
	if in.spec.PodRef != "" {
		return in.spec.PodRef
	}
	return in.spec.Hostname
}

// verifyRunAsNonRoot is the kubelet's check of runAsNonRoot against the
// user the container would run as: its RunAsUser, else the image's USER
// (root when empty), with the kubelet's messages.
func verifyRunAsNonRoot(sec Security, imageUser, pod, container string) error {
	if !sec.RunAsNonRoot {
		return nil
	}
	if sec.RunAsUser != nil {
		if *sec.RunAsUser == 0 {
			return &configError{fmt.Sprintf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", pod, container)}
		}
		return nil
	}
	// As containerd reports an image's user: the part before ':', a uid
	// if numeric, else a name.
	name, _, _ := strings.Cut(imageUser, ":")
	if name == "" {
		name = "0"
	}
	uid, err := strconv.ParseInt(name, 10, 64)
	switch {
	case err != nil:
		return &configError{fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", name, pod, container)}
	case uid == 0:
		return &configError{fmt.Sprintf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", pod, container)}
	case uid < 0 || uid > math.MaxInt32:
		return &configError{fmt.Sprintf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)): must be between 0 and %d, inclusive (pod: %q, container: %s)",
			uid, math.MaxInt32, math.MaxInt32, pod, container)}
	}
	return nil
}

// userString is the USER containerd is given for sec over the image's
// user, as containerd's CRI builds it from what the kubelet sends; "" keeps
// the image's USER whole (user and group), as without a security context.
func userString(sec Security, imageUser string) string {
	if sec.RunAsUser == nil && sec.RunAsGroup == nil {
		return ""
	}
	user, _, _ := strings.Cut(imageUser, ":")
	if user == "" {
		user = "0"
	}
	if sec.RunAsUser != nil {
		user = strconv.FormatInt(*sec.RunAsUser, 10)
	}
	if sec.RunAsGroup != nil {
		user += ":" + strconv.FormatInt(*sec.RunAsGroup, 10)
	}
	return user
}

// capabilities is the capability set of a container (CAP_ names) from the
// default set and sec's changes, in containerd CRI's order: add ALL, drop
// ALL, add each, drop each.
func capabilities(sec Security) []string {
	set := slices.Clone(eciapi.DefaultCapabilities)
	if slices.Contains(sec.CapAdd, eciapi.CapabilityAll) {
		set = slices.Clone(eciapi.KnownCapabilities)
	}
	if slices.Contains(sec.CapDrop, eciapi.CapabilityAll) {
		set = nil
	}
	for _, c := range sec.CapAdd {
		if c != eciapi.CapabilityAll && !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(sec.CapDrop, c) })
	out := make([]string, len(set))
	for i, c := range set {
		out[i] = "CAP_" + c
	}
	return out
}

// pingGroupRange is the sysctl that lets groups open ICMP echo sockets.
const pingGroupRange = "net.ipv4.ping_group_range"

// withSecurity applies a container's security context and the instance's
// to the spec made so far (after the image's config and the mounts): the
// user and groups, capabilities, no_new_privs, the read-only root, sysctls
// and, computed from the capabilities as Docker's is, the default seccomp
// profile.
func withSecurity(sec Security, pod PodSecurity, imageUser string) oci.SpecOpts {
	opts := []oci.SpecOpts{}
	user := userString(sec, imageUser)
	if user != "" {
		opts = append(opts, oci.WithUser(user))
		if !pod.StrictGroups {
			// The user changed: its groups in the image's /etc/group too.
			name, _, _ := strings.Cut(user, ":")
			opts = append(opts, oci.WithAdditionalGIDs(name))
		}
	}
	opts = append(opts, withGroups(pod), oci.WithCapabilities(capabilities(sec)),
		func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			// The default spec sets it; a kubelet sets it only for
			// allowPrivilegeEscalation: false.
			s.Process.NoNewPrivileges = sec.NoNewPrivileges
			if sec.ReadOnlyRootFilesystem {
				s.Root.Readonly = true
				for i, m := range s.Mounts {
					if m.Destination == "/etc/hostname" || m.Destination == "/etc/resolv.conf" {
						s.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "rw" }), "ro")
					}
				}
			}
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			// Without NET_RAW, a ping that uses an ICMP echo socket
			// works, as containerd's CRI allows (enable_unprivileged_icmp).
			s.Linux.Sysctl[pingGroupRange] = "0 2147483647"
			maps.Copy(s.Linux.Sysctl, pod.Sysctls)
			return nil
		},
		seccomp.WithDefaultProfile())
	return oci.Compose(opts...)
}

// withGroups sets the supplementary groups: the primary group, the image's
// groups of the user unless Strict, the supplemental groups and the
// fsGroup.
func withGroups(pod PodSecurity) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		u := &s.Process.User
		if pod.StrictGroups {
			u.AdditionalGids = []uint32{u.GID}
		}
		extra := slices.Clone(pod.SupplementalGroups)
		if pod.FSGroup != nil {
			extra = append(extra, *pod.FSGroup)
		}
		for _, g := range extra {
			if !slices.Contains(u.AdditionalGids, uint32(g)) {
				u.AdditionalGids = append(u.AdditionalGids, uint32(g))
			}
		}
		slices.Sort(u.AdditionalGids)
		return nil
	}
}

// Modes a kubelet adds to a volume's files for its fsGroup.
const (
	groupRW   = 0o660
	groupRO   = 0o440
	groupExec = 0o110
)

// ownVolume gives the folder of a volume and what it holds to fsGroup, as
// a kubelet does (SetVolumeOwnership): group fsGroup, group read and
// write (read for a read-only volume), setgid folders so that new files
// keep the group. No fsGroup: nothing changes.
func ownVolume(dir string, fsGroup *int64, readOnly bool) error {
	if fsGroup == nil {
		return nil
	}
	gid := int(*fsGroup)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			return fmt.Errorf("fsGroup %d on %s: %w", gid, path, err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := uint32(info.Mode().Perm())
		if readOnly {
			mode |= groupRO
		} else {
			mode |= groupRW
		}
		if d.IsDir() {
			mode |= groupExec | unix.S_ISGID
		}
		if info.Mode()&fs.ModeSticky != 0 {
			mode |= unix.S_ISVTX
		}
		// chmod(2) takes the setgid and sticky bits as their octal values,
		// which os.Chmod would translate from Go's own.
		if err := unix.Chmod(path, mode); err != nil {
			return fmt.Errorf("fsGroup %d on %s: %w", gid, path, err)
		}
		return nil
	})
}
