package logfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A log written past its cap rotates: the disk holds at most MaxFiles files
// of about MaxSize, the oldest output goes, and the current file reads back.
func TestRotatingCaps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := OpenRotating(path, 4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := Copy(w, strings.NewReader(fmt.Sprintf("line %04d\n", i))); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Errorf("files %v, want the current and 2 rotated", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Size() > 4096 {
			t.Errorf("%s holds %d bytes, over the cap 4096", f, st.Size())
		}
	}
	got := read(t, path, Options{Tail: -1})
	if !strings.HasSuffix(got, "line 0999\n") || strings.Contains(got, "line 0000") {
		t.Errorf("the current file does not end the log: %q", got[max(0, len(got)-40):])
	}
	older := read(t, path+".2", Options{Tail: -1})
	if !strings.HasPrefix(got, "line ") || older >= got {
		t.Errorf("rotated files out of order: .2 starts %q, current %q", older[:10], got[:10])
	}
}

// A reopened log goes on at its size: a restarted logger does not let the
// file grow past the cap.
func TestRotatingReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	write(t, path, strings.Repeat("x", 3000)+"\n")
	w, err := OpenRotating(path, 4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := Copy(w, strings.NewReader(strings.Repeat("y", 2000)+"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Errorf("a write that passes the cap of a reopened file did not rotate it: %v", err)
	}
}

// A followed log goes on across rotations: every line once, in order.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	w, err := OpenRotating(path, 2048, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
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
	var want strings.Builder
	for i := range 300 {
		line := fmt.Sprintf("line %03d\n", i)
		want.WriteString(line)
		if err := Copy(w, strings.NewReader(line)); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(followPoll / 4) // let the reader catch up now and then, mid-file
		}
	}
	time.Sleep(2 * followPoll)
	ended.Store(true)
	select {
	case s := <-got:
		if s != want.String() {
			t.Errorf("followed %d bytes across rotations, want %d; first difference near %q", len(s), want.Len(), firstDiff(s, want.String()))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not end")
	}
}

func firstDiff(a, b string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[max(0, i-10):min(len(a), i+10)]
		}
	}
	return ""
}
