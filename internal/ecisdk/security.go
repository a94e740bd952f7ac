package ecisdk

import (
	"strconv"

	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// addSecurity puts spec's security contexts into req: the group's sysctls
// in the SDK's own field, the rest (which its typed request lacks) as
// query parameters named as ECI names them: Container.N.SecurityContext.RunAsUser,
// .ReadOnlyRootFilesystem, .Capability.Add.N, and spoteci's extensions.
func addSecurity(req *sdkeci.CreateContainerGroupRequest, spec eciapi.CreateContainerGroupRequest) {
	q := req.QueryParams
	if sc := spec.SecurityContext; sc != nil {
		if len(sc.Sysctls) > 0 {
			sysctls := make([]sdkeci.CreateContainerGroupSysctl, 0, len(sc.Sysctls))
			for _, s := range sc.Sysctls {
				sysctls = append(sysctls, sdkeci.CreateContainerGroupSysctl{Name: s.Name, Value: s.Value})
			}
			req.SecurityContext.Sysctl = &sysctls
		}
		if sc.FsGroup != nil {
			q["SecurityContext.FsGroup"] = strconv.FormatInt(*sc.FsGroup, 10)
		}
		for i, g := range sc.SupplementalGroups {
			q["SecurityContext.SupplementalGroup."+strconv.Itoa(i+1)] = strconv.FormatInt(g, 10)
		}
		if sc.SupplementalGroupsPolicy != "" {
			q["SecurityContext.SupplementalGroupsPolicy"] = sc.SupplementalGroupsPolicy
		}
	}
	for i, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil {
			continue
		}
		p := "Container." + strconv.Itoa(i+1) + ".SecurityContext."
		if sc.RunAsUser != nil {
			q[p+"RunAsUser"] = strconv.FormatInt(*sc.RunAsUser, 10)
		}
		if sc.RunAsGroup != nil {
			q[p+"RunAsGroup"] = strconv.FormatInt(*sc.RunAsGroup, 10)
		}
		if sc.RunAsNonRoot {
			q[p+"RunAsNonRoot"] = "true"
		}
		if sc.ReadOnlyRootFilesystem {
			q[p+"ReadOnlyRootFilesystem"] = "true"
		}
		if sc.AllowPrivilegeEscalation != nil {
			q[p+"AllowPrivilegeEscalation"] = strconv.FormatBool(*sc.AllowPrivilegeEscalation)
		}
		if sc.SeccompProfile != "" {
			q[p+"SeccompProfile"] = sc.SeccompProfile
		}
		if caps := sc.Capability; caps != nil {
			for j, name := range caps.Add {
				q[p+"Capability.Add."+strconv.Itoa(j+1)] = name
			}
			for j, name := range caps.Drop {
				q[p+"Capability.Drop."+strconv.Itoa(j+1)] = name
			}
		}
	}
}
