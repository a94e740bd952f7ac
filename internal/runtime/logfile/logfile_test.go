package logfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendRecordsDecode(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	var file []byte
	for _, chunk := range []string{"one\ntw", "o\n", "thr", "ee\nfour"} {
		file = AppendRecords(file, at, []byte(chunk))
	}
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "one\ntwo\nthree\nfour"},
		{Options{Timestamps: true}, "2024-05-06T07:08:09.123456789Z one\n2024-05-06T07:08:09.123456789Z two\n" +
			"2024-05-06T07:08:09.123456789Z three\n2024-05-06T07:08:09.123456789Z four"},
		{Options{SinceTime: at.Add(time.Nanosecond)}, ""},
		{Options{SinceTime: at}, "one\ntwo\nthree\nfour"},
	} {
		dec := decoder{opts: tc.opts}
		var out []byte
		for _, line := range strings.SplitAfter(string(file), "\n") {
			if line != "" {
				out = dec.decode(out, []byte(strings.TrimSuffix(line, "\n")))
			}
		}
		if string(out) != tc.want {
			t.Errorf("decode %+v = %q, want %q", tc.opts, out, tc.want)
		}
	}
}

// write appends output to the log at path as the logger would.
func write(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Copy(f, strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string, opts Options) string {
	t.Helper()
	r, err := Open(path, opts, func() bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTailSinceTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if got := read(t, path, Options{Tail: -1}); got != "" {
		t.Errorf("missing file = %q, want empty", got)
	}
	write(t, path, "line1\nline2\nline3\nline4\nline5\npart")
	if got, want := read(t, path, Options{Tail: 2}), "line5\npart"; got != want {
		t.Errorf("Tail 2 = %q, want %q", got, want)
	}
	if got := read(t, path, Options{Tail: 0}); got != "" {
		t.Errorf("Tail 0 = %q, want nothing", got)
	}
	if got := read(t, path, Options{Tail: -1, SinceTime: time.Now().Add(time.Hour)}); got != "" {
		t.Errorf("SinceTime in the future = %q, want nothing", got)
	}
	stamped := read(t, path, Options{Tail: 1, Timestamps: true})
	ts, rest, _ := strings.Cut(stamped, " ")
	if when, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(when) > time.Minute || rest != "part" {
		t.Errorf("Timestamps = %q (%v)", stamped, err)
	}
	long := strings.Repeat("a", 200000)
	write(t, path, "ial\n"+long+"\nend\n")
	if got, want := read(t, path, Options{Tail: 3}), "partial\n"+long+"\nend\n"; got != want {
		t.Errorf("Tail 3 = %d bytes, want %d", len(got), len(want))
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var ended atomic.Bool
	r, err := Open(path, Options{Tail: -1, Follow: true}, ended.Load)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	write(t, path, "one\ntw")
	time.Sleep(2 * followPoll)
	write(t, path, "o\n")
	ended.Store(true)
	select {
	case s := <-got:
		if s != "one\ntwo\n" {
			t.Errorf("Follow = %q, want %q", s, "one\ntwo\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not end once the container ended")
	}
}

func TestFollowClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	write(t, path, "tick 1\ntick 2\n")
	r, err := Open(path, Options{Tail: -1, Follow: true}, func() bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(r)
	for _, want := range []string{"tick 1\n", "tick 2\n"} {
		if line, err := br.ReadString('\n'); err != nil || line != want {
			t.Fatalf("line = %q, %v; want %q", line, err, want)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Error("read after Close succeeded")
	}
}
