package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spoteci/spoteci/internal/atomicfile"
	"github.com/spoteci/spoteci/internal/runtime"
)

// The operations of the journal.
const (
	opStart   = "start"
	opStop    = "stop"
	opRestart = "restart"
	opRemove  = "remove"
)

// op is one thing asked of the runtime, at its time.
type op struct {
	Op       string            `json:"op"`
	At       time.Time         `json:"at"`
	ID       string            `json:"id"`
	Instance *runtime.Instance `json:"instance,omitempty"` // start
	IP       string            `json:"ip,omitempty"`       // start
}

// journal is the file of every op of the instances not removed, one JSON
// line each. An append is one write, so a kill leaves whole lines (and at
// worst a last one cut short, which replay skips); no fsync: a kill -9 of
// the process loses nothing the kernel has, and a lost machine loses its
// instances anyway.
type journal struct {
	f *os.File
}

// openJournal replays the journal at path through apply, then rewrites it
// without the instances removed since, and opens it for appends.
func openJournal(path string, apply func(op)) (*journal, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	var ops []op
	removed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var o op
		if json.Unmarshal(sc.Bytes(), &o) != nil {
			continue // a line a kill cut short
		}
		apply(o)
		ops = append(ops, o)
		if o.Op == opRemove {
			removed[o.ID] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	var kept []byte
	for _, o := range ops {
		if !removed[o.ID] {
			line, _ := json.Marshal(o)
			kept = append(append(kept, line...), '\n')
		}
	}
	if err := atomicfile.Write(path, kept, 0o600); err != nil {
		return nil, fmt.Errorf("compacting the journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the journal: %w", err)
	}
	return &journal{f: f}, nil
}

func (j *journal) append(o op) error {
	line, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }
