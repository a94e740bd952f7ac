package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/eciprovider"
	"github.com/spoteci/spoteci/internal/ecisdk"
	"github.com/spoteci/spoteci/internal/vnode"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// DefaultNodeName is the name of the virtual node unless told otherwise.
const DefaultNodeName = "virtual-kubelet-spoteci"

type nodeOptions struct {
	podSyncWorkers int
	// timeScale is the local market's, from its eci.json (0: wall time).
	timeScale       float64
	nodeLabels      map[string]string
	nodeTaints      []string
	stateDir        string
	kubeconfig      string
	nodeName        string
	taint           bool
	kubeletListen   string
	eciEndpoint     string
	region          string
	vswitchID       string
	securityGroupID string
	accessKeyFile   string
	// The kubelet port's serving certificate: given, or from the cluster's
	// CSR API (approved by the node itself with approveServing).
	tlsCertFile, tlsKeyFile string
	approveServing          bool
	nodeIP                  string
	namespace               string
	webhookListen           string
	webhookService          string
	webhookSecret           string
	zone                    string
	// Leader election among the node's replicas.
	leaderElect                               bool
	leaderIdentity, leaderLease               string
	leaseDuration, renewDeadline, retryPeriod time.Duration
}

func newNodeCommand(streams Streams) *cobra.Command {
	o := &nodeOptions{}
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Join a Kubernetes cluster as a virtual node that runs its pods on spot ECI instances",
		Long: `Join the cluster of --kubeconfig as a virtual node. Pods bound to it become ECI container
groups, with the bid of their k8s.aliyun.com/eci-* annotations, created through Alibaba
Cloud's official SDK: on the local spoteci service found through --state-dir, or on any ECI
endpoint (--eci-endpoint, --region, --vswitch-id, --security-group-id; the AccessKey from
ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET or --access-key-file). In an
existing cluster the node is tainted virtual-kubelet.io/provider=spoteci:NoSchedule, so only
pods with this toleration land on it:

  tolerations:
  - key: virtual-kubelet.io/provider
    operator: Equal
    value: spoteci
    effect: NoSchedule`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			p, err := o.provider()
			if err != nil {
				return err
			}
			defer p.Close()
			return runNode(cmd.Context(), log, o, p)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *nodeOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "state folder of the local spoteci service (its eci.json), used unless --eci-endpoint is set")
	f.IntVar(&o.podSyncWorkers, "pod-sync-workers", 0, "pods synced at once, as virtual-kubelet's flag (default 64)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to join (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.nodeName, "node-name", DefaultNodeName, "name of the Node object")
	f.BoolVar(&o.taint, "taint", true, "taint the node virtual-kubelet.io/provider=spoteci:NoSchedule")
	f.StringSliceVar(&o.nodeTaints, "register-with-taints", nil, "taints to put on the Node beside its own, as the kubelet's flag: key=value:effect, comma-separated (e.g. team=ml:NoSchedule keeps off it the pods that do not tolerate it)")
	f.StringToStringVar(&o.nodeLabels, "node-labels", nil, "labels to put on the Node over its own, as the kubelet's flag (e.g. type=spot-batch: the pods the webhook routes, which select type=virtual-kubelet, then go to another node)")
	f.StringVar(&o.kubeletListen, "kubelet-listen", "127.0.0.1:0", "address of the kubelet API (kubectl logs)")
	f.StringVar(&o.tlsCertFile, "tls-cert-file", "", "serving certificate of the kubelet API (PEM); default: one the cluster signs (CSR signer kubernetes.io/kubelet-serving)")
	f.StringVar(&o.tlsKeyFile, "tls-private-key-file", "", "key of --tls-cert-file")
	f.StringVar(&o.nodeIP, "node-ip", cmp.Or(os.Getenv("POD_IP"), "127.0.0.1"), "address the Node reports, where the apiserver reaches the kubelet API (default: $POD_IP, else 127.0.0.1)")
	f.StringVar(&o.zone, "zone", "", "zone of the node's instances (e.g. cn-hangzhou-i), labelled topology.kubernetes.io/zone; empty: any zone of the region")
	f.StringVar(&o.namespace, "namespace", cmp.Or(os.Getenv("POD_NAMESPACE"), "kube-system"), "namespace of the node's own objects: the leader-election Lease and the webhook certificate's Secret")
	f.StringVar(&o.webhookListen, "webhook-listen", "", "serve the admission webhook that routes pods labelled alibabacloud.com/eci=true (or in a namespace so labelled) to the node, at this address, e.g. 127.0.0.1:0; empty: none")
	f.StringVar(&o.webhookService, "webhook-service", "", "Service in --namespace through which the apiserver reaches the webhook's replicas; empty: the address of --webhook-listen")
	f.StringVar(&o.webhookSecret, "webhook-secret", "spoteci-webhook-tls", "Secret in --namespace that keeps the webhook's certificate")
	f.BoolVar(&o.leaderElect, "leader-elect", false, "run as one of several replicas of the node: only the holder of a Lease in --namespace acts")
	f.StringVar(&o.leaderIdentity, "leader-elect-identity", "", "this replica's name in the election (default: host name and process id)")
	f.StringVar(&o.leaderLease, "leader-elect-lease", "", "the election's Lease (default: spoteci-<node name>)")
	f.DurationVar(&o.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long standbys wait after the leader's last renewal before taking over")
	f.DurationVar(&o.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew before it stops acting")
	f.DurationVar(&o.retryPeriod, "leader-elect-retry-period", time.Second, "how often replicas try to take or renew the Lease (a standby takes over at most about this long after the Lease lapses)")
	f.BoolVar(&o.approveServing, "approve-serving-csr", false, "approve the node's own serving certificate request (a local cluster the node administers); otherwise an admin approves it: kubectl certificate approve")
	f.StringVar(&o.eciEndpoint, "eci-endpoint", "", "ECI OpenAPI endpoint: host:port, http:// or https:// URL (e.g. https://eci.cn-hangzhou.aliyuncs.com); default: the local service of --state-dir")
	f.StringVar(&o.region, "region", "", "region of the ECI endpoint (default: the local service's)")
	f.StringVar(&o.vswitchID, "vswitch-id", "", "vSwitch of the instances (Alibaba Cloud)")
	f.StringVar(&o.securityGroupID, "security-group-id", "", "security group of the instances (Alibaba Cloud)")
	f.StringVar(&o.accessKeyFile, "access-key-file", "", `JSON file {"AccessKeyId": ..., "AccessKeySecret": ...} (default: ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET)`)
}

// provider is the node's ECI provider: the local service of --state-dir,
// or the endpoint given with its credentials.
func (o *nodeOptions) provider() (*eciprovider.Provider, error) {
	if o.eciEndpoint == "" {
		info, err := eciapi.ReadServerInfo(o.stateDir)
		if err != nil {
			return nil, err
		}
		o.timeScale = info.TimeScale
		return localProvider(info, o.region)
	}
	cfg := eciprovider.Config{Config: ecisdk.Config{Endpoint: o.eciEndpoint, Region: o.region, VSwitchID: o.vswitchID, SecurityGroupID: o.securityGroupID,
		AccessKeyID: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), AccessKeySecret: os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")}}
	if o.accessKeyFile != "" {
		var key struct{ AccessKeyId, AccessKeySecret string }
		data, err := os.ReadFile(o.accessKeyFile)
		if err == nil {
			err = json.Unmarshal(data, &key)
		}
		if err != nil {
			return nil, fmt.Errorf("--access-key-file: %w", err)
		}
		cfg.AccessKeyID, cfg.AccessKeySecret = key.AccessKeyId, key.AccessKeySecret
	}
	if cfg.Region == "" {
		return nil, errors.New("--region is required with --eci-endpoint")
	}
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("no AccessKey: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or --access-key-file")
	}
	return eciprovider.New(cfg)
}

// localProvider drives the local service of info through the SDK, with its
// admin API for followed logs.
func localProvider(info eciapi.ServerInfo, region string) (*eciprovider.Provider, error) {
	if info.AccessKeyId == "" {
		return nil, errors.New("the local service wrote no AccessKey to eci.json: restart it with this version of spoteci")
	}
	return eciprovider.New(eciprovider.Config{Config: ecisdk.Config{Endpoint: info.Endpoint, Region: cmp.Or(region, info.Region, eci.DefaultRegion),
		// The local service takes as many calls at once as the node's
		// workers make; the real cloud's limits keep the SDK's default.
		AccessKeyID: info.AccessKeyId, AccessKeySecret: info.AccessKeySecret, Clients: 32}, PageSize: eci.MaxPageSize,
		Admin: &eciapi.Client{Endpoint: info.Endpoint, Token: info.Token}})
}

func runNode(ctx context.Context, log *slog.Logger, o *nodeOptions, p provider.Provider) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	// A reclaim storm writes 10,000 notices and 10,000 BidFailed within
	// seconds: the apiserver's priority and fairness, not the client, is
	// what must pace them.
	rest.QPS, rest.Burst = 2000, 4000
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	cfg := vnode.Config{NodeName: o.nodeName, Kube: kube, Provider: p, Taint: o.taint, KubeletListen: o.kubeletListen,
		ApproveServingCSR: o.approveServing, NodeIP: o.nodeIP, Namespace: o.namespace, Zone: o.zone,
		WebhookListen: o.webhookListen, WebhookService: o.webhookService, WebhookSecret: o.webhookSecret, Workers: o.podSyncWorkers, NodeLabels: o.nodeLabels, Logger: log}
	cfg.TimeScale = o.timeScale
	if cfg.NodeTaints, err = parseTaints(o.nodeTaints); err != nil {
		return err
	}
	if o.leaderElect {
		host, _ := os.Hostname()
		cfg.Election = &vnode.Election{Lease: cmp.Or(o.leaderLease, vnode.LeaseName(o.nodeName)),
			Identity:      cmp.Or(o.leaderIdentity, fmt.Sprintf("%s_%d", host, os.Getpid())),
			LeaseDuration: o.leaseDuration, RenewDeadline: o.renewDeadline, RetryPeriod: o.retryPeriod}
	}
	if o.tlsCertFile != "" || o.tlsKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCertFile, o.tlsKeyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert-file/--tls-private-key-file: %w", err)
		}
		cfg.ServingCertificate = &cert
	}
	n, err := vnode.New(cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// parseTaints parses taints as the kubelet's --register-with-taints:
// key=value:effect, or key:effect.
func parseTaints(specs []string) ([]corev1.Taint, error) {
	var taints []corev1.Taint
	for _, spec := range specs {
		kv, effect, ok := strings.Cut(spec, ":")
		key, value, _ := strings.Cut(kv, "=")
		t := corev1.Taint{Key: key, Value: value, Effect: corev1.TaintEffect(effect)}
		switch {
		case !ok || key == "":
			return nil, fmt.Errorf("--register-with-taints %q: want key=value:effect", spec)
		case t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectPreferNoSchedule && t.Effect != corev1.TaintEffectNoExecute:
			return nil, fmt.Errorf("--register-with-taints %q: the effect is NoSchedule, PreferNoSchedule or NoExecute", spec)
		}
		taints = append(taints, t)
	}
	return taints, nil
}
