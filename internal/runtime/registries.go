package runtime

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Registries says where images are pulled from besides their own registry.
type Registries struct {
	// Mirrors maps a registry host of image references ("docker.io",
	// "registry.cn-shanghai.aliyuncs.com") to endpoints tried first, in
	// order ("http://127.0.0.1:5000"). An http:// endpoint is plain HTTP.
	// Host "*" stands in for every registry that is not on loopback and
	// has no mirror of its own, instead of it (no fallback to the registry
	// itself): the mirror of a machine that reaches no registry.
	Mirrors map[string][]string
}

// AddMirror adds "HOST=URL" (the --registry-mirror flag).
func (rs *Registries) AddMirror(spec string) error {
	host, endpoint, ok := strings.Cut(spec, "=")
	if !ok || host == "" || endpoint == "" {
		return fmt.Errorf("registry mirror %q: want HOST=URL, for example docker.io=http://127.0.0.1:5000", spec)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("registry mirror %q: the URL must be http:// or https:// and name a host", spec)
	}
	if rs.Mirrors == nil {
		rs.Mirrors = map[string][]string{}
	}
	host = canonicalHost(host)
	rs.Mirrors[host] = append(rs.Mirrors[host], strings.TrimSuffix(endpoint, "/"))
	return nil
}

// registriesFile is the configuration file's format, that of k3s's
// registries.yaml (the mirrors part), which Kubernetes users know.
type registriesFile struct {
	Mirrors map[string]struct {
		Endpoint []string `json:"endpoint"`
	} `json:"mirrors"`
}

// LoadRegistries adds the mirrors of a registries.yaml file:
//
//	mirrors:
//	  docker.io:
//	    endpoint: ["http://127.0.0.1:5000"]
func (rs *Registries) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("registries file: %w", err)
	}
	var f registriesFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return fmt.Errorf("registries file %s: %w", path, err)
	}
	for host, m := range f.Mirrors {
		for _, e := range m.Endpoint {
			if err := rs.AddMirror(host + "=" + e); err != nil {
				return fmt.Errorf("registries file %s: %w", path, err)
			}
		}
	}
	return nil
}

// canonicalHost names Docker Hub one way, whatever a reference or a
// credential calls it.
func canonicalHost(host string) string {
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return host
}

// loopback lists the hosts (HOST:PORT) of the configured endpoints that are
// on this machine: the local registry and the mirrors on loopback, the only
// registries on this machine that a reference may name.
func (rs *Registries) loopback() []string {
	var out []string
	for _, endpoints := range rs.Mirrors {
		for _, e := range endpoints {
			u, err := url.Parse(e)
			if err != nil || !onThisMachine(u.Host) || slices.Contains(out, u.Host) {
				continue
			}
			out = append(out, u.Host)
		}
	}
	slices.Sort(out)
	return out
}

// onThisMachine reports whether a registry host (HOST or HOST:PORT) names
// this machine: localhost (and *.localhost, which resolvers send to
// loopback), a loopback address, or the unspecified address (a connection
// to 0.0.0.0 or :: reaches loopback).
func onThisMachine(host string) bool {
	h := hostOnly(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// sameLoopbackHost reports whether two hosts on this machine are one
// listener: the same port, and the same address with localhost read as
// 127.0.0.1.
func sameLoopbackHost(a, b string) bool {
	norm := func(hp string) string {
		h, port, err := net.SplitHostPort(hp)
		if err != nil {
			h, port = hostOnly(hp), ""
		}
		if h = strings.ToLower(h); h == "localhost" {
			h = "127.0.0.1"
		}
		return net.JoinHostPort(h, port)
	}
	return norm(a) == norm(b)
}

// hostOnly is the host of HOST or HOST:PORT, without an IPv6 address's
// brackets, in lower case.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}
