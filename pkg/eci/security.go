package eci

import (
	"slices"
	"strings"
)

// ContainerSecurityContext is a container's Container.N.SecurityContext:
// ECI's RunAsUser, ReadOnlyRootFilesystem and Capability.Add.N, and
// spoteci's extensions in the same style for what else a Kubernetes
// securityContext says (a pod's own fields merged in by the caller, the
// container's winning, as a kubelet merges them).
type ContainerSecurityContext struct {
	// RunAsUser and RunAsGroup are the uid and gid of the container's
	// processes; nil keeps the image's USER (its user and, without
	// RunAsUser, its group).
	RunAsUser  *int64 `json:",omitempty"`
	RunAsGroup *int64 `json:",omitempty"`
	// RunAsNonRoot refuses to start a container that would run as uid 0.
	RunAsNonRoot bool `json:",omitempty"`
	// ReadOnlyRootFilesystem mounts the image's file system read-only;
	// volumes and /etc/hosts stay writable.
	ReadOnlyRootFilesystem bool        `json:",omitempty"`
	Capability             *Capability `json:",omitempty"`
	// AllowPrivilegeEscalation false sets no_new_privs; nil or true leaves
	// it unset, as a kubelet does.
	AllowPrivilegeEscalation *bool `json:",omitempty"`
	// SeccompProfile is RuntimeDefault (also when empty): the only profile
	// spoteci runs a container with.
	SeccompProfile string `json:",omitempty"`
}

// Capability changes a container's capabilities from DefaultCapabilities:
// Add.N (ECI's) and Drop.N (spoteci's), without the CAP_ prefix; "ALL" in
// Drop removes every capability before Add is applied.
type Capability struct {
	Add  []string `json:",omitempty"`
	Drop []string `json:",omitempty"`
}

// SecurityContext is the group's SecurityContext: ECI's Sysctl.N, and
// spoteci's FsGroup, SupplementalGroup.N and SupplementalGroupsPolicy, which
// apply to every container.
type SecurityContext struct {
	Sysctls []Sysctl `json:",omitempty" rpc:"Sysctl"`
	// FsGroup owns the group's volumes (setgid folders, group-writable
	// empty ones) and is a supplementary group of every container.
	FsGroup *int64 `json:",omitempty"`
	// SupplementalGroups are added to every container's groups.
	SupplementalGroups []int64 `json:",omitempty" rpc:"SupplementalGroup"`
	// SupplementalGroupsPolicy is Merge (also when empty: the groups of the
	// image's /etc/group for the user are kept) or Strict (they are not).
	SupplementalGroupsPolicy string `json:",omitempty"`
}

// Sysctl is a kernel parameter set in the group's namespaces.
type Sysctl struct {
	Name  string
	Value string
}

// Values of the security fields.
const (
	SeccompRuntimeDefault = "RuntimeDefault"
	GroupsMerge           = "Merge"
	GroupsStrict          = "Strict"
	CapabilityAll         = "ALL"
)

// DefaultCapabilities are those of every container: containerd's default
// set, which Kubernetes gives a pod, without NET_RAW (raw sockets reach
// what plain ones cannot; a pod that needs them adds NET_RAW).
var DefaultCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "SETGID", "SETUID",
	"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
}

// AddableCapabilities are those Capability.Add may name: the default set,
// NET_RAW, and the few whose reach ends at the instance's own namespaces
// and cgroup (NET_ADMIN its network, SYS_PTRACE its processes, IPC_LOCK its
// memory). The others act on the shared kernel or host (SYS_ADMIN,
// SYS_MODULE, DAC_READ_SEARCH's open_by_handle_at, SYS_TIME, BPF ...).
var AddableCapabilities = append(slices.Clone(DefaultCapabilities), "NET_RAW", "NET_ADMIN", "SYS_PTRACE", "IPC_LOCK")

// KnownCapabilities are Linux's, 0 to 40.
var KnownCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

// CapabilityName is a capability as spoteci names it: upper case, without
// the CAP_ prefix (containerd upper-cases Kubernetes' names; CAP_ is
// accepted too). ok is false for a name that is not Linux's nor ALL.
func CapabilityName(s string) (name string, ok bool) {
	name = strings.TrimPrefix(strings.ToUpper(s), "CAP_")
	return name, name == CapabilityAll || slices.Contains(KnownCapabilities, name)
}

// Addable reports whether Capability.Add may name the capability name (as
// CapabilityName gives it).
func Addable(name string) bool { return slices.Contains(AddableCapabilities, name) }

// SafeSysctls are the kernel parameters a group may set: Kubernetes' safe
// set, each namespaced (it acts on the group's own network or IPC
// namespace), as a kubelet allows them by default.
var SafeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
	"net.ipv4.tcp_slow_start_after_idle",
	"net.ipv4.tcp_notsent_lowat",
}

// SafeSysctl reports whether the kernel parameter name (dots or slashes)
// is in SafeSysctls.
func SafeSysctl(name string) bool {
	return slices.Contains(SafeSysctls, strings.ReplaceAll(name, "/", "."))
}
