// Package vnode is spoteci's virtual node: a kubelet-like agent that joins a
// Kubernetes cluster as a Node and runs the pods bound to it as ECI container
// groups, after virtual-kubelet's node package. Its parts, each a package:
//
//   - podcontroller: the pods and their instances, through the provider;
//   - podspec: a pod into the instance request podcontroller asks for;
//   - nodecontroller: the Node object, its status, capacity and Lease;
//   - kubeletapi: the kubelet port (logs, exec, stats) and its certificate;
//   - webhook: the admission webhook of the alibabacloud.com/eci label;
//   - provider: the seam to the backend, which every part imports.
//
// This package wires them: Run serves the webhook and, for each term of
// leadership (leader.go), lead runs the other three.
package vnode

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/spoteci/spoteci/internal/vnode/kubeletapi"
	"github.com/spoteci/spoteci/internal/vnode/nodecontroller"
	"github.com/spoteci/spoteci/internal/vnode/podcontroller"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	"github.com/spoteci/spoteci/internal/vnode/webhook"
)

// Config sets up a Node.
type Config struct {
	NodeName string
	Kube     kubernetes.Interface
	// Provider runs the pods' instances.
	Provider provider.Provider
	// Taint the node virtual-kubelet.io/provider=spoteci:NoSchedule.
	Taint bool
	// Zone, when set, is the zone of every instance the node creates (their
	// ZoneId) and of its label topology.kubernetes.io/zone; its capacity is
	// what that zone sells. Pods have no zone annotation: they pick a zone by
	// the node they select. Empty: the market picks among the region's zones.
	Zone string
	// NodeLabels are put on the Node over its own (the kubelet's --node-labels).
	NodeLabels map[string]string
	// NodeTaints are put on the Node when it registers, beside its own
	// (the kubelet's --register-with-taints).
	NodeTaints []corev1.Taint
	// KubeletListen is the address of the kubelet API (kubectl logs); default 127.0.0.1:0.
	KubeletListen string
	// PollInterval is how often the node asks what changed among its
	// instances (DescribeContainerGroupStatus with SinceSecond); default
	// 1 s. Every ResyncInterval (default 1 minute), at the start of each
	// term and after a failed poll it lists them all instead (one paged
	// DescribeContainerGroups). Between polls, a pod the node acts on is
	// read by ID.
	PollInterval, ResyncInterval time.Duration
	// Workers sync pods in parallel; default 64: a pod's sync mostly waits
	// on the apiserver and the backend, and a reclaim storm brings thousands.
	Workers int
	// TimeScale is the market's time scale (0 or 1: wall time), which the
	// deadline policy of deadline Jobs follows.
	TimeScale float64
	// ServingCertificate is the kubelet port's; nil: one the cluster signs
	// through the CSR API (self-signed until issued).
	ServingCertificate *tls.Certificate
	// ApproveServingCSR: the node approves its own serving certificate
	// request (a local cluster whose admin it runs as).
	ApproveServingCSR bool
	// NodeIP is the address the Node reports, where the apiserver reaches
	// the kubelet API; default 127.0.0.1.
	NodeIP string
	// Namespace holds the node's own objects: its leader-election Lease
	// and the webhook certificate's Secret; default kube-system.
	Namespace string
	// Election, when set, makes the node act only while this replica
	// holds its Lease; nil: always.
	Election *Election
	// WebhookListen, when set, serves the admission webhook of the
	// alibabacloud.com/eci label there; the leader keeps its
	// MutatingWebhookConfiguration and its certificate in the Secret
	// WebhookSecret (default spoteci-webhook-tls).
	WebhookListen string
	// WebhookService, a Service in Namespace, is how the apiserver
	// reaches the webhook's replicas; empty: at WebhookListen's address
	// (a node on the apiserver's host).
	WebhookService, WebhookSecret string
	Logger                        *slog.Logger
}

// Node is a running virtual node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	pods    *podcontroller.Controller
	nodes   *nodecontroller.Controller
	kubelet *kubeletapi.Server
	hook    *webhook.Server // nil: no webhook
	term    sync.Mutex      // held by the leader's work (leader.go)
}

// New checks cfg and returns a Node; Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.NodeName == "" || cfg.Kube == nil || cfg.Provider == nil {
		return nil, fmt.Errorf("vnode: NodeName, Kube and Provider are required")
	}
	if cfg.KubeletListen == "" {
		cfg.KubeletListen = "127.0.0.1:0"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.NodeIP = cmp.Or(cfg.NodeIP, "127.0.0.1")
	ip := net.ParseIP(cfg.NodeIP)
	if ip == nil {
		return nil, fmt.Errorf("vnode: NodeIP %q is not an IP address", cfg.NodeIP)
	}
	cfg.Namespace = cmp.Or(cfg.Namespace, metav1.NamespaceSystem)
	cfg.WebhookSecret = cmp.Or(cfg.WebhookSecret, "spoteci-webhook-tls")
	if e := cfg.Election; e != nil && (e.Lease == "" || e.Identity == "" || e.RetryPeriod <= 0 || e.RenewDeadline <= e.RetryPeriod || e.LeaseDuration <= e.RenewDeadline) {
		return nil, fmt.Errorf("vnode: an election needs a Lease, an Identity and LeaseDuration > RenewDeadline > RetryPeriod > 0")
	}
	log := cfg.Logger.With("node", cfg.NodeName)
	n := &Node{cfg: cfg, log: log,
		pods: podcontroller.New(podcontroller.Config{NodeName: cfg.NodeName, Kube: cfg.Kube, Provider: cfg.Provider, Zone: cfg.Zone,
			PollInterval: cfg.PollInterval, ResyncInterval: cfg.ResyncInterval, Workers: cfg.Workers,
			TimeScale: cfg.TimeScale, Logger: log}),
		nodes: nodecontroller.New(nodecontroller.Config{Name: cfg.NodeName, Kube: cfg.Kube, Taint: cfg.Taint, IP: cfg.NodeIP,
			Provider: cfg.Provider, Zone: cfg.Zone, Labels: cfg.NodeLabels, Taints: cfg.NodeTaints, Logger: log}),
	}
	if cfg.WebhookListen != "" {
		n.hook = webhook.New(webhook.Config{Kube: cfg.Kube, Listen: cfg.WebhookListen, Namespace: cfg.Namespace, Secret: cfg.WebhookSecret,
			Service: cfg.WebhookService, Logger: log})
	}
	kubelet, err := kubeletapi.New(kubeletapi.Config{NodeName: cfg.NodeName, Kube: cfg.Kube, Provider: cfg.Provider, Listen: cfg.KubeletListen,
		NodeIP: ip, Certificate: cfg.ServingCertificate, ApproveCSR: cfg.ApproveServingCSR, Logger: log})
	if err != nil {
		return nil, err
	}
	n.kubelet = kubelet
	return n, nil
}

// Run runs the node until ctx ends: serves the admission webhook, and acts
// as the node, while it leads when there is an election.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var hookErr <-chan error
	if n.hook != nil {
		var err error
		if hookErr, err = n.hook.Serve(ctx); err != nil {
			return err
		}
	}
	run := n.lead
	if n.cfg.Election != nil {
		run = func(ctx context.Context) error { return n.elect(ctx, n.lead) }
	}
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case err := <-hookErr:
		cancel()
		<-done
		return fmt.Errorf("admission webhook stopped: %w", err)
	}
}

// lead acts as the node for one term, until ctx ends: it serves the
// kubelet API, registers the Node, and once the pod controller knows the
// pods and their instances keeps the Lease, the Node's status, the serving
// certificate and the webhook's configuration.
func (n *Node) lead(ctx context.Context) error {
	factory := podcontroller.Informers(n.cfg.Kube, n.cfg.NodeName)
	defer factory.Shutdown() // waits for the informers, after cancel below
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	port, serveErr, err := n.kubelet.Serve(ctx, factory.Core().V1().Pods().Lister(), n.pods.InstanceID)
	if err != nil {
		return err
	}
	if err := n.nodes.Register(ctx, port); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: every part ends with the term
	defer cancel()
	ready, podsErr := make(chan struct{}), make(chan error, 1)
	wg.Go(func() { podsErr <- n.pods.Run(ctx, factory, func() { close(ready) }) })
	select {
	case <-ready:
	case err := <-podsErr:
		return err
	}
	wg.Go(func() { n.kubelet.KeepCertificate(ctx) })
	wg.Go(func() { n.nodes.KeepLease(ctx) })
	wg.Go(func() { n.nodes.KeepStatus(ctx) })
	if n.hook != nil {
		wg.Go(func() { n.hook.Keep(ctx) })
	}
	n.log.Info("virtual node ready", "kubelet_port", port)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("kubelet API stopped: %w", err)
	}
	return err
}
