package prices

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
)

// Trace is a spot availability trace in the format of the "Can't Be Late"
// traces (github.com/skypilot-org/spot-traces): sample i covers
// [Start + i·Gap, Start + (i+1)·Gap); 1 means a spot instance could be
// launched, 0 that there was no stock. Replayed by a Book, a 0 empties the
// stock of the pools the trace covers. Past its end the trace starts over.
type Trace struct {
	Gap   time.Duration
	Data  []bool
	Start time.Time
	// Zone and Type restrict the pools the trace covers; empty covers all.
	Zone, Type string
}

type traceFile struct {
	Metadata struct {
		GapSeconds float64 `json:"gap_seconds"`
	} `json:"metadata"`
	Data []int `json:"data"`
}

// ParseTrace decodes a trace file's content.
func ParseTrace(data []byte) (*Trace, error) {
	var f traceFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decoding trace: %w", err)
	}
	if f.Metadata.GapSeconds <= 0 {
		return nil, fmt.Errorf("trace: metadata.gap_seconds must be positive, got %v", f.Metadata.GapSeconds)
	}
	if len(f.Data) == 0 {
		return nil, fmt.Errorf("trace: no data")
	}
	t := &Trace{Gap: time.Duration(f.Metadata.GapSeconds * float64(time.Second)), Data: make([]bool, len(f.Data))}
	for i, v := range f.Data {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("trace: data[%d] is %d, want 0 or 1", i, v)
		}
		t.Data[i] = v == 1
	}
	return t, nil
}

// ReadTrace reads a trace file.
func ReadTrace(path string) (*Trace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading trace: %w", err)
	}
	t, err := ParseTrace(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Covers reports whether the trace speaks for pool o.
func (t *Trace) Covers(o *catalog.Offering) bool {
	return (t.Zone == "" || t.Zone == o.Zone) && (t.Type == "" || t.Type == o.Type.Name)
}

// Available reports whether spot capacity was available in pool o at time t,
// and false for ok if the trace does not cover o.
func (t *Trace) Available(o *catalog.Offering, at time.Time) (available, ok bool) {
	if !t.Covers(o) {
		return false, false
	}
	i := int64(at.Sub(t.Start) / t.Gap)
	n := int64(len(t.Data))
	i = ((i % n) + n) % n
	return t.Data[i], true
}
