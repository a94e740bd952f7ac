package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spoteci/spoteci/internal/vnode"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// DefaultNodeName is the name of the virtual node unless told otherwise.
const DefaultNodeName = "virtual-kubelet-spoteci"

type nodeOptions struct {
	clientOptions
	kubeconfig    string
	nodeName      string
	taint         bool
	kubeletListen string
}

func newNodeCommand(streams Streams) *cobra.Command {
	o := &nodeOptions{}
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Join a Kubernetes cluster as a virtual node that runs its pods on spot ECI instances",
		Long: `Join the cluster of --kubeconfig as a virtual node. Pods bound to it become ECI container
groups of the service found through --state-dir (or --endpoint and --token), with the bid
of their k8s.aliyun.com/eci-* annotations. In an existing cluster the node is tainted
virtual-kubelet.io/provider=spoteci:NoSchedule, so only pods with this toleration land on it:

  tolerations:
  - key: virtual-kubelet.io/provider
    operator: Equal
    value: spoteci
    effect: NoSchedule`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			c, err := o.client()
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), log, o, c)
		},
	}
	o.clientOptions.addFlags(cmd)
	o.addFlags(cmd)
	return cmd
}

func (o *nodeOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to join (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.nodeName, "node-name", DefaultNodeName, "name of the Node object")
	f.BoolVar(&o.taint, "taint", true, "taint the node virtual-kubelet.io/provider=spoteci:NoSchedule")
	f.StringVar(&o.kubeletListen, "kubelet-listen", "127.0.0.1:0", "address of the kubelet API (kubectl logs)")
}

func runNode(ctx context.Context, log *slog.Logger, o *nodeOptions, c *eciapi.Client) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	rest.QPS, rest.Burst = 500, 1000 // a reclaim storm writes a thousand statuses at once
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	n, err := vnode.New(vnode.Config{NodeName: o.nodeName, Kube: kube, ECI: c, Taint: o.taint, KubeletListen: o.kubeletListen, Logger: log})
	if err != nil {
		return err
	}
	return n.Run(ctx)
}
