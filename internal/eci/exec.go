package eci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/spoteci/spoteci/internal/runtime"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// streamPrefix is where the service serves exec streams: one-time URLs that
// ExecContainerCommand hands out, in Kubernetes' remote command protocol
// (the CRI streaming server of the Kubernetes project, as containerd's CRI
// plugin serves it).
const streamPrefix = "/stream/"

func newStreamServer(rt runtime.Runtime) (streaming.Server, error) {
	cfg := streaming.DefaultConfig
	cfg.BaseURL = &url.URL{Path: streamPrefix}
	return streaming.NewServer(cfg, streamRuntime{rt})
}

// streamRuntime runs the streams the server accepted on the runtime. A CRI
// container id here is "<group id>/<container name>".
type streamRuntime struct{ rt runtime.Runtime }

func (s streamRuntime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	id, name, _ := strings.Cut(containerID, "/")
	var sizes chan runtime.TerminalSize
	if resize != nil {
		sizes = make(chan runtime.TerminalSize)
		go func() {
			defer close(sizes)
			for sz := range resize {
				select {
				case sizes <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	code, err := s.rt.Exec(ctx, id, name, cmd, runtime.ExecIO{Stdin: in, Stdout: out, Stderr: errOut, TTY: tty, Resize: sizes})
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

func (streamRuntime) Attach(context.Context, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommandserver.TerminalSize) error {
	return errors.New("attach is not supported by spoteci instances")
}

func (streamRuntime) PortForward(context.Context, string, int32, io.ReadWriteCloser) error {
	return errors.New("port-forward is not supported by spoteci instances")
}

// requestHost is the context key of the Host a request was sent to: exec
// URLs point back to it.
type requestHost struct{}

// ExecContainerCommand hands out the one-time URL of an exec in a running
// container.
func (s *Service) ExecContainerCommand(ctx context.Context, req eciapi.ExecContainerCommandRequest) (eciapi.ExecContainerCommandResponse, error) {
	s.mu.Lock()
	g, ok := s.groups[req.ContainerGroupId]
	s.mu.Unlock()
	if !ok {
		return eciapi.ExecContainerCommandResponse{}, notFound(req.ContainerGroupId)
	}
	if !slices.ContainsFunc(g.Request.Containers, func(c eciapi.Container) bool { return c.Name == req.ContainerName }) {
		return eciapi.ExecContainerCommandResponse{}, badRequest("ContainerName", "group %s has no container %q", g.ID, req.ContainerName)
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return eciapi.ExecContainerCommandResponse{}, badRequest("Command", "Command is required")
	}
	st, _ := s.rt.Status(g.ID)
	running := slices.ContainsFunc(st.Containers, func(c runtime.ContainerStatus) bool {
		return c.Name == req.ContainerName && c.State == runtime.StateRunning
	})
	if !running {
		return eciapi.ExecContainerCommandResponse{}, &APIError{Status: 409, Code: eciapi.CodeContainerNotRunning,
			Message: fmt.Sprintf("container %s of %s is not running", req.ContainerName, g.ID)}
	}
	resp, err := s.stream.GetExec(&runtimeapi.ExecRequest{ContainerId: g.ID + "/" + req.ContainerName, Cmd: req.Command,
		Tty: req.TTY, Stdin: req.Stdin, Stdout: true, Stderr: !req.TTY})
	if err != nil {
		return eciapi.ExecContainerCommandResponse{}, fmt.Errorf("exec in %s/%s: %w", g.ID, req.ContainerName, err)
	}
	uri := resp.Url
	if host, ok := ctx.Value(requestHost{}).(string); ok && strings.HasPrefix(uri, "/") {
		uri = "http://" + host + uri
	}
	return eciapi.ExecContainerCommandResponse{WebSocketUri: uri}, nil
}
