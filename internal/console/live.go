package console

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"strconv"
	"time"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

// A live page follows the service over server-sent events on its own URL
// (a browser's EventSource asks with Accept: text/event-stream): one URL for
// the page and its stream keeps the filters in one place, the query.
//
// What a stream costs grows with what changes, not with what a page shows.
// Each tick asks the service which groups of the page's scope changed since
// the stream's cursor (DescribeContainerGroupStatus with SinceSecond: a walk
// of the service's change list, newest first, that stops at the window), and
// draws only then:
//   - a list page sends the changed rows alone ("rows"), which the script
//     puts in place by their data-id;
//   - any other page sends its "live" block again ("live"), which the
//     script morphs into place.
//
// Drawing is paced: after a drawing that took d, the next waits at least
// dutyCycle times d, so that one viewer keeps at most 1/dutyCycle of a core
// busy however large the page: an instance's page (a third of a
// millisecond) follows every change, a 1,000-instance Job's (10 ms) redraws
// at most every 10 s, and a burst of 1,000 changed rows (20 ms) comes in
// one event every 20 s (BenchmarkConsoleFollowsJob). Every Resync the block
// is sent whole, for what moves with time alone (the bill so far, prices).
// Each event's id is the cursor, so a browser that reconnects (sending
// Last-Event-ID) gets what it missed and no more.

// dutyCycle bounds a stream's drawing to 1/dutyCycle of its wall time.
const dutyCycle = 1000

// changeWindow is the shortest SinceSecond ECI takes: the window a tick
// asks about. A cursor older than changeWindowUse gets the block whole.
const (
	changeWindow    = 60
	changeWindowUse = 50 * time.Second
)

// scopeFunc is which groups a live page shows, as a status query: a change
// to any of them redraws the page.
type scopeFunc func(r *http.Request) (eciapi.DescribeContainerGroupStatusRequest, error)

// rowsFunc draws the rows of changed groups on a list page: a row each,
// with the page's data-id, or an empty one marked data-gone for a group the
// page no longer shows.
type rowsFunc func(r *http.Request, changed []eciapi.ContainerGroup) ([]byte, error)

// liveView is a live page: how it is drawn, what it shows, and (for a list)
// how its rows are drawn alone.
type liveView struct {
	page  pageFunc
	scope scopeFunc
	rows  rowsFunc // nil: the whole block is sent on a change
}

// live serves v: the page, with the cursor its stream starts from, or the
// stream.
func (c *Console) live(v liveView) signedInHandler {
	return func(w http.ResponseWriter, r *http.Request, id string, sess session) {
		if !wantsStream(r) {
			// The cursor is taken before the page is drawn: a change in
			// between is sent again, never lost.
			since, err := c.wallTime(r.Context())
			if err != nil {
				c.fail(w, sess, err)
				return
			}
			page, title, data, err := v.page(r)
			if err != nil {
				c.fail(w, sess, err)
				return
			}
			c.render(w, http.StatusOK, page, view{Title: title, CSRF: sess.csrf, Now: c.cfg.Clock.Now(), Since: cursor(since), Data: data})
			return
		}
		c.follow(w, r, id, sess, v)
	}
}

// follow is a live page's stream.
func (c *Console) follow(w http.ResponseWriter, r *http.Request, id string, sess session, v liveView) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	scope, err := v.scope(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	since, known := parseCursor(cmp.Or(r.Header.Get("Last-Event-ID"), r.URL.Query().Get("since")))
	clk := c.cfg.Clock
	lastWhole := clk.Now()
	var notBefore time.Time // pacing
	tick := clk.NewTicker(c.cfg.Poll)
	defer tick.Stop()
	for {
		// A session that ends (sign-out, expiry) ends its streams.
		if !c.sessions.alive(id) {
			return
		}
		if now := clk.Now(); !now.Before(notBefore) {
			began, drawing := now, time.Now()
			event, data, next, ok := c.draw(r, sess, v, scope, since, known && now.Sub(lastWhole) < c.cfg.Resync)
			kind := event
			if kind == "" {
				kind = "probe" // asked what changed: nothing, or no answer
			}
			c.drew(r, kind, time.Since(drawing))
			if ok {
				if event == "live" {
					lastWhole = began
				}
				since, known = next, true
				if data != nil {
					if err := writeEvent(w, event, cursor(since), data); err != nil {
						return
					}
					flusher.Flush()
				}
				notBefore = began.Add(dutyCycle * clk.Since(began))
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C():
		}
	}
}

// draw is one tick of a stream: what to send (nil: nothing changed) and the
// cursor after it; false if the service could not answer (the stream tries
// again at the next tick). patch says whether changes since the cursor may
// be sent, rather than the whole block.
func (c *Console) draw(r *http.Request, sess session, v liveView, scope eciapi.DescribeContainerGroupStatusRequest, since time.Time, patch bool) (string, []byte, time.Time, bool) {
	var wall time.Time // the cursor after this tick: taken before any drawing
	if patch {
		// A page drawn whole needs to know only whether anything changed.
		changed, at, inWindow, err := c.changedSince(r.Context(), scope, since, v.rows == nil)
		if err != nil {
			return "", nil, since, false
		}
		switch {
		case inWindow && len(changed) == 0:
			return "", nil, at, true
		case inWindow && v.rows != nil:
			rows, err := v.rows(r, changed)
			if err != nil {
				c.cfg.Log.Error("console: drawing rows", "err", err)
				return "", nil, since, false
			}
			return "rows", rows, at, true
		}
		wall = at
	} else {
		at, err := c.wallTime(r.Context())
		if err != nil {
			return "", nil, since, false
		}
		wall = at
	}
	page, title, data, err := v.page(r)
	if err != nil {
		return "", nil, since, false
	}
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, "live", view{Title: title, CSRF: sess.csrf, Now: c.cfg.Clock.Now(), Data: data}); err != nil {
		c.cfg.Log.Error("console: rendering live block", "page", page, "err", err)
		return "", nil, since, false
	}
	return "live", b.Bytes(), wall, true
}

// changedSince is the groups of scope that changed at or after since, the
// last changed first (only the last with anyOne), and the service's wall
// time of the answer: the next cursor. inWindow is false when since is older than the window asked
// about; the caller then draws the page whole.
func (c *Console) changedSince(ctx context.Context, scope eciapi.DescribeContainerGroupStatusRequest, since time.Time, anyOne bool) (changed []eciapi.ContainerGroup, wall time.Time, inWindow bool, err error) {
	req := scope
	window := changeWindow
	req.SinceSecond, req.Limit = &window, 200
	if anyOne {
		req.Limit = 1
	}
	for {
		resp, err := c.cfg.Service.DescribeContainerGroupStatus(ctx, req)
		if err != nil {
			return nil, time.Time{}, false, err
		}
		if wall.IsZero() {
			wall = resp.WallTime
			if wall.Sub(since) > changeWindowUse {
				return nil, wall, false, nil
			}
		}
		for _, d := range resp.Data {
			if d.ChangeTime.Before(since) {
				return changed, wall, true, nil
			}
			changed = append(changed, d.Group)
		}
		if resp.NextToken == "" || anyOne {
			return changed, wall, true, nil
		}
		req.NextToken = resp.NextToken
	}
}

// wallTime is the service's wall time now: a cursor from which every later
// change is seen.
func (c *Console) wallTime(ctx context.Context) (time.Time, error) {
	resp, err := c.cfg.Service.DescribeContainerGroupStatus(ctx, eciapi.DescribeContainerGroupStatusRequest{Limit: 1})
	return resp.WallTime, err
}

// A cursor is a wall time on the wire: Unix nanoseconds.
func cursor(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func parseCursor(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// writeEvent writes one server-sent event: each line of data on a data:
// line of its own, as the format asks.
func writeEvent(w http.ResponseWriter, event, id string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + event + "\nid: " + id + "\n")
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
