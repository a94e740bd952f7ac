package eci

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/spoteci/spoteci/internal/openapi"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// Page sizes of DescribeContainerGroups on the OpenAPI.
const (
	defaultPageSize = 20
	// MaxPageSize lets one call list a node of 1,000 pods.
	MaxPageSize = 1000
)

// rpcAction is one OpenAPI action: its product's version, and how it runs
// on the decoded parameters.
type rpcAction struct {
	version string
	// decode is the action's request decoder alone (run decodes too).
	decode func(params url.Values) error
	run    func(ctx context.Context, params url.Values) (any, error)
}

// rpc adapts a service action to the OpenAPI: decode the parameters into
// its request, run it, and shape its answer for the wire.
func rpc[Req, Resp any](version string, f func(context.Context, Req) (Resp, error), shape func(Resp) any) rpcAction {
	decode := func(params url.Values) (req Req, err error) {
		return req, openapi.Decode(params, &req)
	}
	return rpcAction{version: version, decode: func(params url.Values) error {
		_, err := decode(params)
		return err
	}, run: func(ctx context.Context, params url.Values) (any, error) {
		req, err := decode(params)
		if err != nil {
			return nil, err
		}
		resp, err := f(ctx, req)
		if err != nil {
			return nil, err
		}
		if shape == nil {
			return resp, nil
		}
		return shape(resp), nil
	}}
}

// rpcActions are the ECI and ECS actions the OpenAPI answers; nothing else
// (the market overrides, bills and log streams stay on the admin API).
func (a *api) rpcActions() map[string]rpcAction {
	return map[string]rpcAction{
		eciapi.ActionCreateContainerGroup: rpc(eciapi.ECIVersion, a.svc.CreateContainerGroup, func(r eciapi.CreateContainerGroupResponse) any {
			return wire.CreateContainerGroupResponse{ContainerGroupId: r.ContainerGroupId}
		}),
		eciapi.ActionDescribeContainerGroups: rpc(eciapi.ECIVersion, a.describePage, func(r eciapi.DescribeContainerGroupsResponse) any {
			return wireGroups(r)
		}),
		eciapi.ActionDescribeContainerGroupStatus: rpc(eciapi.ECIVersion, a.svc.DescribeContainerGroupStatus, func(r eciapi.DescribeContainerGroupStatusResponse) any {
			return wireStatus(r)
		}),
		eciapi.ActionDeleteContainerGroup: rpc(eciapi.ECIVersion, a.svc.DeleteContainerGroup, func(r eciapi.DeleteContainerGroupResponse) any {
			return wire.DeleteContainerGroupResponse{}
		}),
		eciapi.ActionRestartContainerGroup: rpc(eciapi.ECIVersion, a.svc.RestartContainerGroup, func(r eciapi.RestartContainerGroupResponse) any {
			return wire.RestartContainerGroupResponse{}
		}),
		eciapi.ActionDescribeContainerLog: rpc(eciapi.ECIVersion, a.svc.DescribeContainerLog, func(r eciapi.DescribeContainerLogResponse) any {
			return wire.DescribeContainerLogResponse{ContainerName: r.ContainerName, Content: r.Content}
		}),
		eciapi.ActionExecContainerCommand: rpc(eciapi.ECIVersion, a.svc.ExecContainerCommand, func(r eciapi.ExecContainerCommandResponse) any {
			return wire.ExecContainerCommandResponse{WebSocketUri: r.WebSocketUri}
		}),
		eciapi.ActionDescribeContainerGroupPrice: rpc(eciapi.ECIVersion, a.svc.DescribeContainerGroupPrice, func(r eciapi.DescribeContainerGroupPriceResponse) any {
			return wirePrice(r)
		}),
		eciapi.ActionDescribeMultiContainerGroupMetric: rpc(eciapi.ECIVersion, a.svc.DescribeMultiContainerGroupMetric, nil),

		eciapi.ActionDescribeSpotPriceHistory:  rpc(eciapi.ECSVersion, a.ecsSpotPriceHistory, nil),
		eciapi.ActionDescribeAvailableResource: rpc(eciapi.ECSVersion, a.ecsAvailableResource, nil),
		eciapi.ActionDescribeSpotAdvice:        rpc(eciapi.ECSVersion, a.ecsSpotAdvice, nil),
	}
}

// describePage is DescribeContainerGroups with the OpenAPI's page sizes.
func (a *api) describePage(ctx context.Context, req eciapi.DescribeContainerGroupsRequest) (eciapi.DescribeContainerGroupsResponse, error) {
	switch {
	case req.Limit == 0:
		req.Limit = defaultPageSize
	case req.Limit < 0 || req.Limit > MaxPageSize:
		return eciapi.DescribeContainerGroupsResponse{}, badRequest("Limit", "Limit %d: want 1 to %d", req.Limit, MaxPageSize)
	}
	return a.svc.DescribeContainerGroups(ctx, req)
}

// serveOpenAPI answers one OpenAPI call: parameters, signature, action,
// version, region, then the action itself.
func (a *api) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	requestID := newRequestID()
	name := "unknown"
	code := func() int {
		params, err := openapi.Params(r)
		if err == nil {
			err = a.verifier.Verify(r.Method, params)
		}
		if err != nil {
			return openapi.WriteError(w, requestID, r.Host, err)
		}
		action, ok := a.rpc[params.Get("Action")]
		switch {
		case params.Get("Action") == "":
			err = openapi.MissingParameter("Action")
		case !ok:
			err = &APIError{Status: http.StatusNotFound, Code: eciapi.CodeActionNotFound, Message: "Specified api is not found, please check your url and method: " + params.Get("Action") + "."}
		case params.Get("Version") != action.version:
			err = &APIError{Status: http.StatusBadRequest, Code: "InvalidVersion", Message: "Specified parameter Version is not valid: " + params.Get("Action") + " is served in version " + action.version + ", not " + strconv.Quote(params.Get("Version")) + "."}
		case params.Get("Format") != "" && params.Get("Format") != "JSON":
			err = openapi.InvalidParameter("Format", "only JSON is served, not "+strconv.Quote(params.Get("Format")))
		case params.Get("RegionId") == "":
			err = openapi.MissingParameter("RegionId")
		case params.Get("RegionId") != a.svc.cfg.Region:
			err = &APIError{Status: http.StatusBadRequest, Code: "InvalidRegionId", Message: "The specified region " + strconv.Quote(params.Get("RegionId")) + " is not served here: this service is region " + a.svc.cfg.Region + "."}
		}
		if err != nil {
			return openapi.WriteError(w, requestID, r.Host, err)
		}
		name = params.Get("Action")
		ctx := context.WithValue(r.Context(), requestHost{}, r.Host)
		resp, err := action.run(ctx, params)
		if err != nil {
			return openapi.WriteError(w, requestID, r.Host, err)
		}
		out, err := json.Marshal(withRequestID(resp, requestID))
		if err != nil {
			return openapi.WriteError(w, requestID, r.Host, err)
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.Write(out)
		return http.StatusOK
	}()
	a.svc.metrics.latency.WithLabelValues(name, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
}

// withRequestID is resp with its RequestId set: every response carries
// its RequestId, as ECI's do.
func withRequestID(resp any, requestID string) any {
	v := reflect.New(reflect.TypeOf(resp)).Elem()
	v.Set(reflect.ValueOf(resp))
	if id := v.FieldByName("RequestId"); id.IsValid() && id.CanSet() {
		id.SetString(requestID)
	}
	return v.Interface()
}

// wireGroups shapes a listing as ECI's.
func wireGroups(r eciapi.DescribeContainerGroupsResponse) wire.DescribeContainerGroupsResponse {
	out := wire.DescribeContainerGroupsResponse{NextToken: r.NextToken, TotalCount: r.TotalCount,
		ContainerGroups: make([]wire.ContainerGroup, 0, len(r.ContainerGroups)),
		Spoteci:         &wire.Listing{MarketTime: wire.Time(r.Time), WallTime: wire.PreciseTime(r.WallTime), TimeScale: r.TimeScale}}
	for _, g := range r.ContainerGroups {
		out.ContainerGroups = append(out.ContainerGroups, wireGroup(g))
	}
	return out
}

// wireGroup shapes a group as ECI's.
func wireGroup(g eciapi.ContainerGroup) wire.ContainerGroup {
	w := wire.ContainerGroup{
		ContainerGroupId: g.ContainerGroupId, ContainerGroupName: g.ContainerGroupName, RegionId: g.RegionId, ZoneId: g.ZoneId,
		Cpu: g.Cpu, Memory: g.Memory, InstanceType: g.InstanceType, Status: g.Status, RestartPolicy: g.RestartPolicy,
		IntranetIp: g.IntranetIp, SpotStrategy: g.SpotStrategy, SpotPriceLimit: g.SpotPriceLimit,
		CreationTime: wire.Time(g.CreationTime), Tags: []wire.Tag{}, Events: []wire.Event{}, Containers: []wire.Container{},
		Spoteci: &wire.Group{ClientToken: g.ClientToken, SpotDuration: g.SpotDuration, SpotFallback: g.SpotFallback, Degraded: g.Degraded,
			PurchasePrice: g.PurchasePrice, Price: g.Price, Amount: g.Amount, ProtectionEnd: wire.Time(g.ProtectionEnd),
			CreationTime: wire.PreciseTime(g.CreationTime)},
	}
	if g.NoticeTime != nil {
		w.Spoteci.NoticeTime = wire.Time(*g.NoticeTime)
	}
	if g.ExpiredTime != nil {
		w.ExpiredTime = wire.Time(*g.ExpiredTime)
	}
	if g.SucceededTime != nil {
		if g.Status == eciapi.StatusFailed {
			w.FailedTime = wire.Time(*g.SucceededTime)
		} else {
			w.SucceededTime = wire.Time(*g.SucceededTime)
		}
	}
	for _, t := range g.Tags {
		w.Tags = append(w.Tags, wire.Tag(t))
	}
	for _, e := range g.Events {
		name := g.ContainerGroupId
		if e.Container != "" {
			name += "." + e.Container
		}
		ts := wire.Time(e.Timestamp)
		w.Events = append(w.Events, wire.Event{Count: 1, Type: e.Type, Name: name, Reason: e.Reason, Message: e.Message,
			FirstTimestamp: ts, LastTimestamp: ts,
			Spoteci: &wire.EventDetail{Container: e.Container, Timestamp: wire.PreciseTime(e.Timestamp)}})
	}
	for _, c := range g.Containers {
		wc := wire.Container{Name: c.Name, Image: c.Image, Commands: c.Commands, Args: c.Args, RestartCount: c.RestartCount,
			Ready: c.CurrentState.State == "Running", CurrentState: wireState(&c.CurrentState), PreviousState: wireState(c.PreviousState)}
		if c.ImageID != "" {
			wc.Spoteci = &wire.ContainerDetail{ImageID: c.ImageID}
		}
		w.Containers = append(w.Containers, wc)
	}
	return w
}

func wireState(s *eciapi.ContainerState) wire.ContainerState {
	if s == nil {
		return wire.ContainerState{}
	}
	w := wire.ContainerState{State: s.State, DetailStatus: s.DetailStatus, ExitCode: s.ExitCode, Reason: s.Reason, Message: s.DetailStatus}
	if s.StartTime != nil {
		w.StartTime = wire.Time(*s.StartTime)
	}
	if s.FinishTime != nil {
		w.FinishTime = wire.Time(*s.FinishTime)
	}
	return w
}

// wirePrice shapes a price answer as ECI's PriceInfo.
func wirePrice(r eciapi.DescribeContainerGroupPriceResponse) wire.DescribeContainerGroupPriceResponse {
	out := wire.DescribeContainerGroupPriceResponse{PriceInfo: wire.PriceInfo{Price: wire.Price{
		OriginalPrice: r.OriginalPrice, TradePrice: r.TradePrice, DiscountPrice: max(0, r.OriginalPrice-r.TradePrice), Currency: r.Currency}},
		Spoteci: &wire.Placement{ZoneId: r.ZoneId, InstanceType: r.InstanceType, Reason: r.Reason}}
	for _, p := range r.SpotPrices {
		out.PriceInfo.SpotPrices = append(out.PriceInfo.SpotPrices, wire.SpotPrice{ZoneId: p.ZoneId, InstanceType: p.InstanceType, SpotPrice: p.SpotPrice, OriginPrice: p.OriginPrice})
	}
	return out
}
