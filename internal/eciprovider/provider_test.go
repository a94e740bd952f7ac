package eciprovider

import (
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/vnode/provider"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// The local service's market times become wall times through the
// listing's clock; the real cloud's, without it, are taken as they are.
func TestInstancesInWallTime(t *testing.T) {
	wall0 := time.Date(2026, 4, 8, 8, 0, 0, 0, time.UTC)
	market0 := wall0.Add(100 * time.Hour)
	g := wire.ContainerGroup{ContainerGroupId: "eci-1", Status: "Expired", CreationTime: wire.Time(market0.Add(-time.Hour)),
		ExpiredTime: wire.Time(market0.Add(5 * time.Minute)),
		Events:      []wire.Event{{Type: "Warning", Reason: "SpotToBeReleased", FirstTimestamp: wire.Time(market0)}},
		Containers:  []wire.Container{{Name: "c", CurrentState: wire.ContainerState{State: "Terminated", StartTime: wire.Time(market0.Add(-time.Hour))}}}}

	local := wire.DescribeContainerGroupsResponse{ContainerGroups: []wire.ContainerGroup{g},
		Spoteci: &wire.Listing{MarketTime: wire.Time(market0), WallTime: wire.PreciseTime(wall0), TimeScale: 60}}
	in := instances(local)[0]
	if !in.Created.Equal(wall0.Add(-time.Minute)) || !in.ReleaseTime.Equal(wall0.Add(5*time.Second)) || !in.NoticeTime.Equal(wall0) {
		t.Errorf("x60: created %v, notice %v, release %v; want a wall minute before %v, then at it, then 5 s later", in.Created, in.NoticeTime, in.ReleaseTime, wall0)
	}
	if in.Status != provider.StatusExpired || !in.Containers[0].State.Started.Equal(wall0.Add(-time.Minute)) {
		t.Errorf("instance %+v", in)
	}

	in = instances(wire.DescribeContainerGroupsResponse{ContainerGroups: []wire.ContainerGroup{g}})[0]
	if !in.Created.Equal(market0.Add(-time.Hour)) || !in.NoticeTime.Equal(market0) || !in.ReleaseTime.Equal(market0.Add(5*time.Minute)) {
		t.Errorf("no extension: created %v, notice %v, release %v", in.Created, in.NoticeTime, in.ReleaseTime)
	}
}
