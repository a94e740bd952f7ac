package console_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// sse is one server-sent event.
type sse struct{ event, id, data string }

// follow opens the stream of a live page of the console with since as its
// cursor and returns its events as they come.
func (f *fixture) follow(t *testing.T, c *http.Client, path, since string) <-chan sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	if since != "" {
		req.Header.Set("Last-Event-ID", since) // as a browser reconnecting
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream of %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
	}
	events := make(chan sse, 100)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		var e sse
		lines := bufio.NewScanner(resp.Body)
		lines.Buffer(nil, 16<<20)
		for lines.Scan() {
			k, v, _ := strings.Cut(lines.Text(), ": ")
			switch k {
			case "event":
				e.event = v
			case "id":
				e.id = v
			case "data":
				e.data += v + "\n"
			case "":
				events <- e
				e = sse{}
			}
		}
	}()
	return events
}

// next is the next event of kind within a few seconds.
func next(t *testing.T, events <-chan sse, kind string) sse {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended before a %q event", kind)
			}
			if e.event == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %q event in 10 s", kind)
		}
	}
}

// since is the cursor a live page was drawn at.
func since(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `data-since="`)
	cursor, _, _ := strings.Cut(rest, `"`)
	if !ok || cursor == "" {
		t.Fatal("no data-since on a live page")
	}
	return cursor
}

// TestLiveRows follows the instance list: a stream sends the rows that
// changed since the page was drawn, and no other; a filtered list drops a
// row whose status leaves the filter; a reconnect resumes from the last
// event's id.
func TestLiveRows(t *testing.T) {
	f := start(t)
	f.settle(t)
	c := client(t)
	f.signIn(t, c)
	all := f.get(t, c, "instances", http.StatusOK)
	running := f.get(t, c, "instances?status=Running", http.StatusOK)
	events := f.follow(t, c, "instances", since(t, all))
	filtered := f.follow(t, c, "instances?status=Running", since(t, running))

	// A new instance: its row alone.
	resp, err := f.svc.CreateContainerGroup(context.Background(), eciapi.CreateContainerGroupRequest{ContainerGroupName: "late", InstanceType: "ecs.c6.large",
		Containers: []eciapi.Container{{Name: "main", Image: "busybox"}}})
	if err != nil {
		t.Fatal(err)
	}
	// (web restarts every 300 ms: its row comes too.)
	e := next(t, events, "rows")
	if !strings.Contains(e.data, `data-id="`+resp.ContainerGroupId+`"`) || strings.Contains(e.data, f.ids[0]) || strings.Contains(e.data, f.ids[1]) {
		t.Fatalf("rows after a create: %q", e.data)
	}

	// The victim reclaimed: its row changes in the list, and leaves the
	// list of Running instances.
	stock := 0
	if _, err := f.svc.ModifySpotMarket(context.Background(), eciapi.ModifySpotMarketRequest{InstanceType: "ecs.c5.large", ZoneId: f.zone, Stock: &stock}); err != nil {
		t.Fatal(err)
	}
	f.waitStatus(t, f.victim, eciapi.StatusExpired)
	for e = next(t, events, "rows"); !strings.Contains(e.data, ">Expired<"); e = next(t, events, "rows") {
	}
	if !strings.Contains(e.data, `data-id="`+f.victim+`"`) || strings.Contains(e.data, f.ids[1]) {
		t.Errorf("rows after the reclaim: %q", e.data)
	}
	for e = next(t, filtered, "rows"); !strings.Contains(e.data, "data-gone"); e = next(t, filtered, "rows") {
	}
	if !strings.Contains(e.data, `<tr data-id="`+f.victim+`" data-gone>`) {
		t.Errorf("the Running list after the reclaim: %q", e.data)
	}

	// A reconnect (Last-Event-ID) gets nothing older than its cursor: once
	// the reclaim has settled, the next changes only (of pi's list, which
	// web is not on).
	f.settle(t)
	again := f.follow(t, c, "instances?job=pi", since(t, f.get(t, c, "instances?job=pi", http.StatusOK)))
	if _, err := f.svc.DeleteContainerGroup(context.Background(), eciapi.DeleteContainerGroupRequest{ContainerGroupId: f.ids[1]}); err != nil {
		t.Fatal(err)
	}
	if e := next(t, again, "rows"); e.data != `<tr data-id="`+f.ids[1]+`" data-gone></tr>`+"\n\n" {
		t.Errorf("after a reconnect: %q", e.data)
	}

	// What the console spent on it, in its metric.
	families, err := f.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	spent := map[string]uint64{}
	for _, m := range families {
		for _, s := range m.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			spent[labels["page"]+" "+labels["kind"]] += s.GetHistogram().GetSampleCount()
		}
	}
	for _, want := range []string{"instances page", "instances rows", "instances probe"} {
		if spent[want] == 0 {
			t.Errorf("spoteci_console_draw_duration_seconds has no %q: %v", want, spent)
		}
	}
}

// settle waits until pi's instances have not changed for a while: they have
// pulled and started (or been released). web restarts all the time.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	window := 60
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := f.svc.DescribeContainerGroupStatus(context.Background(), eciapi.DescribeContainerGroupStatusRequest{SinceSecond: &window, Limit: 1,
			ContainerGroupIds: f.ids[:2]})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) == 0 || resp.WallTime.Sub(resp.Data[0].ChangeTime) > 300*time.Millisecond {
			return
		}
	}
	t.Fatal("the fixture's instances never settled")
}
