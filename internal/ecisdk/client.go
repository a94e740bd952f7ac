// Package ecisdk is Alibaba Cloud's official Go SDK made fit for a server
// and a CLI: a pool of SDK clients (theirs are not safe for concurrent use,
// SDK issue 538), calls that return when their context ends, ECI's and ECS's
// actions asked with spoteci's request types and answered in ECI's wire
// shapes (which keep spoteci's extension, dropped by the SDK's own types),
// and refusals as *eci.Error. The same calls drive the local service and
// the real cloud.
package ecisdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	"github.com/spoteci/spoteci/internal/openapi"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// ecsActions are the actions of ECS; every other one is ECI's.
var ecsActions = map[string]bool{
	eciapi.ActionDescribeSpotPriceHistory:  true,
	eciapi.ActionDescribeAvailableResource: true,
	eciapi.ActionDescribeSpotAdvice:        true,
}

// Config says where the endpoint is and who calls it.
type Config struct {
	// Endpoint is host:port of the service ("127.0.0.1:PORT" for the local
	// one); empty lets the SDK find Alibaba Cloud's endpoint of Region.
	Endpoint string
	Region   string
	// AccessKeyID and AccessKeySecret sign the calls.
	AccessKeyID     string
	AccessKeySecret string
	// VSwitchID and SecurityGroupID place created groups on the real cloud.
	VSwitchID       string
	SecurityGroupID string
	// Clients is how many calls may run at once; default 8.
	Clients int
	// Timeout bounds one call; default 30 s.
	Timeout time.Duration
}

// Client calls ECI and ECS through a pool of SDK clients.
type Client struct {
	cfg     Config
	clients chan *sdkeci.Client

	mu     sync.Mutex
	closed bool
}

// New checks cfg and builds the pool.
func New(cfg Config) (*Client, error) {
	if cfg.Region == "" || cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("ecisdk: Region, AccessKeyID and AccessKeySecret are required")
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	c := &Client{cfg: cfg, clients: make(chan *sdkeci.Client, cfg.Clients)}
	for range cfg.Clients {
		sc, err := sdkeci.NewClientWithAccessKey(cfg.Region, cfg.AccessKeyID, cfg.AccessKeySecret)
		if err != nil {
			return nil, fmt.Errorf("ecisdk: %w", err)
		}
		if cfg.Endpoint != "" {
			sc.Domain = strings.TrimPrefix(strings.TrimPrefix(cfg.Endpoint, "http://"), "https://")
		}
		sc.SetConnectTimeout(5 * time.Second)
		sc.SetReadTimeout(cfg.Timeout)
		c.clients <- sc
	}
	return c, nil
}

// Local is a client of a local service, from what it wrote to its state
// folder.
func Local(info eciapi.ServerInfo, clients int) (*Client, error) {
	if info.AccessKeyId == "" {
		return nil, errors.New("the service's eci.json has no AccessKey: restart it with this version of spoteci")
	}
	return New(Config{Endpoint: info.Endpoint, Region: info.Region, AccessKeyID: info.AccessKeyId,
		AccessKeySecret: info.AccessKeySecret, Clients: clients})
}

// Region is the region the calls go to.
func (c *Client) Region() string { return c.cfg.Region }

// Close shuts the SDK clients down: the idle ones now, those in a call
// when it returns.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for {
		select {
		case sc := <-c.clients:
			sc.Shutdown()
		default:
			return
		}
	}
}

// giveBack returns a client to the pool, or shuts it down after Close.
func (c *Client) giveBack(sc *sdkeci.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		sc.Shutdown()
		return
	}
	c.clients <- sc
}

// Do runs f with a client of the pool; it returns when f does or ctx ends
// (f then finishes on its own and gives its client back). A refusal by the
// service comes back as *eci.Error.
func (c *Client) Do(ctx context.Context, f func(*sdkeci.Client) error) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("ecisdk: closed")
	}
	var sc *sdkeci.Client
	select {
	case sc = <-c.clients:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		defer c.giveBack(sc)
		done <- f(sc)
	}()
	select {
	case err := <-done:
		return apiError(err, nil)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apiError turns the SDK's ServerError into an *eci.Error, with the
// refused field that body (the answer, if at hand) names in spoteci's
// extension, which the ServerError drops.
func apiError(err error, body []byte) error {
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		return err
	}
	e := &eciapi.Error{RequestId: se.RequestId(), Code: se.ErrorCode(), Message: se.Message(), HTTPStatus: se.HttpStatus()}
	var ext struct{ Spoteci *eciapi.FieldRefusal }
	if json.Unmarshal(body, &ext) == nil {
		e.Spoteci = ext.Spoteci
	}
	return e
}

// Call runs action with the parameters of req (openapi.Encode) as the SDK's
// common request and decodes the answer's JSON into resp.
func (c *Client) Call(ctx context.Context, action string, req, resp any) error {
	params, err := openapi.Encode(req)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	r := requests.NewCommonRequest()
	r.Product, r.Version, r.ServiceCode = "Eci", eciapi.ECIVersion, "eci"
	if ecsActions[action] {
		r.Product, r.Version, r.ServiceCode = "Ecs", eciapi.ECSVersion, "ecs"
	}
	r.ApiName, r.EndpointType = action, "openAPI"
	r.QueryParams["RegionId"] = c.cfg.Region
	for k, v := range params {
		r.QueryParams[k] = v
	}
	err = c.Do(ctx, func(sc *sdkeci.Client) error {
		out, err := sc.ProcessCommonRequest(r)
		if err != nil {
			return apiError(err, out.GetHttpContentBytes())
		}
		return json.Unmarshal(out.GetHttpContentBytes(), resp)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// call is Call with the answer's type named.
func call[Resp any](ctx context.Context, c *Client, action string, req any) (Resp, error) {
	var resp Resp
	err := c.Call(ctx, action, req, &resp)
	return resp, err
}
