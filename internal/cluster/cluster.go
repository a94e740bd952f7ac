// Package cluster runs a real, local Kubernetes control plane as child
// processes: etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
// built from the pinned upstream modules by `make kube` (hack/kube).
//
// Everything lives in one state folder, reused by later starts so the
// cluster's objects survive a restart:
//
//	<state>/kubeconfig        admin kubeconfig (group system:masters), rewritten at each start
//	<state>/pki/              the cluster's CA and etcd's, serving and client certificates, service-account keys
//	<state>/etcd/             etcd data
//	<state>/logs/<name>.log   output of each component, appended across starts
//	<state>/*.kubeconfig      the controller-manager's and the scheduler's own identities
//	<state>/ports.json        ports of the last start, reused when still free
//
// All listeners are on 127.0.0.1 only, and each authenticates as kubeadm
// sets it up: etcd's client and peer ports speak TLS and want a certificate
// of etcd's own CA (the peer port, the peer certificate); the apiserver
// authenticates x509 certificates and tokens and authorizes with RBAC; the
// controller-manager and the scheduler serve nothing (--secure-port 0,
// stricter than kubeadm's authenticated 10257 and 10259). The children die
// with the parent, even when the parent is killed with SIGKILL (Linux).
package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spoteci/spoteci/internal/atomicfile"
	"github.com/spoteci/spoteci/internal/statedir"
)

// Binaries are the programs Start runs from Config.BinDir (`make kube` also
// builds kubectl there).
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

const (
	// startTimeout bounds a start whose context has no deadline: a cold apiserver
	// is ready in seconds, so minutes mean something is wrong.
	startTimeout = 3 * time.Minute
	// stopGrace is how long a component may take to exit after SIGTERM.
	stopGrace    = 10 * time.Second
	pollInterval = 100 * time.Millisecond
)

// Config says where the cluster lives and where its programs are.
type Config struct {
	// StateDir holds certificates, etcd data, kubeconfigs and logs. Required.
	StateDir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and
	// kube-scheduler. Default "bin".
	BinDir string
	// Logger receives progress. Nil discards it.
	Logger *slog.Logger
}

// Cluster is a running control plane. Stop it when done.
type Cluster struct {
	stateDir   string
	kubeconfig string
	server     string
	log        *slog.Logger
	client     *http.Client
	lock       *os.File

	comps []*component // in start order; stopped in reverse

	mu       sync.Mutex
	stopping bool
	stopped  chan struct{}
	stopErr  error
	failed   chan error // first unexpected exit; closed after Stop
}

// Start starts the control plane in cfg.StateDir and returns once the
// apiserver is ready and the default service account exists (so pods can be
// created). ctx bounds the start only; the cluster runs until Stop.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	began := time.Now()
	if cfg.StateDir == "" {
		return nil, errors.New("cluster: Config.StateDir is required")
	}
	if cfg.BinDir == "" {
		cfg.BinDir = "bin"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	state, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("cluster: state folder: %w", err)
	}
	bin, err := filepath.Abs(cfg.BinDir)
	if err != nil {
		return nil, fmt.Errorf("cluster: bin folder: %w", err)
	}
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("cluster: %s not found in %s (build it with `make kube`): %w", name, bin, err)
		}
	}
	// Keys, kubeconfigs and etcd's data: the folder is ours only.
	if err := statedir.Secure(state, log); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, statedir.Mode); err != nil {
		return nil, fmt.Errorf("cluster: create state folder: %w", err)
	}
	lock, err := lockState(state)
	if err != nil {
		return nil, err
	}

	c := &Cluster{
		stateDir:   state,
		kubeconfig: filepath.Join(state, "kubeconfig"),
		log:        log,
		lock:       lock,
		stopped:    make(chan struct{}),
		failed:     make(chan error, 1),
	}
	defer func() {
		if err != nil {
			// Leave nothing half-started behind.
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*stopGrace)
			defer cancel()
			_ = c.Stop(stopCtx)
		}
	}()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}

	p, err := ensurePKI(filepath.Join(state, "pki"))
	if err != nil {
		return nil, fmt.Errorf("cluster: certificates: %w", err)
	}
	ports, err := pickPorts(filepath.Join(state, "ports.json"))
	if err != nil {
		return nil, fmt.Errorf("cluster: ports: %w", err)
	}
	c.server = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.APIServer))
	if c.client, err = newClient(p); err != nil {
		return nil, fmt.Errorf("cluster: admin client: %w", err)
	}
	for _, kc := range []struct{ path, identity string }{
		{c.kubeconfig, "admin"},
		{filepath.Join(state, "controller-manager.kubeconfig"), "controller-manager"},
		{filepath.Join(state, "scheduler.kubeconfig"), "scheduler"},
	} {
		if err := writeKubeconfig(kc.path, c.server, p, kc.identity); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}

	// etcd and the apiserver start together: the apiserver retries etcd itself.
	etcdURL := "https://127.0.0.1:" + strconv.Itoa(ports.Etcd)
	peerURL := "https://127.0.0.1:" + strconv.Itoa(ports.EtcdPeer)
	if err := c.start("etcd", filepath.Join(bin, "etcd"), state, logDir,
		"--name", etcdName,
		"--data-dir", filepath.Join(state, "etcd"),
		"--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL,
		// A single member: the peer listener only has to exist. The initial-*
		// flags matter at first start only; later starts read the member list.
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", etcdName+"="+peerURL,
		"--cert-file", p.cert("etcd-server"), "--key-file", p.key("etcd-server"),
		"--client-cert-auth", "--trusted-ca-file", p.cert(etcdCA),
		// As kubeadm has it: peers speak TLS and present a certificate of
		// etcd's own CA, so no local process (nor a pod) forges raft
		// messages. Metrics stay on the client port, behind its certificates.
		"--peer-cert-file", p.cert("etcd-peer"), "--peer-key-file", p.key("etcd-peer"),
		"--peer-client-cert-auth", "--peer-trusted-ca-file", p.cert(etcdCA),
		// Only the peer certificate makes a peer: the apiserver's, of the
		// same CA, opens the client port and not this one (kubeadm stops
		// at the CA).
		"--peer-cert-allowed-cn", "etcd-peer",
	); err != nil {
		return nil, err
	}
	if err := c.start("kube-apiserver", filepath.Join(bin, "kube-apiserver"), state, logDir,
		"--etcd-servers", etcdURL,
		"--etcd-cafile", p.cert(etcdCA),
		"--etcd-certfile", p.cert("apiserver-etcd-client"), "--etcd-keyfile", p.key("apiserver-etcd-client"),
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports.APIServer),
		// A loopback address cannot be an Endpoints address, so the "kubernetes"
		// service gets no endpoints (as in upstream's own test server).
		"--advertise-address", "127.0.0.1", "--endpoint-reconciler-type", "none",
		"--tls-cert-file", p.cert("apiserver"), "--tls-private-key-file", p.key("apiserver"),
		"--cert-dir", filepath.Join(state, "apiserver"),
		"--client-ca-file", p.cert("ca"),
		"--kubelet-client-certificate", p.cert("apiserver-kubelet-client"),
		"--kubelet-client-key", p.key("apiserver-kubelet-client"),
		// Kubelets (the virtual node) serve certificates the cluster signed
		// (CSR signer kubernetes.io/kubelet-serving, by the controller
		// manager with this CA): logs and exec go only to a verified one.
		"--kubelet-certificate-authority", p.cert("ca"),
		// Reach node agents (the virtual node's kubelet API) at their
		// 127.0.0.1 InternalIP, never by looking up their name.
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-key-file", p.saPub(),
		"--service-account-signing-key-file", p.saKey(),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", serviceCIDR,
	); err != nil {
		return nil, err
	}
	if err := c.poll(ctx, "apiserver /readyz", func(ctx context.Context) bool {
		return c.get(ctx, "/readyz") == http.StatusOK
	}); err != nil {
		return nil, err
	}
	c.log.Info("apiserver ready", "server", c.server, "after", time.Since(began).Round(time.Millisecond))
	// etcd keeps the peer URL of its first start (an http one before issue
	// 19, or an older port): make the member say the one it serves.
	if err := advertisePeerURL(ctx, p, etcdURL, peerURL, c.log); err != nil {
		c.log.Warn("etcd keeps its old peer URL (harmless for a single member)", "err", err)
	}

	// Started after /readyz: the controller-manager gives the apiserver only a
	// few seconds to become healthy before it gives up.
	if err := c.start("kube-controller-manager", filepath.Join(bin, "kube-controller-manager"), state, logDir,
		"--kubeconfig", filepath.Join(state, "controller-manager.kubeconfig"),
		"--controllers", "*",
		"--use-service-account-credentials", // each controller acts as its own RBAC subject
		"--service-account-private-key-file", p.saKey(),
		"--root-ca-file", p.cert("ca"),
		"--cluster-signing-cert-file", p.cert("ca"), "--cluster-signing-key-file", p.key("ca"),
		"--leader-elect=false", "--secure-port", "0",
		// Upstream's client limits (20 QPS) suit a shared production
		// apiserver; here the controllers are the apiserver's main users, and
		// a Job of 1,000 pods would take 50 s just to be created.
		"--kube-api-qps", "300", "--kube-api-burst", "600",
	); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler", filepath.Join(bin, "kube-scheduler"), state, logDir,
		"--kubeconfig", filepath.Join(state, "scheduler.kubeconfig"),
		"--leader-elect=false", "--secure-port", "0",
		"--kube-api-qps", "300", "--kube-api-burst", "600",
	); err != nil {
		return nil, err
	}
	// The service-account controller creates it; until then the ServiceAccount
	// admission plugin rejects every pod in the namespace.
	if err := c.poll(ctx, "default service account", func(ctx context.Context) bool {
		return c.get(ctx, "/api/v1/namespaces/default/serviceaccounts/default") == http.StatusOK
	}); err != nil {
		return nil, err
	}
	for _, comp := range c.comps {
		go c.watch(comp)
	}
	c.log.Info("cluster ready", "kubeconfig", c.kubeconfig, "after", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// Kubeconfig is the path of the admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// Server is the apiserver URL, https://127.0.0.1:<port>.
func (c *Cluster) Server() string { return c.server }

// StateDir is the absolute path of the state folder.
func (c *Cluster) StateDir() string { return c.stateDir }

// PIDs maps component name to process id.
func (c *Cluster) PIDs() map[string]int {
	m := make(map[string]int, len(c.comps))
	for _, comp := range c.comps {
		m[comp.name] = comp.pid()
	}
	return m
}

// Wait returns a channel that receives an error when a component exits
// without Stop having been called; the cluster is then degraded and the caller
// should Stop it. The channel is closed once Stop has finished.
func (c *Cluster) Wait() <-chan error { return c.failed }

// Stop stops the components in reverse start order (SIGTERM, then SIGKILL
// after a grace period or when ctx ends). Calling it again waits for the first
// call and returns its result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.stopping {
		c.mu.Unlock()
		select {
		case <-c.stopped:
			return c.stopErr
		case <-ctx.Done():
			return fmt.Errorf("cluster: wait for stop: %w", ctx.Err())
		}
	}
	c.stopping = true
	c.mu.Unlock()

	began := time.Now()
	var errs []error
	for i := len(c.comps) - 1; i >= 0; i-- {
		comp := c.comps[i]
		killed, err := comp.stop(ctx, stopGrace)
		if err != nil {
			errs = append(errs, err)
		}
		if killed {
			c.log.Warn("killed after grace period", "component", comp.name)
		}
	}
	if c.lock != nil {
		c.lock.Close() // releases the flock
	}
	c.stopErr = errors.Join(errs...)
	c.mu.Lock()
	close(c.failed)
	c.mu.Unlock()
	close(c.stopped)
	c.log.Info("cluster stopped", "after", time.Since(began).Round(time.Millisecond))
	return c.stopErr
}

func (c *Cluster) start(name, bin, dir, logDir string, args ...string) error {
	comp, err := startComponent(name, bin, args, dir, logDir)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.comps = append(c.comps, comp)
	c.log.Info("started", "component", name, "pid", comp.pid(), "log", comp.logPath)
	return nil
}

// watch reports the first exit that Stop did not cause.
func (c *Cluster) watch(comp *component) {
	<-comp.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return
	}
	err := comp.exitError()
	c.log.Error("component exited", "component", comp.name, "err", comp.err)
	select {
	case c.failed <- err:
	default: // an earlier exit is already reported
	}
}

// poll calls ready until it is true, failing early when a component has
// exited (its log tail is in the error) or ctx ends.
func (c *Cluster) poll(ctx context.Context, what string, ready func(context.Context) bool) error {
	c.log.Info("waiting", "for", what)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if ready(ctx) {
			return nil
		}
		for _, comp := range c.comps {
			if comp.exited() {
				return fmt.Errorf("cluster: waiting for %s: %w", what, comp.exitError())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for %s: %w (logs in %s)", what, ctx.Err(), filepath.Join(c.stateDir, "logs"))
		case <-t.C:
		}
	}
}

// get returns the status code of an admin GET, or 0 when there is no answer.
func (c *Cluster) get(ctx context.Context, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		return 0
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// newClient is an HTTP client that trusts the cluster CA and presents the
// admin certificate.
func newClient(p pkiFiles) (*http.Client, error) {
	ca, err := os.ReadFile(p.cert("ca"))
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no certificate in " + p.cert("ca"))
	}
	admin, err := tls.LoadX509KeyPair(p.cert("admin"), p.key("admin"))
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// lockState takes an exclusive lock on the state folder for the life of the
// cluster: two control planes on one etcd data folder would corrupt it. The
// kernel drops the lock when we die, however we die.
func lockState(state string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(state, "lock"), os.O_CREATE|os.O_RDWR, statedir.FileMode)
	if err != nil {
		return nil, fmt.Errorf("cluster: lock state folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cluster: state folder %s is in use by another cluster: %w", state, err)
	}
	return f, nil
}

// ports are the loopback ports of one start.
type ports struct {
	Etcd      int `json:"etcd"`
	EtcdPeer  int `json:"etcdPeer"`
	APIServer int `json:"apiserver"`
}

// pickPorts reuses the ports of the previous start when they are free (so a
// kubeconfig copied elsewhere keeps working across restarts) and takes free
// ones otherwise. The listeners are closed before the components bind; another
// program could take a port in between, which the start then reports.
func pickPorts(path string) (ports, error) {
	var prev ports
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &prev) // a damaged file just means new ports
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	take := func(preferred int) (int, error) {
		if preferred > 0 {
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
				listeners = append(listeners, l)
				return preferred, nil
			}
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var next ports
	var err error
	if next.Etcd, err = take(prev.Etcd); err != nil {
		return next, err
	}
	if next.EtcdPeer, err = take(prev.EtcdPeer); err != nil {
		return next, err
	}
	if next.APIServer, err = take(prev.APIServer); err != nil {
		return next, err
	}
	data, _ := json.Marshal(next)
	if err := atomicfile.Write(path, data, statedir.FileMode); err != nil {
		return next, err
	}
	return next, nil
}
