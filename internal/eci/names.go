package eci

import (
	"regexp"
	"strings"

	"github.com/spoteci/spoteci/internal/annotation"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// groupName is ContainerGroupName's shape (its length is checked apart).
var groupName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// hostLabel is one label of an RFC 1123 host name.
var hostLabel = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// checkGroupNames checks ContainerGroupName and HostName: each also goes
// into the instance's /etc/hosts and hostname and into the CLI's tables,
// where a newline or a slash would do harm.
func checkGroupNames(req eciapi.CreateContainerGroupRequest) error {
	name := req.ContainerGroupName
	if name == "" {
		return badRequest("ContainerGroupName", "ContainerGroupName is required")
	}
	if len(name) < eciapi.MinContainerGroupName || len(name) > eciapi.MaxContainerGroupName || !groupName.MatchString(name) {
		return badRequest("ContainerGroupName", "ContainerGroupName %s: want %d to %d lowercase letters, digits and hyphens, starting and ending with a letter or digit",
			annotation.Quote(name), eciapi.MinContainerGroupName, eciapi.MaxContainerGroupName)
	}
	if h := req.HostName; h != "" && !validHostName(h) {
		return badRequest("HostName", "HostName %s: want a host name (RFC 1123) of at most %d characters: letters, digits and hyphens in dot-separated labels, each starting and ending with a letter or digit",
			annotation.Quote(h), eciapi.MaxHostName)
	}
	for i, c := range req.Containers {
		if n := len(c.EnvironmentVars); n > eciapi.MaxEnvironmentVars {
			return badRequest("Container.EnvironmentVar", "container %d has %d environment variables, at most %d", i+1, n, eciapi.MaxEnvironmentVars)
		}
	}
	return nil
}

// validHostName reports whether h is an RFC 1123 host name of at most
// MaxHostName characters (pkg/eci).
func validHostName(h string) bool {
	if len(h) > eciapi.MaxHostName {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if !hostLabel.MatchString(label) {
			return false
		}
	}
	return true
}
