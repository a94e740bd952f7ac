package eci_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/eci"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// A write the database refuses fails that action with 503, not the process:
// the service reloads its last written state and answers again, what was
// refused never happened, and the folder opens after a restart.
func TestFailedWriteRecovers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := startServer(t, dir)
	set := func(price string) error {
		_, err := s.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: "cn-hangzhou-i", SpotPrice: ptr(eciapi.Decimal(price))})
		return err
	}
	if err := set("0.05"); err != nil {
		t.Fatal(err)
	}
	if err := eci.RefuseWrites(s.svc, true); err != nil {
		t.Fatal(err)
	}
	var e *eciapi.Error
	if err := set("0.09"); !errors.As(err, &e) || e.HTTPStatus != 503 || e.Code != eciapi.CodeServiceUnavailable {
		t.Fatalf("a write the database refused: %v, want 503 %s", err, eciapi.CodeServiceUnavailable)
	}
	if err := eci.RefuseWrites(s.svc, false); err != nil {
		t.Fatal(err)
	}
	// The service answers again, on its last written state: 0.05.
	eventually(t, "the service answers after the failed write", func() error {
		history, err := s.DescribeSpotPriceHistory(ctx, wire.DescribeSpotPriceHistoryRequest{ZoneId: "cn-hangzhou-i", InstanceType: "ecs.c5.large"})
		if err != nil {
			return err
		}
		if points := history.SpotPrices.SpotPriceType; len(points) == 0 || points[len(points)-1].SpotPrice != 0.05 {
			return fmt.Errorf("price history %+v, want it to end at the written price 0.05", points)
		}
		return nil
	})
	// A client retries a 503 with its ClientToken, and gets one group.
	req := spotRequest("after", "0.1")
	req.ClientToken = "retry-me"
	var id string
	eventually(t, "create after the failed write", func() (err error) {
		id, err = s.CreateContainerGroup(ctx, req)
		return err
	})
	s.waitStatus(t, id, eciapi.StatusRunning)
	s.stop()

	b := startServer(t, dir)
	b.waitStatus(t, id, eciapi.StatusRunning)
	if err := b.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
		t.Fatal(err)
	}
}

// A state folder poisoned by an older version (an override of 1e308, which
// made every bill +Inf and every call 500) opens, answers, and bills
// finite amounts: the override is left out.
func TestPoisonedFolderOpens(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a := startServer(t, dir)
	id, err := a.CreateContainerGroup(ctx, spotRequest("poisoned", "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	a.waitStatus(t, id, eciapi.StatusRunning)
	a.stop()

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "eci.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO overrides (at, zone, type, price, stock, reset) VALUES (?, 'cn-hangzhou-i', 'ecs.c5.large', 1e308, NULL, 0)`,
		time.Now().Add(-time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	b := startServer(t, dir)
	g := b.waitStatus(t, id, eciapi.StatusRunning)
	bill, err := b.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		t.Fatalf("bill of a poisoned folder: %v", err)
	}
	if math.IsInf(bill.Amount, 0) || math.IsNaN(bill.Amount) || bill.Amount > 1 || math.IsInf(g.Spoteci.Amount, 0) {
		t.Errorf("bill %v (group %v): the poisoned price was billed", bill.Amount, g.Spoteci.Amount)
	}
	if err := b.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
		t.Fatal(err)
	}
}

// Deleting is idempotent: an ended group deleted says Deleted (a node that
// waits for Deleted would wait forever otherwise); a second delete is not
// found, as in ECI, and changes nothing.
func TestDeleteEndedGroup(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	id, err := s.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: "done", InstanceType: "2-4Gi",
		Containers: []eciapi.Container{{Name: "c", Image: "busybox", Commands: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, id, eciapi.StatusSucceeded)
	for i := range 2 {
		err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: id})
		if i == 0 && err != nil || i == 1 && !eciapi.IsNotFound(err) {
			t.Fatalf("delete %d of an ended group: %v", i+1, err)
		}
		if g := s.group(t, id); g.Status != eciapi.StatusDeleted {
			t.Fatalf("an ended group deleted says %s, want %s", g.Status, eciapi.StatusDeleted)
		}
	}
	if err := s.DeleteContainerGroup(ctx, eciapi.DeleteContainerGroupRequest{ContainerGroupId: "eci-nope"}); !eciapi.IsNotFound(err) {
		t.Errorf("deleting an unknown group: %v, want not found", err)
	}
}

// A group whose containers the runtime refuses to start fails at once with
// the runtime's words in a Warning event and stops billing, instead of
// staying Pending, billed forever.
func TestRefusedStartFails(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	id, err := s.CreateContainerGroup(ctx, eciapi.CreateContainerGroupRequest{ContainerGroupName: "never", InstanceType: "2-4Gi",
		Containers: []eciapi.Container{{Name: "c", Image: "not-pulled:1", ImagePullPolicy: "Never"}}})
	if err != nil {
		t.Fatal(err)
	}
	eci.RefuseStart(s.svc, id, errors.New(`container name "x": invalid`))
	g := s.waitStatus(t, id, eciapi.StatusFailed)
	ev, ok := findEvent(g, "StartError")
	if !ok || ev.Type != "Warning" || !strings.Contains(ev.Message, `container name "x": invalid`) {
		t.Errorf("events %+v, want a Warning StartError with the runtime's words", g.Events)
	}
	if c := g.Containers[0].CurrentState; c.State != "Terminated" || c.Reason != "StartError" {
		t.Errorf("container %+v, want Terminated StartError", c)
	}
	bill, err := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // an hour of market time at this scale would show
	again, _ := s.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{ContainerGroupIds: []string{id}})
	if again.Amount != bill.Amount {
		t.Errorf("the bill grows after the group failed: %v then %v", bill.Amount, again.Amount)
	}
}
