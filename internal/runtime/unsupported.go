//go:build !linux

package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// errUnsupported is returned everywhere but on Linux.
var errUnsupported = errors.New("the host container runtime needs Linux")

// Host is the Runtime that runs containers as host processes; Linux only.
type Host struct{}

// NewHost returns an error: the runtime needs Linux.
func NewHost(dir string, shimPath string) (*Host, error) { return nil, errUnsupported }

// Start returns an error: the runtime needs Linux.
func (h *Host) Start(ctx context.Context, id string, containers []Container, grace time.Duration) error {
	return errUnsupported
}

// Stop returns an error: the runtime needs Linux.
func (h *Host) Stop(ctx context.Context, id string, grace time.Duration) error {
	return errUnsupported
}

// Status returns an error: the runtime needs Linux.
func (h *Host) Status(id string) ([]ContainerStatus, error) { return nil, errUnsupported }

// Log returns an error: the runtime needs Linux.
func (h *Host) Log(id, container string, opts LogOptions) (io.ReadCloser, error) {
	return nil, errUnsupported
}

// Remove returns an error: the runtime needs Linux.
func (h *Host) Remove(id string) error { return errUnsupported }

// Exits returns an error: the runtime needs Linux.
func (h *Host) Exits() ([]string, error) { return nil, errUnsupported }

// RunShim returns an error: the runtime needs Linux.
func RunShim(ctx context.Context, opts ShimOptions) error { return errUnsupported }
