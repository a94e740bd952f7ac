package runtime

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A launch cut short by containerd's absence is tried again; a refusal of
// the container itself fails it.
func TestContainerdAway(t *testing.T) {
	for _, c := range []struct {
		err  error
		away bool
	}{
		{status.Error(codes.Unavailable, "connection error: desc = \"transport: Error while dialing: dial unix /x/containerd.sock: connect: connection refused\""), true},
		{fmt.Errorf("creating task: %w", errdefs.ErrUnavailable), true},
		{fmt.Errorf("starting: %w", ttrpc.ErrClosed), true},
		{errors.New("failed to start shim: ttrpc: closed: unknown"), true},
		{errors.New("OCI runtime create failed: exec: \"nope\": executable file not found in $PATH"), false},
		{fmt.Errorf("creating container: %w", errdefs.ErrAlreadyExists), false},
	} {
		if got := containerdAway(c.err); got != c.away {
			t.Errorf("containerdAway(%v) = %v, want %v", c.err, got, c.away)
		}
	}
}
