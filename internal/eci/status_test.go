package eci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	sdkeci "github.com/aliyun/alibaba-cloud-sdk-go/services/eci"

	"github.com/spoteci/spoteci/internal/eci"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// fakeWall is a wall clock a test moves by hand.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWall) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t
}

func (w *fakeWall) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = w.t.Add(d)
}

// describeStatus calls DescribeContainerGroupStatus as an ECI user of the
// official SDK (v1.63.107, which has no typed request for it) does: a
// CommonRequest of product Eci, version 2018-08-08, RPC style.
func describeStatus(c *sdkeci.Client, params map[string]string) (wire.DescribeContainerGroupStatusResponse, error) {
	r := requests.NewCommonRequest()
	r.Product, r.Version, r.ServiceCode, r.ApiName = "Eci", eciapi.ECIVersion, "eci", "DescribeContainerGroupStatus"
	r.QueryParams["RegionId"] = eci.DefaultRegion
	for k, v := range params {
		r.QueryParams[k] = v
	}
	var out wire.DescribeContainerGroupStatusResponse
	resp, err := c.ProcessCommonRequest(r)
	if err != nil {
		return out, err
	}
	return out, json.Unmarshal(resp.GetHttpContentBytes(), &out)
}

func statusIDs(r wire.DescribeContainerGroupStatusResponse) []string {
	var ids []string
	for _, d := range r.Data {
		ids = append(ids, d.ContainerGroupId)
	}
	return ids
}

// DescribeContainerGroupStatus through the SDK's CommonRequest: with
// SinceSecond only the groups whose status changed within the window (a
// restarted one, a deleted one), the latest first; tags, IDs and pages as
// ECI has them; SinceSecond, Limit and NextToken out of bounds are ECI's
// 400s. The virtual node's provider keeps what changed within its own,
// narrower window.
func TestSDKDescribeContainerGroupStatus(t *testing.T) {
	wall := &fakeWall{t: time.Now().UTC()}
	s := startServerWith(t, eci.Config{StateDir: t.TempDir(), TimeScale: 1, Wall: wall.now})
	ctx := context.Background()
	c := s.sdk(t)
	ids := map[string]string{}
	for _, g := range []struct{ name, node string }{{"ga", "n1"}, {"gb", "n1"}, {"gc", "n2"}} {
		req := spotRequest(g.name, "0.1")
		req.Tags = []eciapi.Tag{{Key: "spoteci.io/node", Value: g.node}}
		id, err := s.CreateContainerGroup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		ids[g.name[1:]] = id
	}
	for _, id := range ids {
		s.waitStatus(t, id, eciapi.StatusRunning)
	}
	n1 := map[string]string{"Tag.1.Key": "spoteci.io/node", "Tag.1.Value": "n1"}
	since := func(seconds int, more map[string]string) map[string]string {
		p := map[string]string{"SinceSecond": strconv.Itoa(seconds)}
		for k, v := range more {
			p[k] = v
		}
		return p
	}

	// Every group settled, and then more than a minute passed: none changed
	// in the last minute (the wall moves until the runtime is quiet).
	eventually(t, "no change within a minute", func() error {
		wall.advance(2 * time.Minute)
		resp, err := describeStatus(c, since(60, nil))
		if err != nil {
			return err
		}
		if len(resp.Data) != 0 || resp.TotalCount != 0 {
			return fmt.Errorf("changed within a minute: %v (total %d)", statusIDs(resp), resp.TotalCount)
		}
		return nil
	})

	if err := s.RestartContainerGroup(ctx, eciapi.RestartContainerGroupRequest{ContainerGroupId: ids["a"]}); err != nil {
		t.Fatal(err)
	}
	var a wire.ContainerGroupStatus
	eventually(t, "a restarted, and changed within a minute", func() error {
		resp, err := describeStatus(c, since(60, n1))
		if err != nil {
			return err
		}
		if !slices.Equal(statusIDs(resp), []string{ids["a"]}) || resp.TotalCount != 1 {
			return fmt.Errorf("changed within a minute: %v (total %d), want a (%s) alone", statusIDs(resp), resp.TotalCount, ids["a"])
		}
		a = resp.Data[0]
		if cs := a.PodStatus.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 1 || cs[0].State.Running == nil {
			return fmt.Errorf("container statuses %+v, want one Running after a restart", cs)
		}
		return nil
	})
	ps := a.PodStatus
	if a.Status != "Running" || ps.Phase != "Running" || ps.PodIp == "" || len(ps.PodIps) != 1 || ps.PodIps[0].Ip != ps.PodIp {
		t.Errorf("a: status %s, phase %s, IP %q %v", a.Status, ps.Phase, ps.PodIp, ps.PodIps)
	}
	if cs := ps.ContainerStatuses[0]; cs.Name != "ga" || !cs.Ready || !cs.Started || cs.LastState.Terminated == nil || cs.LastState.Terminated.ExitCode != 0 {
		t.Errorf("a's container %+v, want ready, started, its last run Terminated with 0", cs)
	}
	conditions := map[string]string{}
	for _, cond := range ps.Conditions {
		conditions[cond.Type] = cond.Status
	}
	if conditions["Ready"] != "True" || conditions["ContainersReady"] != "True" || conditions["PodScheduled"] != "True" {
		t.Errorf("a's conditions %+v", ps.Conditions)
	}
	if a.Spoteci == nil || a.Spoteci.Group.ContainerGroupId != ids["a"] || len(a.Spoteci.Group.Tags) != 1 {
		t.Fatalf("a's spoteci detail %+v, want the whole group", a.Spoteci)
	}
	if changed, err := wire.ParsePreciseTime(a.Spoteci.ChangeTime); err != nil || changed.Before(wall.now().Add(-time.Minute)) {
		t.Errorf("a changed at %s (%v), wall %s", a.Spoteci.ChangeTime, err, wall.now())
	}

	// The node's provider asks ECI for at least 60 seconds and keeps its own
	// window: a changed 30 s ago.
	wall.advance(30 * time.Second)
	p := s.sdkProvider(t)
	tags := map[string]string{"spoteci.io/node": "n1"}
	if list, err := p.Changed(ctx, tags, 10*time.Second); err != nil || len(list) != 0 {
		t.Errorf("changed within 10 s: %d instances (%v), want none", len(list), err)
	}
	if list, err := p.Changed(ctx, tags, 45*time.Second); err != nil || len(list) != 1 || list[0].ID != ids["a"] || list[0].Containers[0].RestartCount != 1 {
		t.Errorf("changed within 45 s: %+v (%v), want a alone, restarted", list, err)
	}

	// Without SinceSecond: every group of the tag, the latest change first,
	// a page at a time.
	page1, err := describeStatus(c, map[string]string{"Tag.1.Key": "spoteci.io/node", "Tag.1.Value": "n1", "Limit": "1"})
	if err != nil {
		t.Fatal(err)
	}
	page2, err := describeStatus(c, map[string]string{"Tag.1.Key": "spoteci.io/node", "Tag.1.Value": "n1", "Limit": "1", "NextToken": page1.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(statusIDs(page1), []string{ids["a"]}) || page1.NextToken == "" || page1.TotalCount != 2 ||
		!slices.Equal(statusIDs(page2), []string{ids["b"]}) || page2.NextToken != "" {
		t.Errorf("pages %v (next %q, total %d) and %v (next %q), want a then b", statusIDs(page1), page1.NextToken, page1.TotalCount, statusIDs(page2), page2.NextToken)
	}
	byID, err := describeStatus(c, map[string]string{"ContainerGroupIds": fmt.Sprintf(`[%q,%q]`, ids["c"], ids["b"])})
	if err != nil {
		t.Fatal(err)
	}
	if got := statusIDs(byID); len(got) != 2 || !slices.Contains(got, ids["b"]) || !slices.Contains(got, ids["c"]) {
		t.Errorf("by ID: %v, want b and c", got)
	}

	// A deletion is a change: shown within the window, as Deleted.
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: ids["b"]}); err != nil {
		t.Fatal(err)
	}
	resp, err := describeStatus(c, since(60, n1))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) == 0 || resp.Data[0].ContainerGroupId != ids["b"] || resp.Data[0].Status != eciapi.StatusDeleted || resp.Data[0].PodStatus.Phase != "Failed" {
		t.Errorf("after b's deletion: %+v, want b first, Deleted", resp.Data)
	}
	if resp, err := describeStatus(c, n1); err != nil || slices.Contains(statusIDs(resp), ids["b"]) {
		t.Errorf("without SinceSecond: %v (%v), want b left out once deleted", statusIDs(resp), err)
	}

	for _, bad := range []struct {
		params map[string]string
		code   string
	}{
		{since(59, nil), "InvalidParameter.SinceSecond"},
		{since(3601, nil), "InvalidParameter.SinceSecond"},
		{since(0, nil), "InvalidParameter.SinceSecond"},
		{map[string]string{"Limit": "201"}, "InvalidParameter.Limit"},
		{map[string]string{"NextToken": "not-a-token"}, "InvalidParameter.NextToken"},
	} {
		_, err := describeStatus(c, bad.params)
		if err == nil {
			t.Errorf("%v: answered", bad.params)
			continue
		}
		if code, status := sdkCode(t, err); code != bad.code || status != 400 {
			t.Errorf("%v: %s %d, want %s 400", bad.params, code, status, bad.code)
		}
	}
}
