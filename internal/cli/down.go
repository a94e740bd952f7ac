package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/pidfile"
	"github.com/spoteci/spoteci/internal/statedir"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// pidFile names the spoteci process (up or server) that runs a state folder.
const pidFile = "spoteci.pid"

func newDownCommand(streams Streams) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Delete every instance of a state folder and stop everything spoteci runs there",
		Long: `Stop the spoteci up or server running on --state-dir (if any), delete every instance
(its containers killed, its bill closed), free their networks and cgroups, and stop
containerd: no process of spoteci's is left. The state folder keeps the cluster's
objects, the bills and the images; spoteci up starts again from it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			return runDown(cmd.Context(), streams, log, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "state folder")
	f.StringVar(&o.region, "region", eci.DefaultRegion, "region of the state folder's service")
	o.cloud.addFlags(cmd)
	return cmd
}

func runDown(ctx context.Context, streams Streams, log *slog.Logger, o *serverOptions) error {
	if err := stopRunning(ctx, streams, o.stateDir); err != nil {
		return err
	}
	o.timeScale = 1
	previous, _ := eciapi.ReadServerInfo(o.stateDir)
	cl, err := startCloud(ctx, log, o.stateDir, adminToken("", previous), &o.cloud)
	if err != nil {
		return err
	}
	defer cl.stop()
	svc, err := eci.Open(ctx, eci.Config{StateDir: o.stateDir, Region: o.region, TimeScale: o.timeScale, Runtime: cl.runtime, Logger: log,
		TakingDown: true})
	if err != nil {
		return err
	}
	defer svc.Close()
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(runCtx) }()
	groups, err := svc.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{})
	deleted := 0
	if err == nil {
		zero := int64(0)
		for _, g := range groups.ContainerGroups {
			if _, derr := svc.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: g.ContainerGroupId, GracePeriodSeconds: &zero}); derr != nil {
				err = errors.Join(err, derr)
				continue
			}
			deleted++
		}
	}
	cancel()
	err = errors.Join(err, <-ran)
	if derr := cl.runtime.Destroy(ctx); derr != nil {
		err = errors.Join(err, derr)
	} else if cl.daemon != nil {
		cl.daemon.StopIdleShims()
	}
	fmt.Fprintf(streams.Out, "deleted %d instances (bills closed); containerd stopped\n", deleted)
	return err
}

// stopRunning sends SIGTERM to the spoteci that runs stateDir, if any, and
// waits for it to end.
func stopRunning(ctx context.Context, streams Streams, stateDir string) error {
	pid, ok := runningPID(stateDir)
	if !ok {
		return nil
	}
	fmt.Fprintf(streams.ErrOut, "stopping spoteci (pid %d) on %s\n", pid, stateDir)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping spoteci %d: %w", pid, err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, ok := runningPID(stateDir); !ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spoteci %d did not stop within 90s", pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writePID records this process as the one running stateDir; the returned
// function removes the record.
func writePID(stateDir string) (func(), error) {
	if pid, ok := runningPID(stateDir); ok && pid != os.Getpid() {
		return nil, fmt.Errorf("spoteci (pid %d) already runs %s; stop it first (spoteci down --state-dir %s)", pid, stateDir, stateDir)
	}
	if err := os.MkdirAll(stateDir, statedir.Mode); err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, pidFile)
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), statedir.FileMode); err != nil {
		return nil, err
	}
	return func() { os.Remove(path) }, nil
}

// runningPID is the pid of a live spoteci recorded in stateDir.
func runningPID(stateDir string) (int, bool) {
	return pidfile.Live(filepath.Join(stateDir, pidFile), "spoteci")
}
