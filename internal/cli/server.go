package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/console"
	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/statedir"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

type serverOptions struct {
	stateDir     string
	listen       string
	token        string
	accessKey    string
	region       string
	timeScale    float64
	seed         int64
	noticeLead   time.Duration
	defaultStock int
	traces       []string
	cloud        cloudOptions
}

func newServerCommand(streams Streams) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the ECI service: the spot market, its API and the containers",
		Long: `Run the ECI service on 127.0.0.1: the spot market on the embedded price data;
ECI's and ECS's OpenAPI at / (signed with an AccessKey pair, as Alibaba Cloud's
SDKs sign), the admin JSON API under /api/v1/ (bearer token), /metrics and the
web console under /console/ (sign in with the admin token); the
instances' containers under containerd (its own, started under
<state-dir>/containerd unless --containerd-address names one), pulling through
the local registry it serves. Its endpoint, token, AccessKey pair and region are
written to <state-dir>/eci.json for the CLI and the node, the registry's address
to <state-dir>/registry.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(streams.ErrOut, nil))
			// The folder holds the database (Secrets among the environment
			// values), eci.json and keys: ours only, checked at every start.
			if err := statedir.Secure(o.stateDir, log); err != nil {
				return err
			}
			unlock, err := writePID(o.stateDir)
			if err != nil {
				return err
			}
			defer unlock()
			rs, err := startService(cmd.Context(), log, o)
			if err != nil {
				return err
			}
			return rs.run(cmd.Context())
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "state folder: database, containers, eci.json")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address to serve on (port 0: the last one used, else any free one)")
	f.StringVar(&o.token, "token", "", "bearer token of the admin API (default: the one in eci.json, else a new random one)")
	f.StringVar(&o.accessKey, "access-key", "", "AccessKey ID:SECRET that signs OpenAPI calls (default: the pair in eci.json, else a new random one)")
	f.StringVar(&o.region, "region", eci.DefaultRegion, "region the service sells in")
	f.Float64Var(&o.timeScale, "time-scale", 1, "market time runs this many times faster than wall time")
	f.Int64Var(&o.seed, "seed", 1, "seed of the price model (kept in the state folder at first start)")
	f.DurationVar(&o.noticeLead, "notice-lead", 5*time.Minute, "time from SpotToBeReleased to the release")
	f.IntVar(&o.defaultStock, "default-stock", prices.DefaultStock, "spot stock of each pool unless set")
	f.StringArrayVar(&o.traces, "trace", nil, "availability trace file replayed as stock (0 = none), as FILE or FILE=ZONE/TYPE to cover one pool; repeatable")
	o.cloud.addFlags(cmd)
}

// runningService is the ECI service serving its API, and the runtime
// under it.
type runningService struct {
	svc    *eci.Service
	srv    *http.Server
	served chan error
	log    *slog.Logger
	info   eciapi.ServerInfo
	cloud  *cloud
	// left is how many instances still ran when run returned.
	left int
}

// startService opens the service's state, binds its port, writes eci.json
// and starts serving the API. Call run to drive the market.
func startService(ctx context.Context, log *slog.Logger, o *serverOptions) (*runningService, error) {
	var traces []*prices.Trace
	for _, spec := range o.traces {
		file, pool, _ := strings.Cut(spec, "=")
		tr, err := prices.ReadTrace(file)
		if err != nil {
			return nil, err
		}
		if pool != "" {
			zone, typ, ok := strings.Cut(pool, "/")
			if !ok {
				return nil, fmt.Errorf("--trace %s: want FILE=ZONE/TYPE", spec)
			}
			tr.Zone, tr.Type = zone, typ
		}
		traces = append(traces, tr)
	}
	previous, _ := eciapi.ReadServerInfo(o.stateDir)
	token := adminToken(o.token, previous)
	// The admin token is also the local registry's push credential.
	cl, err := startCloud(ctx, log, o.stateDir, token, &o.cloud)
	if err != nil {
		return nil, err
	}
	svc, err := eci.Open(ctx, eci.Config{
		StateDir: o.stateDir, Region: o.region, TimeScale: o.timeScale, Seed: o.seed,
		NoticeLead: o.noticeLead, DefaultStock: o.defaultStock, Traces: traces, Logger: log,
		Runtime: cl.runtime,
	})
	if err != nil {
		cl.stop()
		return nil, err
	}
	ln, err := listen(o.listen, previous.Endpoint)
	if err != nil {
		svc.Close()
		cl.stop()
		return nil, err
	}
	// From here a failure undoes the listener, the service and the cloud.
	fail := func(err error) (*runningService, error) {
		ln.Close()
		svc.Close()
		cl.stop()
		return nil, err
	}
	keyID, keySecret, err := accessKey(o.accessKey, previous)
	if err != nil {
		return fail(err)
	}
	endpoint := "http://" + ln.Addr().String()
	info := eciapi.ServerInfo{Endpoint: endpoint, Token: token, AccessKeyId: keyID, AccessKeySecret: keySecret, Region: svc.Region(), TimeScale: o.timeScale,
		Console: endpoint + console.Prefix}
	con, err := console.New(console.Config{Service: svc, Token: token, Log: log, Metrics: svc.Metrics()})
	if err != nil {
		return fail(err)
	}
	if err := eciapi.WriteServerInfo(o.stateDir, info); err != nil {
		return fail(err)
	}
	// The web console shares the service's listener, beside its APIs.
	mux := http.NewServeMux()
	mux.Handle("/", svc.Handler(eci.Credentials{Token: token, AccessKeys: map[string]string{keyID: keySecret}}))
	mux.Handle(console.Prefix, con)
	rs := &runningService{svc: svc, log: log, info: info, served: make(chan error, 1), cloud: cl,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() { rs.served <- rs.srv.Serve(ln) }()
	log.Info("ECI service ready", "endpoint", info.Endpoint, "console", info.Console, "region", svc.Region(), "market_time", svc.Now().Format(time.RFC3339),
		"time_scale", o.timeScale, "state_dir", o.stateDir)
	return rs, nil
}

// run drives the market until ctx ends, then stops serving, closes the
// database and stops the runtime, the registry and containerd. Containers
// keep running under containerd's shims; the next start adopts them.
func (rs *runningService) run(ctx context.Context) error {
	runErr := rs.svc.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs.srv.Shutdown(shutdown)
	serveErr := <-rs.served
	rs.svc.Close()
	running := rs.cloud.stop()
	rs.left = running
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", serveErr)
	}
	rs.log.Info("ECI service stopped", "instances_still_running", running,
		"note", "their containers keep running under containerd's shims and are adopted by the next start; `spoteci down` deletes them")
	return runErr
}

// listen binds a loopback address. Port 0 reuses the previous endpoint's port
// when it is free, so clients that kept the old address still reach us.
func listen(addr, previous string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--listen %s: the service listens on loopback only (127.0.0.1)", addr)
	}
	if port == "0" && previous != "" {
		if ln, err := net.Listen("tcp", strings.TrimPrefix(previous, "http://")); err == nil {
			return ln, nil
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// adminToken is the bearer token of the admin API and the push credential of
// the local registry: --token, else the one kept in eci.json, else a new
// random one.
func adminToken(flag string, previous eciapi.ServerInfo) string {
	if flag != "" {
		return flag
	}
	if previous.Token != "" {
		return previous.Token
	}
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// accessKey is the AccessKey pair of the OpenAPI: --access-key ID:SECRET,
// else the pair kept in eci.json, else a new one shaped like Alibaba
// Cloud's (an ID of 24 characters starting LTAI, a secret of 30).
func accessKey(flag string, previous eciapi.ServerInfo) (id, secret string, err error) {
	if flag != "" {
		id, secret, ok := strings.Cut(flag, ":")
		if !ok || id == "" || secret == "" {
			return "", "", fmt.Errorf("--access-key %q: want ID:SECRET", flag)
		}
		return id, secret, nil
	}
	if previous.AccessKeyId != "" && previous.AccessKeySecret != "" {
		return previous.AccessKeyId, previous.AccessKeySecret, nil
	}
	return "LTAI" + randomAlnum(20), randomAlnum(30), nil
}

func randomAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}
