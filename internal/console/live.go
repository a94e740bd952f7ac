package console

import (
	"bytes"
	"net/http"
	"strings"
)

// live serves a page that follows the service: a browser's EventSource on
// the same URL (Accept: text/event-stream) gets the page's "live" block
// again each time it changes, and static/console.js puts it in place. One
// URL for the page and its stream keeps the filters in one place: the query.
func (c *Console) live(f pageFunc) signedInHandler {
	page := c.page(f)
	return func(w http.ResponseWriter, r *http.Request, id string, sess session) {
		if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			page(w, r, id, sess)
			return
		}
		flusher, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "streaming unsupported", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		flusher.Flush()
		tick := c.cfg.Clock.NewTicker(c.cfg.Poll)
		defer tick.Stop()
		var last []byte
		for {
			// A session that ends (sign-out, expiry) ends its streams.
			if !c.sessions.alive(id) {
				return
			}
			if block, ok := c.liveBlock(r, f, sess); ok && !bytes.Equal(block, last) {
				last = block
				if err := writeEvent(w, block); err != nil {
					return
				}
				flusher.Flush()
			}
			select {
			case <-r.Context().Done():
				return
			case <-tick.C():
			}
		}
	}
}

// liveBlock renders the "live" block of f's page now; false if it could
// not (the stream then waits for the next tick).
func (c *Console) liveBlock(r *http.Request, f pageFunc, sess session) ([]byte, bool) {
	page, title, data, err := f(r)
	if err != nil {
		return nil, false
	}
	var b bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&b, "live", view{Title: title, CSRF: sess.csrf, Now: c.cfg.Clock.Now(), Data: data}); err != nil {
		c.cfg.Log.Error("console: rendering live block", "page", page, "err", err)
		return nil, false
	}
	return b.Bytes(), true
}

// writeEvent writes one server-sent event: each line of data on a data:
// line of its own, as the format asks.
func writeEvent(w http.ResponseWriter, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: live\n")
	for _, line := range bytes.Split(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
