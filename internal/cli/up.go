package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/chart"
	"github.com/spoteci/spoteci/internal/cluster"
	"github.com/spoteci/spoteci/internal/eciprovider"
	"github.com/spoteci/spoteci/internal/statedir"
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
	if err := statedir.Secure(o.stateDir, log); err != nil {
		return err
	}
	unlock, err := writePID(o.stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := startStack(ctx, log, o, binDir, nodeName)
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Out, `spoteci is up (%.1fs)
  kubeconfig:  %s
  ECI service: %s (token in %s)
  console:     %s (sign in with the token)
Try:
  %s --kubeconfig %s get nodes,pods -A
  %s market prices --state-dir %s --type ecs.c5.large
%sCtrl-C stops spoteci; running instances keep running and the next up adopts them.
%s down --state-dir %s deletes every instance and stops everything.
`, time.Since(started).Seconds(), st.kube.Kubeconfig(), st.service.info.Endpoint, filepath.Join(o.stateDir, "eci.json"), st.service.info.Console,
		filepath.Join(binDir, "kubectl"), st.kube.Kubeconfig(), os.Args[0], o.stateDir,
		st.service.cloud.describe(o.stateDir), os.Args[0], o.stateDir)
	err = st.wait(ctx)
	if n := st.running; n > 0 {
		what := fmt.Sprintf("%d instances keep", n)
		if n == 1 {
			what = "1 instance keeps"
		}
		fmt.Fprintf(streams.Out, "spoteci stopped; %s running (the next `%s up --state-dir %s` adopts them; `%s down --state-dir %s` deletes them)\n",
			what, os.Args[0], o.stateDir, os.Args[0], o.stateDir)
	} else {
		fmt.Fprintln(streams.Out, "spoteci stopped; no instance was running")
	}
	return err
}

// stack is everything spoteci up runs: the control plane, the ECI service
// and the virtual node.
type stack struct {
	log           *slog.Logger
	kube          *cluster.Cluster
	service       *runningService
	cancel        context.CancelFunc
	served, noded chan error
	running       int // instances left running at the stop
}

func startStack(ctx context.Context, log *slog.Logger, o *serverOptions, binDir, nodeName string) (*stack, error) {
	kube, err := cluster.Start(ctx, cluster.Config{StateDir: o.stateDir, BinDir: binDir, Logger: log})
	if err != nil {
		return nil, err
	}
	st := &stack{log: log, kube: kube, served: make(chan error, 1), noded: make(chan error, 1)}
	// Instances reach the apiserver as the "kubernetes" service, as pods do.
	o.cloud.forwards = append(o.cloud.forwards, cluster.KubernetesServiceIP+":443="+strings.TrimPrefix(kube.Server(), "https://"))
	if st.service, err = startService(ctx, log, o); err != nil {
		st.stopKube()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.cancel = cancel
	go func() { st.served <- st.service.run(runCtx) }()
	// The node runs as it would in a cluster: under the chart's
	// ServiceAccount and RBAC, one replica electing itself leader.
	node, err := localNode(runCtx, log, kube.Kubeconfig(), filepath.Join(o.stateDir, "node.kubeconfig"), nodeName)
	if err == nil {
		var provider *eciprovider.Provider
		node.timeScale = st.service.info.TimeScale
		if provider, err = localProvider(st.service.info, ""); err == nil {
			go func() {
				defer provider.Close()
				st.noded <- runNode(runCtx, log, node, provider)
			}()
		}
	}
	if err != nil {
		cancel()
		<-st.served
		st.stopKube()
		return nil, err
	}
	return st, nil
}

// localNode installs the chart's identity for a node outside the cluster
// with admin's rights, and returns the options of a node that signs in as
// it (its token kept fresh until ctx ends).
func localNode(ctx context.Context, log *slog.Logger, admin, kubeconfig, nodeName string) (*nodeOptions, error) {
	r := chart.Local(nodeName)
	id, err := chart.Install(ctx, admin, r, kubeconfig, 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("installing the node's identity: %w", err)
	}
	go id.Keep(ctx, log)
	o := &nodeOptions{}
	o.addFlags(&cobra.Command{}) // the flags' defaults
	o.kubeconfig, o.nodeName, o.namespace = id.Kubeconfig, nodeName, r.Namespace
	o.approveServing, o.webhookListen, o.leaderElect = true, "127.0.0.1:0", true
	o.taint = false                 // the cluster's only node: every pod lands on spot instances
	o.leaderIdentity = "spoteci-up" // the same across restarts: a new up takes the Lease back at once
	return o, nil
}

// wait runs until ctx ends or a part fails, then stops everything.
func (st *stack) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-st.kube.Wait():
		err = fmt.Errorf("the control plane stopped: %w", err)
	case err = <-st.served:
		st.served <- err
	case err = <-st.noded:
		if err != nil {
			err = fmt.Errorf("the virtual node stopped: %w", err)
		}
		st.noded <- err
	}
	st.stop()
	return err
}

// stop stops the node and the service, then the control plane.
func (st *stack) stop() {
	st.cancel()
	<-st.noded
	<-st.served
	st.running = st.service.left
	st.stopKube()
}

func (st *stack) stopKube() {
	stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.kube.Stop(stop); err != nil {
		st.log.Error("stopping the control plane", "err", err)
	}
}
