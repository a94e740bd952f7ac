package eci_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"
	sdkecs "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/eciprovider"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/vnode/provider"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// The contract suite: the real service driven by the unmodified official
// SDK, as any ECI client would drive it.

// sdk is an official ECI client of s, signing with the test AccessKey.
func (s *server) sdk(t testing.TB) *sdkeci.Client {
	t.Helper()
	return s.sdkWith(t, accessKeyID, accessKeySecret)
}

func (s *server) sdkWith(t testing.TB, id, secret string) *sdkeci.Client {
	t.Helper()
	c, err := sdkeci.NewClientWithAccessKey("cn-hangzhou", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = strings.TrimPrefix(s.admin.Endpoint, "http://")
	t.Cleanup(c.Shutdown)
	return c
}

// describeWire lists groups through the SDK and decodes the body into the
// wire types, which keep spoteci's extension.
func describeWire(t *testing.T, c *sdkeci.Client, req *sdkeci.DescribeContainerGroupsRequest) (*sdkeci.DescribeContainerGroupsResponse, wire.DescribeContainerGroupsResponse) {
	t.Helper()
	resp, err := c.DescribeContainerGroups(req)
	if err != nil {
		t.Fatal(err)
	}
	var w wire.DescribeContainerGroupsResponse
	if err := json.Unmarshal(resp.GetHttpContentBytes(), &w); err != nil {
		t.Fatal(err)
	}
	return resp, w
}

func byID(ids ...string) *sdkeci.DescribeContainerGroupsRequest {
	req := sdkeci.CreateDescribeContainerGroupsRequest()
	b, _ := json.Marshal(ids)
	req.ContainerGroupIds = string(b)
	return req
}

func sdkCode(t *testing.T, err error) (string, int) {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want an ECI error, got %v", err)
	}
	return se.ErrorCode(), se.HttpStatus()
}

// A group's life through the SDK: create with env values that need
// encoding, Running, its log, its price, delete.
func TestSDKGroupLife(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ContainerGroupName = "sdk-life"
	req.InstanceType = "ecs.c5.large"
	req.SpotStrategy = "SpotAsPriceGo"
	req.QueryParams["SpotDuration"] = "0"
	req.RestartPolicy = "Never"
	req.Tag = &[]sdkeci.CreateContainerGroupTag{{Key: "team", Value: "a&b=c"}}
	value := "x&y=z é ~*+% 中文"
	req.Container = &[]sdkeci.CreateContainerGroupContainer{{
		Name: "main", Image: "busybox", Command: []string{"sh", "-c", `echo "A=$A"; echo "IP=$MY_IP"; sleep 3600`},
		EnvironmentVar: &[]sdkeci.CreateContainerGroupEnvironmentVar{
			{Key: "A", Value: value},
			{Key: "MY_IP", FieldRef: sdkeci.CreateContainerGroupFieldRef{FieldPath: "status.podIP"}},
		},
	}}
	created, err := c.CreateContainerGroup(req)
	if err != nil {
		t.Fatal(err)
	}
	id := created.ContainerGroupId
	if !strings.HasPrefix(id, "eci-") || created.RequestId == "" {
		t.Fatalf("created %+v", created)
	}

	var g sdkeci.DescribeContainerGroupsContainerGroup0
	eventually(t, id+" Running through the SDK", func() error {
		resp, _ := describeWire(t, c, byID(id))
		if len(resp.ContainerGroups) != 1 {
			return fmt.Errorf("%d groups", len(resp.ContainerGroups))
		}
		g = resp.ContainerGroups[0]
		if g.Status != "Running" || len(g.Containers) != 1 || g.Containers[0].CurrentState.State != "Running" || g.IntranetIp == "" {
			return fmt.Errorf("status %s, containers %+v, IP %q", g.Status, g.Containers, g.IntranetIp)
		}
		return nil
	})
	if g.InstanceType != "ecs.c5.large" || g.Cpu != 2 || g.Memory != 4 || g.RegionId != "cn-hangzhou" || g.ZoneId == "" || g.CreationTime == "" {
		t.Errorf("group %+v", g)
	}
	if len(g.Tags) != 1 || g.Tags[0].Value != "a&b=c" {
		t.Errorf("tags %+v", g.Tags)
	}
	if !g.Containers[0].Ready || g.Containers[0].CurrentState.StartTime == "" || len(g.Events) == 0 || g.Events[0].FirstTimestamp == "" {
		t.Errorf("container %+v, events %+v", g.Containers[0], g.Events)
	}

	eventually(t, "the log through the SDK", func() error {
		lreq := sdkeci.CreateDescribeContainerLogRequest()
		lreq.ContainerGroupId, lreq.ContainerName = id, "main"
		log, err := c.DescribeContainerLog(lreq)
		if err != nil {
			return err
		}
		if want := "A=" + value + "\nIP=" + g.IntranetIp + "\n"; log.Content != want {
			return fmt.Errorf("log %q, want %q", log.Content, want)
		}
		return nil
	})

	preq := sdkeci.CreateDescribeContainerGroupPriceRequest()
	preq.Cpu, preq.Memory = requests.NewFloat(2), requests.NewFloat(4)
	price, err := c.DescribeContainerGroupPrice(preq)
	if err != nil {
		t.Fatal(err)
	}
	if p := price.PriceInfo.Price; p.TradePrice <= 0 || p.OriginalPrice < p.TradePrice || p.Currency != "CNY" {
		t.Errorf("price %+v", p)
	}

	dreq := sdkeci.CreateDeleteContainerGroupRequest()
	dreq.ContainerGroupId = id
	if _, err := c.DeleteContainerGroup(dreq); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteContainerGroup(dreq); err == nil {
		t.Error("a second delete succeeded")
	} else if code, status := sdkCode(t, err); code != "InvalidContainerGroup.NotFound" || status != 404 {
		t.Errorf("second delete: %s %d", code, status)
	}
}

// A spot group's whole life read through the SDK: Running, the price rises
// above its limit, the SpotToBeReleased event, Expired, and the bill in
// spoteci's extension.
func TestSDKSpotLife(t *testing.T) {
	// A market hour is 6 wall seconds here, not 1: the price must change
	// within the protection hour, after Running, even on a loaded machine.
	s := startServerWith(t, eci.Config{StateDir: t.TempDir(), TimeScale: 600})
	ctx := context.Background()
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal("0.056"))}); err != nil {
		t.Fatal(err)
	}
	c := s.sdk(t)
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ContainerGroupName, req.InstanceType, req.ZoneId = "spot", "ecs.c5.large", "cn-hangzhou-i"
	req.SpotStrategy, req.SpotPriceLimit = "SpotWithPriceLimit", requests.NewFloat(0.1)
	req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "spot", Image: "busybox", Command: looper}}
	created, err := c.CreateContainerGroup(req)
	if err != nil {
		t.Fatal(err)
	}
	id := created.ContainerGroupId
	s.waitStatus(t, id, eciapi.StatusRunning)
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal("0.5"))}); err != nil {
		t.Fatal(err)
	}
	var g wire.ContainerGroup
	eventually(t, id+" Expired through the SDK", func() error {
		_, w := describeWire(t, c, byID(id))
		g = w.ContainerGroups[0]
		if g.Status != "Expired" {
			return fmt.Errorf("status %s", g.Status)
		}
		return nil
	})
	var notice *wire.Event
	for i, e := range g.Events {
		if e.Reason == "SpotToBeReleased" {
			notice = &g.Events[i]
		}
	}
	if notice == nil || notice.Type != "Warning" || notice.Message != "Spot ECI will be released in 5 minutes" {
		t.Fatalf("events %+v: want a Warning SpotToBeReleased", g.Events)
	}
	if g.SpotStrategy != "SpotWithPriceLimit" || g.SpotPriceLimit != 0.1 || g.ExpiredTime == "" || g.Spoteci == nil {
		t.Fatalf("group %+v", g)
	}
	if notice.FirstTimestamp != g.Spoteci.NoticeTime || g.Spoteci.ProtectionEnd != g.Spoteci.NoticeTime {
		t.Errorf("notice at %s, NoticeTime %s, protection end %s: want one moment", notice.FirstTimestamp, g.Spoteci.NoticeTime, g.Spoteci.ProtectionEnd)
	}
	if want := 0.056*1 + 0.5*5/60; math.Abs(g.Spoteci.Amount-want) > 1e-9 {
		t.Errorf("bill %v, want %v", g.Spoteci.Amount, want)
	}
}

// Paging and tag filters over many groups: every group once, in order,
// with the total, and a page that survives a delete between calls.
func TestSDKPaging(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	const n = 230
	want := map[string]bool{}
	for i := range n {
		req := sdkeci.CreateCreateContainerGroupRequest()
		req.ContainerGroupName = fmt.Sprint("page-", i)
		req.Cpu, req.Memory = requests.NewFloat(1), requests.NewFloat(2)
		team := "odd"
		if i%2 == 0 {
			team = "even"
		}
		req.Tag = &[]sdkeci.CreateContainerGroupTag{{Key: "team", Value: team}, {Key: "all", Value: "yes"}}
		// An image that is never pulled: the groups wait, cheaply.
		req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox:absent", ImagePullPolicy: "Never"}}
		resp, err := c.CreateContainerGroup(req)
		if err != nil {
			t.Fatal(err)
		}
		if team == "even" {
			want[resp.ContainerGroupId] = true
		}
	}
	list := func(limit int, deleteAfterFirst bool) []string {
		var got []string
		token := ""
		for page := 0; ; page++ {
			req := sdkeci.CreateDescribeContainerGroupsRequest()
			req.Tag = &[]sdkeci.DescribeContainerGroupsTag{{Key: "team", Value: "even"}, {Key: "all", Value: "yes"}}
			req.Limit = requests.NewInteger(limit)
			req.NextToken = token
			resp, err := c.DescribeContainerGroups(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.TotalCount < len(want)-1 || len(resp.ContainerGroups) > limit {
				t.Fatalf("page %d: total %d, %d groups", page, resp.TotalCount, len(resp.ContainerGroups))
			}
			for _, g := range resp.ContainerGroups {
				got = append(got, g.ContainerGroupId)
			}
			if page == 0 && deleteAfterFirst {
				// Delete the group the next page starts with.
				next, _ := describeNext(t, c, resp.NextToken)
				dreq := sdkeci.CreateDeleteContainerGroupRequest()
				dreq.ContainerGroupId = next
				if _, err := c.DeleteContainerGroup(dreq); err != nil {
					t.Fatal(err)
				}
				delete(want, next)
			}
			if token = resp.NextToken; token == "" {
				return got
			}
		}
	}
	for _, limit := range []int{20, 100} {
		got := list(limit, false)
		seen := map[string]bool{}
		for _, id := range got {
			if !want[id] || seen[id] {
				t.Fatalf("limit %d: %s listed twice or not even", limit, id)
			}
			seen[id] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("limit %d: %d groups listed, want %d", limit, len(seen), len(want))
		}
	}
	if got := list(50, true); len(got) != len(want) {
		t.Errorf("with a delete between pages: %d listed, want %d", len(got), len(want))
	}
	req := sdkeci.CreateDescribeContainerGroupsRequest()
	req.Limit = requests.NewInteger(eci.MaxPageSize + 1)
	if _, err := c.DescribeContainerGroups(req); err == nil {
		t.Error("Limit 1001 accepted")
	} else if code, status := sdkCode(t, err); !strings.HasPrefix(code, "InvalidParameter") || status != 400 {
		t.Errorf("Limit 1001: %s %d", code, status)
	}
}

// describeNext returns the first group of the page a token asks for.
func describeNext(t *testing.T, c *sdkeci.Client, token string) (string, int) {
	t.Helper()
	req := sdkeci.CreateDescribeContainerGroupsRequest()
	req.Tag = &[]sdkeci.DescribeContainerGroupsTag{{Key: "team", Value: "even"}}
	req.Limit = requests.NewInteger(1)
	req.NextToken = token
	resp, err := c.DescribeContainerGroups(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ContainerGroups[0].ContainerGroupId, resp.TotalCount
}

// The errors a client meets, with ECI's codes and statuses.
func TestSDKErrors(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	call := func(f func() error) (string, int) {
		t.Helper()
		err := f()
		if err == nil {
			t.Fatal("the call succeeded")
		}
		return sdkCode(t, err)
	}
	create := func(mod func(*sdkeci.CreateContainerGroupRequest)) func() error {
		return func() error {
			req := sdkeci.CreateCreateContainerGroupRequest()
			req.ContainerGroupName = "bad"
			req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", Command: []string{"true"}}}
			mod(req)
			_, err := c.CreateContainerGroup(req)
			return err
		}
	}
	for _, tc := range []struct {
		name   string
		f      func() error
		code   string
		status int
	}{
		{"wrong secret", func() error {
			_, err := s.sdkWith(t, accessKeyID, "wrong").DescribeContainerGroups(sdkeci.CreateDescribeContainerGroupsRequest())
			return err
		}, "SignatureDoesNotMatch", 400},
		{"unknown key", func() error {
			_, err := s.sdkWith(t, "LTAInobody", "x").DescribeContainerGroups(sdkeci.CreateDescribeContainerGroupsRequest())
			return err
		}, "InvalidAccessKeyId.NotFound", 404},
		{"no image", create(func(r *sdkeci.CreateContainerGroupRequest) { (*r.Container)[0].Image = "" }), "InvalidParameter.Container.Image", 400},
		{"bad strategy", create(func(r *sdkeci.CreateContainerGroupRequest) { r.SpotStrategy = "Cheap" }), "InvalidParameter.SpotStrategy", 400},
		{"bad list index", create(func(r *sdkeci.CreateContainerGroupRequest) { r.QueryParams["Container.3.Image"] = "x" }), "InvalidParameter", 400},
		{"bad number", create(func(r *sdkeci.CreateContainerGroupRequest) { r.QueryParams["Cpu"] = "lots" }), "InvalidParameter", 400},
		{"no stock", create(func(r *sdkeci.CreateContainerGroupRequest) {
			r.InstanceType, r.ZoneId, r.SpotStrategy = "ecs.c5.large", "cn-hangzhou-i", "SpotAsPriceGo"
		}), "OperationDenied.NoStock", 403},
		{"other region", func() error {
			req := sdkeci.CreateDescribeContainerGroupsRequest()
			req.RegionId = "cn-beijing"
			_, err := c.DescribeContainerGroups(req)
			return err
		}, "InvalidRegionId", 400},
		{"unknown action", func() error {
			req := requests.NewCommonRequest()
			req.Domain, req.Version, req.ApiName, req.Product = strings.TrimPrefix(s.admin.Endpoint, "http://"), "2018-08-08", "MakeItFree", "Eci"
			_, err := c.ProcessCommonRequest(req)
			return err
		}, "InvalidAction.NotFound", 404},
		{"admin action on the OpenAPI", func() error {
			req := requests.NewCommonRequest()
			req.Domain, req.Version, req.ApiName, req.Product = strings.TrimPrefix(s.admin.Endpoint, "http://"), "2018-08-08", "ModifySpotMarket", "Eci"
			_, err := c.ProcessCommonRequest(req)
			return err
		}, "InvalidAction.NotFound", 404},
		{"wrong version", func() error {
			req := requests.NewCommonRequest()
			req.Domain, req.Version, req.ApiName, req.Product = strings.TrimPrefix(s.admin.Endpoint, "http://"), "2014-05-26", "DescribeContainerGroups", "Eci"
			_, err := c.ProcessCommonRequest(req)
			return err
		}, "InvalidVersion", 400},
		{"unknown group", func() error {
			req := sdkeci.CreateDescribeContainerLogRequest()
			req.ContainerGroupId = "eci-nothere"
			_, err := c.DescribeContainerLog(req)
			return err
		}, "InvalidContainerGroup.NotFound", 404},
	} {
		if tc.name == "no stock" {
			zero := 0
			if _, err := s.admin.ModifySpotMarket(context.Background(), eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: &zero}); err != nil {
				t.Fatal(err)
			}
		}
		code, status := call(tc.f)
		if code != tc.code || status != tc.status {
			t.Errorf("%s: %s %d, want %s %d", tc.name, code, status, tc.code, tc.status)
		}
	}
}

// The ECS actions about the spot market, through the SDK's ECS client.
func TestSDKSpotMarketECS(t *testing.T) {
	s := startServer(t, t.TempDir())
	c, err := sdkecs.NewClientWithAccessKey("cn-hangzhou", accessKeyID, accessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	c.Domain = strings.TrimPrefix(s.admin.Endpoint, "http://")
	defer c.Shutdown()
	zero := 0
	if _, err := s.admin.ModifySpotMarket(context.Background(), eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: &zero}); err != nil {
		t.Fatal(err)
	}

	hreq := sdkecs.CreateDescribeSpotPriceHistoryRequest()
	hreq.InstanceType, hreq.ZoneId, hreq.NetworkType = "ecs.c5.large", "cn-hangzhou-i", "vpc"
	hist, err := c.DescribeSpotPriceHistory(hreq)
	if err != nil {
		t.Fatal(err)
	}
	points := hist.SpotPrices.SpotPriceType
	if len(points) < 2 || hist.Currency != "CNY" {
		t.Fatalf("%d points of 30 days, currency %q", len(points), hist.Currency)
	}
	first, err := wire.ParseTime(points[0].Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if age := s.svc.Now().Sub(first); age < 29*24*time.Hour || age > 30*24*time.Hour+time.Hour {
		t.Errorf("history starts %s before now, want 30 days", age)
	}
	for _, p := range points {
		if p.InstanceType != "ecs.c5.large" || p.ZoneId != "cn-hangzhou-i" || p.SpotPrice <= 0 || p.OriginPrice < p.SpotPrice {
			t.Fatalf("point %+v", p)
		}
	}

	areq := sdkecs.CreateDescribeAvailableResourceRequest()
	areq.DestinationResource, areq.SpotStrategy = "InstanceType", "SpotAsPriceGo"
	avail, err := c.DescribeAvailableResource(areq)
	if err != nil {
		t.Fatal(err)
	}
	categories := map[string]string{}
	for _, z := range avail.AvailableZones.AvailableZone {
		for _, r := range z.AvailableResources.AvailableResource {
			for _, sr := range r.SupportedResources.SupportedResource {
				categories[z.ZoneId+"/"+sr.Value] = sr.StatusCategory
			}
		}
	}
	if categories["cn-hangzhou-i/ecs.c5.large"] != "WithoutStock" {
		t.Errorf("the pool set to stock 0 is %q: %v", categories["cn-hangzhou-i/ecs.c5.large"], categories)
	}
	withStock := 0
	for _, c := range categories {
		if c == "WithStock" {
			withStock++
		}
	}
	if len(categories) < 10 || withStock != len(categories)-1 {
		t.Errorf("%d pools, %d with stock: want every pool but one WithStock", len(categories), withStock)
	}

	sreq := sdkecs.CreateDescribeSpotAdviceRequest()
	sreq.InstanceTypes = &[]string{"ecs.c5.large"}
	advice, err := c.DescribeSpotAdvice(sreq)
	if err != nil {
		t.Fatal(err)
	}
	zones := advice.AvailableSpotZones.AvailableSpotZone
	if len(zones) < 1 || advice.RegionId != "cn-hangzhou" {
		t.Fatalf("advice %+v", advice)
	}
	for _, z := range zones {
		for _, r := range z.AvailableSpotResources.AvailableSpotResource {
			if r.InstanceType != "ecs.c5.large" || r.AverageSpotDiscount <= 0 || r.AverageSpotDiscount > 100 || r.InterruptRateDesc == "" {
				t.Errorf("%s: %+v", z.ZoneId, r)
			}
		}
	}

	bad := sdkecs.CreateDescribeAvailableResourceRequest()
	bad.DestinationResource = "DataDisk"
	if _, err := c.DescribeAvailableResource(bad); err == nil {
		t.Error("DestinationResource DataDisk accepted")
	} else if code, status := sdkCode(t, err); code != "InvalidParameter.DestinationResource" || status != 400 {
		t.Errorf("DataDisk: %s %d", code, status)
	}
}

// RestartContainerGroup through the SDK: the container stops with SIGTERM
// and starts again in place, on the same instance and IP; a group that
// ended cannot be restarted.
func TestSDKRestart(t *testing.T) {
	s := startServer(t, t.TempDir())
	c := s.sdk(t)
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ContainerGroupName = "restart"
	req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "main", Image: "busybox",
		Command: []string{"sh", "-c", `echo run; trap 'echo got SIGTERM; exit 0' TERM; while :; do sleep 0.05; done`}}}
	created, err := c.CreateContainerGroup(req)
	if err != nil {
		t.Fatal(err)
	}
	id := created.ContainerGroupId
	before := s.waitStatus(t, id, eciapi.StatusRunning)
	s.waitLog(t, id, "run")
	rreq := sdkeci.CreateRestartContainerGroupRequest()
	rreq.ContainerGroupId = id
	if _, err := c.RestartContainerGroup(rreq); err != nil {
		t.Fatal(err)
	}
	var g sdkeci.DescribeContainerGroupsContainerGroup0
	eventually(t, id+" restarted", func() error {
		resp, _ := describeWire(t, c, byID(id))
		g = resp.ContainerGroups[0]
		if ct := g.Containers[0]; g.Status != "Running" || ct.RestartCount != 1 || ct.CurrentState.State != "Running" {
			return fmt.Errorf("status %s, container %+v", g.Status, ct)
		}
		return nil
	})
	if prev := g.Containers[0].PreviousState; prev.State != "Terminated" || prev.ExitCode != 0 {
		t.Errorf("previous run %+v, want Terminated with 0 (it took SIGTERM)", prev)
	}
	if g.IntranetIp != before.IntranetIp {
		t.Errorf("IP %s after the restart, %s before: want the same instance", g.IntranetIp, before.IntranetIp)
	}
	s.waitLog(t, id, "run")

	done := sdkeci.CreateCreateContainerGroupRequest()
	done.ContainerGroupName = "done"
	done.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "main", Image: "busybox", Command: []string{"true"}}}
	finished, err := c.CreateContainerGroup(done)
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, finished.ContainerGroupId, eciapi.StatusSucceeded)
	rreq.ContainerGroupId = finished.ContainerGroupId
	if _, err := c.RestartContainerGroup(rreq); err == nil {
		t.Error("a Succeeded group was restarted")
	} else if code, status := sdkCode(t, err); code != "IncorrectStatus.ContainerGroup" || status != 403 {
		t.Errorf("restart of a Succeeded group: %s %d", code, status)
	}
}

// The market's event kinds are the reasons clients read on the wire.
func TestMarketEventsAreWireReasons(t *testing.T) {
	if string(market.EventToBeReleased) != eciapi.ReasonSpotToBeReleased || string(market.EventDegraded) != eciapi.ReasonSpotDegraded {
		t.Errorf("market kinds %q, %q differ from the wire reasons %q, %q", market.EventToBeReleased, market.EventDegraded,
			eciapi.ReasonSpotToBeReleased, eciapi.ReasonSpotDegraded)
	}
}

// Without the admin API (as against the real cloud), the provider follows a
// log by polling DescribeContainerLog: every line comes once, and the
// stream ends with the container.
func TestProviderFollowsLogByPolling(t *testing.T) {
	s := startServer(t, t.TempDir())
	p := s.sdkProvider(t)
	ctx := context.Background()
	created, err := s.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: "lines",
		Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"sh", "-c", "for i in 1 2 3 4; do echo line$i; sleep 0.6; done"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s.waitLog(t, created, "line1")
	rc, err := p.Logs(ctx, eciapi.DescribeContainerLogRequest{ContainerGroupId: created, ContainerName: "c", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "line1\nline2\nline3\nline4\n" {
		t.Errorf("followed log %q, want every line once", got)
	}
}

// A refused spot field reaches the node through the SDK as the field, its
// value and why (spoteci's extension of the error body), not as words to
// read back; the code and message on the wire are ECI's, as before. A
// refusal of no one field carries none.
func TestProviderFieldRefusal(t *testing.T) {
	s := startServer(t, t.TempDir())
	p := s.sdkProvider(t)
	ctx := context.Background()
	for _, c := range []struct {
		name                string
		mutate              func(*eciapi.CreateContainerGroupRequest)
		code, message, node string
	}{
		{"limit with 4 decimals", func(r *eciapi.CreateContainerGroupRequest) {
			r.SpotStrategy, r.SpotPriceLimit = eciapi.SpotWithPriceLimit, "0.2555"
		}, "InvalidParameter.SpotPriceLimit",
			`invalid SpotPriceLimit "0.2555": want a positive hourly price with at most 3 decimals, like 0.25`,
			`invalid annotation k8s.aliyun.com/eci-spot-price-limit="0.2555": want a positive hourly price with at most 3 decimals, like 0.25`},
		{"unknown type", func(r *eciapi.CreateContainerGroupRequest) { r.InstanceType = "ecs.nope.large" }, "InvalidParameter.InstanceType",
			`invalid InstanceType "ecs.nope.large": spec "ecs.nope.large": unknown instance type`,
			`invalid annotation k8s.aliyun.com/eci-use-specs="ecs.nope.large": spec "ecs.nope.large": unknown instance type`},
		{"too big", func(r *eciapi.CreateContainerGroupRequest) { r.Cpu, r.Memory = 1000, 1 }, "InvalidParameter.Cpu", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := eciapi.CreateContainerGroupRequest{ContainerGroupName: "refused", Containers: []eciapi.Container{{Name: "c", Image: "busybox"}}}
			c.mutate(&req)
			_, err := p.Create(ctx, req)
			var re *provider.RequestError
			if !errors.As(err, &re) || re.Status != 400 || re.Code != c.code {
				t.Fatalf("%v, want a 400 %s", err, c.code)
			}
			switch {
			case c.node == "" && re.Field != nil:
				t.Errorf("a refusal of no spot field carries %+v", re.Field)
			case c.node == "":
			case re.Field == nil:
				t.Errorf("%q: no field", re.Message)
			case re.Message != c.message || re.Field.Error() != c.message || re.Field.Annotation() != c.node:
				t.Errorf("message %q, field %q in the annotation's words %q; want %q and %q", re.Message, re.Field.Error(), re.Field.Annotation(), c.message, c.node)
			}
		})
	}
}

// The virtual node's capacity comes from ECS's DescribeAvailableResource,
// asked through the SDK: every pool of its zone (or of the region) with its
// size and its whole spot stock, the instances running in it included; a
// zone the service does not sell in is provider.ErrUnknownZone.
func TestProviderPools(t *testing.T) {
	s := startServer(t, t.TempDir())
	p := s.sdkProvider(t)
	ctx := context.Background()
	seven := 7
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: &seven}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: "holds-one", ZoneId: "cn-hangzhou-i",
		InstanceType: "ecs.c5.large", SpotStrategy: eciapi.SpotAsPriceGo, Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"sleep", "60"}}}}); err != nil {
		t.Fatal(err)
	}

	zone, err := p.Pools(ctx, "cn-hangzhou-i")
	if err != nil {
		t.Fatal(err)
	}
	var c5 *provider.Pool
	for i, pool := range zone {
		if pool.Zone != "cn-hangzhou-i" || pool.VCPU <= 0 || pool.MemoryGiB <= 0 || pool.Stock < 0 {
			t.Errorf("pool %+v of the zone", pool)
		}
		if pool.InstanceType == "ecs.c5.large" {
			c5 = &zone[i]
		}
	}
	if c5 == nil || c5.VCPU != 2 || c5.MemoryGiB != 4 || c5.Stock != 7 {
		t.Errorf("ecs.c5.large in cn-hangzhou-i: %+v, want 2 vCPU, 4 GiB and the stock of 7 set, the held one included", c5)
	}
	if len(zone) < 10 {
		t.Errorf("%d pools in cn-hangzhou-i", len(zone))
	}

	region, err := p.Pools(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, pool := range region {
		zones[pool.Zone] = true
	}
	if len(zones) < 2 || !zones["cn-hangzhou-i"] || len(region) <= len(zone) {
		t.Errorf("the region: %d pools in zones %v; the zone alone has %d", len(region), zones, len(zone))
	}
	if p.Region() != eci.DefaultRegion {
		t.Errorf("region %q, want %q", p.Region(), eci.DefaultRegion)
	}

	if _, err := p.Pools(ctx, "cn-hangzhou-x"); !errors.Is(err, provider.ErrUnknownZone) {
		t.Errorf("an unknown zone: %v, want ErrUnknownZone", err)
	}
}

// sdkProvider is the virtual node's provider on the server, without its
// admin API (as against the real cloud); closed at the test's end.
func (s *server) sdkProvider(t *testing.T) *eciprovider.Provider {
	t.Helper()
	p, err := eciprovider.New(eciprovider.Config{Config: s.sdkConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// DryRun through the SDK, as ECS answers it: a create that would succeed is
// a 400 DryRunOperation with nothing created, billed, stored or told; one
// that would fail is the create's own error; a used ClientToken does not
// answer for it.
func TestSDKDryRun(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	c := s.sdk(t)
	dry := func(mod func(*sdkeci.CreateContainerGroupRequest)) error {
		t.Helper()
		req := sdkeci.CreateCreateContainerGroupRequest()
		req.ContainerGroupName, req.InstanceType, req.ZoneId = "dry", "ecs.c5.large", "cn-hangzhou-i"
		req.SpotStrategy = "SpotAsPriceGo"
		req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", Command: looper}}
		req.QueryParams["DryRun"] = "true"
		mod(req)
		_, err := c.CreateContainerGroup(req)
		return err
	}
	expect := func(what string, err error, code string, status int) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: the dry run created a group", what)
		}
		if got, st := sdkCode(t, err); got != code || st != status {
			t.Errorf("%s: %s %d (%v), want %s %d", what, got, st, err, code, status)
		}
	}
	nothing := func(what string, groups int) {
		t.Helper()
		resp, _ := describeWire(t, c, sdkeci.CreateDescribeContainerGroupsRequest())
		bill, err := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ContainerGroups) != groups || len(bill.Items) != groups {
			t.Errorf("%s: %d groups and %d bill items, want %d", what, len(resp.ContainerGroups), len(bill.Items), groups)
		}
	}

	// With the database refusing writes, a dry run still passes: it writes
	// nothing.
	if err := eci.RefuseWrites(s.svc, true); err != nil {
		t.Fatal(err)
	}
	err := dry(func(*sdkeci.CreateContainerGroupRequest) {})
	expect("in stock", err, eciapi.CodeDryRunOperation, 400)
	var se *sdkerrors.ServerError
	if errors.As(err, &se) && se.Message() != eciapi.DryRunMessage {
		t.Errorf("message %q, want %q", se.Message(), eciapi.DryRunMessage)
	}
	if err := eci.RefuseWrites(s.svc, false); err != nil {
		t.Fatal(err)
	}
	nothing("after a dry run", 0)

	expect("bad parameter", dry(func(r *sdkeci.CreateContainerGroupRequest) { (*r.Container)[0].Image = "" }), "InvalidParameter.Container.Image", 400)
	expect("bad spot field", dry(func(r *sdkeci.CreateContainerGroupRequest) {
		r.SpotStrategy, r.SpotPriceLimit = "SpotWithPriceLimit", requests.NewFloat(0.2555)
	}), "InvalidParameter.SpotPriceLimit", 400)
	expect("bid below every price", dry(func(r *sdkeci.CreateContainerGroupRequest) {
		r.SpotStrategy, r.SpotPriceLimit = "SpotWithPriceLimit", requests.NewFloat(0.001)
	}), eciapi.CodeBidBelowMarket, 403)

	zero := 0
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: &zero}); err != nil {
		t.Fatal(err)
	}
	expect("out of stock", dry(func(*sdkeci.CreateContainerGroupRequest) {}), eciapi.CodeNoStock, 403)
	expect("out of stock with fallback", dry(func(r *sdkeci.CreateContainerGroupRequest) { r.QueryParams["SpotFallback"] = "true" }),
		eciapi.CodeDryRunOperation, 400)
	nothing("after the refused dry runs", 0)

	// A token that made a group: the dry run checks again, and creates no
	// second group.
	req := sdkeci.CreateCreateContainerGroupRequest()
	req.ContainerGroupName, req.InstanceType, req.ClientToken = "real", "ecs.c5.large", "token-1"
	req.Container = &[]sdkeci.CreateContainerGroupContainer{{Name: "c", Image: "busybox", Command: looper}}
	if _, err := c.CreateContainerGroup(req); err != nil {
		t.Fatal(err)
	}
	expect("a used ClientToken", dry(func(r *sdkeci.CreateContainerGroupRequest) { r.ClientToken = "token-1" }), eciapi.CodeNoStock, 403)
	expect("a used ClientToken, in stock", dry(func(r *sdkeci.CreateContainerGroupRequest) { r.ClientToken, r.ZoneId = "token-1", "" }),
		eciapi.CodeDryRunOperation, 400)
	nothing("after a dry run with a used token", 1)
}

// The node's Provider.DryRun: nil when the create would succeed, the
// create's typed error when not, and nothing created either way.
func TestProviderDryRun(t *testing.T) {
	s := startServer(t, t.TempDir())
	p := s.sdkProvider(t)
	ctx := context.Background()
	spec := eciapi.CreateContainerGroupRequest{ContainerGroupName: "dry", InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i",
		SpotStrategy: eciapi.SpotAsPriceGo, Containers: []eciapi.Container{{Name: "c", Image: "busybox"}}}
	if err := p.DryRun(ctx, spec); err != nil {
		t.Errorf("in stock: %v, want nil", err)
	}
	bad := spec
	bad.SpotStrategy, bad.SpotPriceLimit = eciapi.SpotWithPriceLimit, "0.2555"
	var re *provider.RequestError
	if err := p.DryRun(ctx, bad); !errors.As(err, &re) || re.Status != 400 || re.Field == nil {
		t.Errorf("a bad limit: %v, want a 400 naming its field", err)
	}
	zero := 0
	if _, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", Stock: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := p.DryRun(ctx, spec); !errors.Is(err, provider.ErrNoStock) || !errors.As(err, &re) {
		t.Errorf("out of stock: %v, want a RequestError of ErrNoStock", err)
	}
	if all, err := p.List(ctx, nil); err != nil || len(all) != 0 {
		t.Errorf("after dry runs: %d instances (%v), want none", len(all), err)
	}
}
