package console

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

const (
	// logTail is how many lines of a log a panel starts with.
	logTail = 500
	// downloadTail is how many lines a log download holds, and
	// maxDownload how many bytes at most.
	downloadTail = 10000
	maxDownload  = 64 << 20
	// maxLogLine cuts longer lines: a panel is for reading, and a line
	// without an end must not grow the server's buffer without bound.
	maxLogLine = 16 << 10
)

// logs serves a container's log: as server-sent events that follow it when
// the browser asks for a stream (Accept: text/event-stream), otherwise as a
// text download of its last lines. The lines are text, sent as they are:
// static/logs.js inserts them as text, never as HTML.
func (c *Console) logs(w http.ResponseWriter, r *http.Request, sid string, sess session) {
	id, name := r.PathValue("id"), r.URL.Query().Get("container")
	req := eciapi.DescribeContainerLogRequest{ContainerGroupId: id, ContainerName: name}
	if !wantsStream(r) {
		req.Tail = downloadTail
		rc, name, err := c.cfg.Service.OpenLog(req)
		if err != nil {
			c.fail(w, sess, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.log"`, id, name))
		if _, err := io.Copy(w, io.LimitReader(rc, maxDownload)); err != nil {
			c.cfg.Log.Debug("console: log download cut short", "group", id, "container", name, "err", err)
		}
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// The stream ends with the request or with the session (sign-out,
	// expiry), whichever is first.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		tick := c.cfg.Clock.NewTicker(c.cfg.Poll)
		defer tick.Stop()
		for c.sessions.alive(sid) {
			select {
			case <-ctx.Done():
				return
			case <-tick.C():
			}
		}
		cancel()
	}()
	follow := &logFollower{svc: c.cfg.Service, req: req, wait: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.cfg.Clock.After(c.cfg.Poll):
			return nil
		}
	}}
	rc, err := follow.next(ctx)
	if err != nil {
		http.Error(w, err.Error(), statusOf(err))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	for rc != nil {
		err = sendLines(ctx, w, flusher, rc)
		rc.Close()
		if err != nil || ctx.Err() != nil {
			return
		}
		if rc, err = follow.next(ctx); err != nil {
			c.cfg.Log.Debug("console: following a log", "group", id, "container", name, "err", err)
			return
		}
	}
	io.WriteString(w, "event: end\ndata: the container has ended\n\n")
	flusher.Flush()
}

// logFollower opens a container's log run after run: a follow of the
// runtime ends with the run, and a container that restarts has a new run
// (and a new log) to follow, as a crash-looping container's panel should.
type logFollower struct {
	svc      Service
	wait     func(context.Context) error // a poll's pause
	req      eciapi.DescribeContainerLogRequest
	restarts int // of the run being followed
	opened   bool
}

// next opens the log of the run after the one followed (at first, the last
// logTail lines of the current one); nil when the container has ended for
// good.
func (f *logFollower) next(ctx context.Context) (io.ReadCloser, error) {
	for {
		resp, err := f.svc.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: []string{f.req.ContainerGroupId}})
		if err != nil {
			return nil, err
		}
		if len(resp.ContainerGroups) == 0 {
			return nil, &inputError{fmt.Sprintf("no instance %q", f.req.ContainerGroupId)}
		}
		restarts, state := 0, ""
		for _, ct := range resp.ContainerGroups[0].Containers {
			if ct.Name == f.req.ContainerName || f.req.ContainerName == "" && len(resp.ContainerGroups[0].Containers) == 1 {
				restarts, state = ct.RestartCount, ct.CurrentState.State
			}
		}
		if !f.opened || restarts != f.restarts {
			req := f.req
			req.Follow = true
			if !f.opened {
				req.Tail = logTail
			}
			rc, _, err := f.svc.OpenLog(req) // refuses an unknown container, naming it
			if err != nil {
				return nil, err
			}
			f.opened, f.restarts = true, restarts
			return rc, nil
		}
		if state == "Terminated" {
			return nil, nil // the run followed was the last
		}
		// The run ended, but the service has not seen it yet.
		if err := f.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// sendLines sends each line of rc as an event's data until rc ends (or
// ctx does): a line longer than maxLogLine is cut there.
func sendLines(ctx context.Context, w io.Writer, flusher http.Flusher, rc io.ReadCloser) error {
	stop := context.AfterFunc(ctx, func() { rc.Close() }) // unblocks a Read waiting for more
	defer stop()
	br := bufio.NewReaderSize(rc, maxLogLine)
	var out bytes.Buffer
	dropping := false // the rest of a line that was cut
	for {
		line, more, err := br.ReadLine()
		if err == nil && !dropping {
			out.WriteString("data: ")
			out.Write(bytes.ReplaceAll(line, []byte("\r"), nil))
			out.WriteString("\n\n")
		}
		if err == nil {
			dropping = more
		}
		// Send what was read once nothing more is at hand, not line by line.
		if out.Len() > 0 && (br.Buffered() == 0 || err != nil) {
			if _, werr := w.Write(out.Bytes()); werr != nil {
				return werr
			}
			flusher.Flush()
			out.Reset()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) && ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
