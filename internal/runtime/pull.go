package runtime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	"golang.org/x/sync/singleflight"
)

// maxPullBackoff caps the wait between pulls of an image that fails.
const maxPullBackoff = 5 * time.Minute

// pullTimeout bounds one pull.
const pullTimeout = 10 * time.Minute

// images gives the launcher the images of its containers: present, or
// pulled through the registry mirrors with the instance's credentials, one
// pull of an image at a time, never from a listener of this machine that
// is no configured registry.
type images struct {
	base
	pulls singleflight.Group
}

// image returns the image of a container, pulled as its policy says. A
// failed pull puts the container in ErrImagePull, then ImagePullBackOff, and
// returns the back-off after which to try again.
func (im *images) image(ctx context.Context, in *instance, c *container, spec Container) (containerd.Image, time.Duration, error) {
	named, err := reference.ParseDockerRef(spec.Image)
	if err != nil {
		msg := fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: %v", spec.Image, spec.Image, err)
		in.event(Event{Type: "Warning", Reason: "InspectFailed", Message: msg, Container: c.name})
		c.setWaiting("InvalidImageName", msg)
		return nil, 0, errWaits
	}
	ref := named.String()
	policy := spec.PullPolicy
	if policy == "" {
		policy = PullIfNotPresent
		if tagged, ok := named.(reference.Tagged); ok && tagged.Tag() == "latest" {
			policy = PullAlways
		}
	}
	if policy != PullAlways {
		if img, err := im.client.GetImage(ctx, ref); err == nil {
			if ok, _ := img.IsUnpacked(ctx, snapshotter); ok {
				in.event(Event{Type: "Normal", Reason: "Pulled", Message: fmt.Sprintf("Container image %q already present on machine", spec.Image), Container: c.name})
				return img, 0, nil
			}
		}
		if policy == PullNever {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", spec.Image)
			in.event(Event{Type: "Warning", Reason: "ErrImageNeverPull", Message: msg, Container: c.name})
			c.setWaiting(ReasonErrImageNeverPull, msg)
			return nil, 0, errWaits
		}
	}
	in.event(Event{Type: "Normal", Reason: "Pulling", Message: fmt.Sprintf("Pulling image %q", spec.Image), Container: c.name})
	start := time.Now()
	img, err := im.pull(ctx, ref, in.spec.Credentials)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		backoff := c.nextPullBackoff(im.cfg.PullBackoff)
		msg := fmt.Sprintf("Failed to pull image %q: %v", spec.Image, err)
		in.event(Event{Type: "Warning", Reason: "Failed", Message: msg, Container: c.name})
		in.event(Event{Type: "Warning", Reason: "Failed", Message: "Error: " + ReasonErrImagePull, Container: c.name})
		c.setWaiting(ReasonErrImagePull, msg)
		// As a kubelet: ErrImagePull once, then ImagePullBackOff until the
		// next try.
		time.AfterFunc(min(2*time.Second, backoff/2), func() {
			if in.stopping() {
				return
			}
			in.event(Event{Type: "Normal", Reason: "BackOff", Message: fmt.Sprintf("Back-off pulling image %q", spec.Image), Container: c.name})
			in.event(Event{Type: "Warning", Reason: "Failed", Message: "Error: " + ReasonImagePullBackOff, Container: c.name})
			c.setWaiting(ReasonImagePullBackOff, fmt.Sprintf("Back-off pulling image %q: %s: %v", spec.Image, ReasonErrImagePull, err))
		})
		return nil, backoff, nil
	}
	c.resetPullBackoff()
	size, _ := img.Size(ctx)
	took := time.Since(start).Round(time.Millisecond)
	in.event(Event{Type: "Normal", Reason: "Pulled", Container: c.name,
		Message: fmt.Sprintf("Successfully pulled image %q in %s (%s including waiting). Image size: %d bytes.", spec.Image, took, took, size)})
	return img, 0, nil
}

// errWaits ends a launch that cannot go on until the instance is recreated
// (an invalid image name, a missing image with policy Never).
var errWaits = fmt.Errorf("the container waits")

// pull pulls and unpacks ref; concurrent pulls of the same image with the
// same credentials are one.
func (im *images) pull(ctx context.Context, ref string, creds []Credential) (containerd.Image, error) {
	if err := im.checkRegistryHost(ref); err != nil {
		return nil, err
	}
	key := ref
	for _, c := range creds {
		key += "\x00" + c.Server + "\x00" + c.Username + "\x00" + c.Password
	}
	ch := im.pulls.DoChan(key, func() (any, error) {
		// Not the caller's context: a pull shared by several instances
		// goes on when the one that started it is stopped.
		pctx, cancel := context.WithTimeout(im.ctx, pullTimeout)
		defer cancel()
		resolver := docker.NewResolver(docker.ResolverOptions{Hosts: im.hosts(creds)})
		return im.client.Pull(pctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(snapshotter), containerd.WithResolver(resolver))
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(containerd.Image), nil
	}
}

// transport is shared by every pull: connections to the registries are kept.
var transport = func() *http.Transport {
	t := docker.DefaultHTTPTransport(nil)
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}()

// hosts returns, for a registry host of a reference, its mirrors and then
// the registry itself (plain HTTP when it is on loopback), each with the
// credentials that apply.
func (im *images) hosts(creds []Credential) docker.RegistryHosts {
	client := &http.Client{Transport: transport,
		// A registry (a mirror) that redirects to this machine meets the
		// rule of a reference that names it.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return im.checkHost(req.URL.Host)
		}}
	return func(refHost string) ([]docker.RegistryHost, error) {
		host := canonicalHost(refHost)
		var out []docker.RegistryHost
		mirrors := im.cfg.Registries.Mirrors[host]
		standIn := false
		if local, _ := docker.MatchLocalhost(host); !local && len(mirrors) == 0 {
			// The catch-all mirror stands in for a remote registry that has
			// no mirror of its own, instead of it: a machine that needs one
			// reaches no registry. A registry on this machine is asked
			// directly.
			mirrors, standIn = im.cfg.Registries.Mirrors["*"], len(im.cfg.Registries.Mirrors["*"]) > 0
		}
		for _, m := range mirrors {
			u, err := url.Parse(m)
			if err != nil {
				return nil, fmt.Errorf("registry mirror %s: %w", m, err)
			}
			out = append(out, docker.RegistryHost{
				Client: client, Host: u.Host, Scheme: u.Scheme, Path: path.Join("/", u.Path, "v2"),
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
				Authorizer:   authorizer(client, creds, u.Host, host),
			})
		}
		if standIn {
			return out, nil
		}
		origin := refHost
		if host == "docker.io" {
			origin = "registry-1.docker.io"
		}
		scheme := "https"
		if local, _ := docker.MatchLocalhost(origin); local {
			scheme = "http"
		}
		out = append(out, docker.RegistryHost{
			Client: client, Host: origin, Scheme: scheme, Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			Authorizer:   authorizer(client, creds, host),
		})
		return out, nil
	}
}

// authorizer logs in with the first credential for one of hosts.
func authorizer(client *http.Client, creds []Credential, hosts ...string) docker.Authorizer {
	return docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(func(string) (string, string, error) {
		for _, h := range hosts {
			for _, c := range creds {
				if canonicalHost(c.Server) == canonicalHost(h) {
					return c.Username, c.Password, nil
				}
			}
		}
		return "", "", nil
	}))
}

// checkRegistryHost refuses, without connecting, a reference whose registry
// is on this machine (loopback, localhost, 0.0.0.0) but is not one of the
// configured registries (the local registry, a mirror on loopback): the
// service's own listeners (its API, etcd, the kubelet port) are no registry,
// and a pull from them would tell a tenant what answers on each port. Other
// hosts never reach this machine's listeners: without a mirror of their own
// they are served by the catch-all mirror instead.
func (im *images) checkRegistryHost(ref string) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return err
	}
	return im.checkHost(reference.Domain(named))
}

// checkHost is checkRegistryHost's rule for one registry host.
func (im *images) checkHost(host string) error {
	if !onThisMachine(host) {
		return nil
	}
	allowed := im.cfg.Registries.loopback()
	for _, a := range allowed {
		if sameLoopbackHost(a, host) {
			return nil
		}
	}
	if len(allowed) == 0 {
		return fmt.Errorf("registry %s is not allowed: no registry on loopback may be pulled from", host)
	}
	return fmt.Errorf("registry %s is not allowed: only the local registry %s may be pulled from on loopback", host, strings.Join(allowed, ", "))
}
