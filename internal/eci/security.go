package eci

import (
	"fmt"
	"math"
	"strings"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// checkSecurity checks the security contexts of a group and its
// containers: ids in range, capabilities that exist and that an instance
// may have, the only seccomp profile, namespaced sysctls.
func checkSecurity(req eciapi.CreateContainerGroupRequest) error {
	if sc := req.SecurityContext; sc != nil {
		if err := checkID("SecurityContext.FsGroup", "FsGroup", sc.FsGroup); err != nil {
			return err
		}
		for _, g := range sc.SupplementalGroups {
			if err := checkID("SecurityContext.SupplementalGroup", "SupplementalGroup", &g); err != nil {
				return err
			}
		}
		switch sc.SupplementalGroupsPolicy {
		case "", eciapi.GroupsMerge, eciapi.GroupsStrict:
		default:
			return badRequest("SecurityContext.SupplementalGroupsPolicy", "SupplementalGroupsPolicy %s: want Merge or Strict", annotation.Quote(sc.SupplementalGroupsPolicy))
		}
		for _, s := range sc.Sysctls {
			if !eciapi.SafeSysctl(s.Name) {
				return badRequest("SecurityContext.Sysctl.Name", "sysctl %s is not one a group may set: want one of the namespaced %s",
					annotation.Quote(s.Name), strings.Join(eciapi.SafeSysctls, ", "))
			}
			if s.Value == "" || strings.ContainsFunc(s.Value, func(r rune) bool { return r < ' ' }) {
				return badRequest("SecurityContext.Sysctl.Value", "sysctl %s: value %s: want a non-empty value without control characters", s.Name, annotation.Quote(s.Value))
			}
		}
	}
	for _, c := range req.Containers {
		sc := c.SecurityContext
		if sc == nil {
			continue
		}
		in := func(what string) string { return fmt.Sprintf("container %q: %s", c.Name, what) }
		if err := checkID("Container.SecurityContext.RunAsUser", in("RunAsUser"), sc.RunAsUser); err != nil {
			return err
		}
		if err := checkID("Container.SecurityContext.RunAsGroup", in("RunAsGroup"), sc.RunAsGroup); err != nil {
			return err
		}
		if p := sc.SeccompProfile; p != "" && p != eciapi.SeccompRuntimeDefault {
			return badRequest("Container.SecurityContext.SeccompProfile", "container %q: SeccompProfile %s: want RuntimeDefault, the profile every container runs with",
				c.Name, annotation.Quote(p))
		}
		if sc.Capability == nil {
			continue
		}
		for _, name := range sc.Capability.Add {
			norm, ok := eciapi.CapabilityName(name)
			if !ok {
				return badRequest("Container.SecurityContext.Capability.Add", "container %q: unknown capability %s", c.Name, annotation.Quote(name))
			}
			if !eciapi.Addable(norm) {
				return badRequest("Container.SecurityContext.Capability.Add", "container %q: capability %s cannot be added: it acts on the shared kernel; want one of %s",
					c.Name, annotation.Quote(name), strings.Join(eciapi.AddableCapabilities, ", "))
			}
		}
		for _, name := range sc.Capability.Drop {
			if _, ok := eciapi.CapabilityName(name); !ok {
				return badRequest("Container.SecurityContext.Capability.Drop", "container %q: unknown capability %s", c.Name, annotation.Quote(name))
			}
		}
	}
	return nil
}

// checkID refuses a uid or gid out of the range runc takes.
func checkID(field, what string, id *int64) error {
	if id != nil && (*id < 0 || *id > math.MaxInt32) {
		return badRequest(field, "%s %d: want 0 to %d", what, *id, math.MaxInt32)
	}
	return nil
}

// containerSecurity is a container's security context for the runtime.
func containerSecurity(sc *eciapi.ContainerSecurityContext) runtime.Security {
	if sc == nil {
		return runtime.Security{}
	}
	out := runtime.Security{RunAsUser: sc.RunAsUser, RunAsGroup: sc.RunAsGroup, RunAsNonRoot: sc.RunAsNonRoot,
		ReadOnlyRootFilesystem: sc.ReadOnlyRootFilesystem,
		NoNewPrivileges:        sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation}
	if caps := sc.Capability; caps != nil {
		for _, name := range caps.Add {
			n, _ := eciapi.CapabilityName(name) // checked at creation
			out.CapAdd = append(out.CapAdd, n)
		}
		for _, name := range caps.Drop {
			n, _ := eciapi.CapabilityName(name)
			out.CapDrop = append(out.CapDrop, n)
		}
	}
	return out
}

// podSecurity is the group's security context for the runtime.
func podSecurity(sc *eciapi.SecurityContext) runtime.PodSecurity {
	if sc == nil {
		return runtime.PodSecurity{}
	}
	out := runtime.PodSecurity{FSGroup: sc.FsGroup, SupplementalGroups: sc.SupplementalGroups,
		StrictGroups: sc.SupplementalGroupsPolicy == eciapi.GroupsStrict}
	for _, s := range sc.Sysctls {
		if out.Sysctls == nil {
			out.Sysctls = map[string]string{}
		}
		out.Sysctls[strings.ReplaceAll(s.Name, "/", ".")] = s.Value
	}
	return out
}

// podRef names the pod of a group made by the virtual node as a kubelet
// names it in its messages, name_namespace(uid), from the node's tags; ""
// for a group of another client.
func podRef(tags []eciapi.Tag) string {
	var name, ns, uid string
	for _, t := range tags {
		switch t.Key {
		case eciapi.TagPod:
			name = t.Value
		case eciapi.TagNamespace:
			ns = t.Value
		case eciapi.TagPodUID:
			uid = t.Value
		}
	}
	if name == "" || ns == "" {
		return ""
	}
	return fmt.Sprintf("%s_%s(%s)", name, ns, uid)
}
