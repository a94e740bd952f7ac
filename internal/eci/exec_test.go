package eci_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/exec"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// TestExecContainerCommand: the URL the action hands out speaks Kubernetes'
// remote command protocol (here through client-go's SPDY executor, as a
// kubelet's client would), once.
func TestExecContainerCommand(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	created, err := s.CreateContainerGroup(ctx, spotRequest("exec", "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, created, eciapi.StatusRunning)
	eventually(t, "the container running", func() error {
		_, err := s.ExecContainerCommand(ctx, eciapi.ExecContainerCommandRequest{ContainerGroupId: created, ContainerName: "exec", Command: []string{"true"}})
		return err
	})
	resp, err := s.ExecContainerCommand(ctx, eciapi.ExecContainerCommandRequest{ContainerGroupId: created,
		ContainerName: "exec", Command: []string{"sh", "-c", "read line; echo got $line; echo oops >&2; exit 4"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(resp.WebSocketUri)
	if err != nil {
		t.Fatal(err)
	}
	run := func() (string, string, error) {
		executor, err := remotecommand.NewSPDYExecutor(&rest.Config{}, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: &stderr})
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := run()
	var exitErr exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 4 || stdout != "got hello\n" || stderr != "oops\n" {
		t.Errorf("exec: %v, stdout %q, stderr %q; want exit 4, got hello, oops", err, stdout, stderr)
	}
	if _, _, err := run(); err == nil {
		t.Error("the exec URL worked twice")
	}
	for _, bad := range []eciapi.ExecContainerCommandRequest{
		{ContainerGroupId: "eci-nope", ContainerName: "exec", Command: []string{"true"}},
		{ContainerGroupId: created, ContainerName: "nope", Command: []string{"true"}},
		{ContainerGroupId: created, ContainerName: "exec"},
	} {
		var apiErr *eciapi.Error
		if _, err := s.ExecContainerCommand(ctx, bad); !errors.As(err, &apiErr) || apiErr.HTTPStatus/100 != 4 {
			t.Errorf("ExecContainerCommand(%+v) = %v, want a 4xx", bad, err)
		}
	}
}
