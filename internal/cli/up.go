package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/cluster"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func newUpCommand(streams Streams) *cobra.Command {
	o := &serverOptions{}
	var binDir, nodeName string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start everything locally: a real Kubernetes control plane, the ECI service and the virtual node",
		Long: `Start a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, built by 'make kube'), the ECI service and the virtual node that joins
them (untainted: every pod lands on spot instances), all on 127.0.0.1 with their state
in --state-dir. Ctrl-C stops them; starting again on the same folder keeps the
cluster's objects and the service's instances.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), streams, o, binDir, nodeName)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&nodeName, "node-name", DefaultNodeName, "name of the virtual node")
	cmd.Flags().StringVar(&binDir, "bin-dir", defaultBinDir(), "folder with etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl")
	return cmd
}

// defaultBinDir is the folder of this executable: make puts spoteci and the
// control plane side by side in bin/.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

func runUp(ctx context.Context, streams Streams, o *serverOptions, binDir, nodeName string) error {
	log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
	started := time.Now()
	kube, err := cluster.Start(ctx, cluster.Config{StateDir: o.stateDir, BinDir: binDir, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kube.Stop(stop); err != nil {
			log.Error("stopping the control plane", "err", err)
		}
	}()
	rs, err := startService(ctx, log, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, `spoteci is up (%.1fs)
  kubeconfig:  %s
  ECI service: %s (token in %s)
Try:
  %s --kubeconfig %s get nodes,pods -A
  %s market prices --state-dir %s --type ecs.c5.large
Ctrl-C stops everything.
`, time.Since(started).Seconds(), kube.Kubeconfig(), rs.info.Endpoint, filepath.Join(o.stateDir, "eci.json"),
		filepath.Join(binDir, "kubectl"), kube.Kubeconfig(), os.Args[0], o.stateDir)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- rs.run(runCtx) }()
	nodeDone := make(chan error, 1)
	node := &nodeOptions{kubeconfig: kube.Kubeconfig(), nodeName: nodeName, kubeletListen: "127.0.0.1:0"}
	go func() {
		nodeDone <- runNode(runCtx, log, node, &eciapi.Client{Endpoint: rs.info.Endpoint, Token: rs.info.Token})
	}()
	select {
	case err = <-kube.Wait():
		err = fmt.Errorf("the control plane stopped: %w", err)
	case err = <-served:
		cancel()
		<-nodeDone
		return err
	case err = <-nodeDone:
		if err != nil {
			err = fmt.Errorf("the virtual node stopped: %w", err)
		}
	}
	cancel()
	<-served
	return err
}
