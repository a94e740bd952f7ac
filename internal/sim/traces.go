package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoteci/spoteci/internal/prices"
)

// NamedTrace is an availability trace and the name of its file.
type NamedTrace struct {
	Name string // the file name without .json, e.g. us-west-2a_k80_1
	*prices.Trace
}

// LoadTraces reads a trace file, or every *.json file of a folder in name
// order (the format of github.com/skypilot-org/spot-traces: 1 = spot
// available, 0 = not).
func LoadTraces(path string) ([]NamedTrace, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("loading traces: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.json"))
		if err != nil {
			return nil, fmt.Errorf("loading traces: %w", err)
		}
		slices.Sort(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("loading traces: no *.json file in %s", path)
		}
	}
	traces := make([]NamedTrace, 0, len(files))
	for _, f := range files {
		tr, err := prices.ReadTrace(f)
		if err != nil {
			return nil, err
		}
		traces = append(traces, NamedTrace{Name: strings.TrimSuffix(filepath.Base(f), ".json"), Trace: tr})
	}
	return traces, nil
}
