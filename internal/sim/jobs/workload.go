// Package jobs simulates Kubernetes-like Jobs on the spot market core: pods
// that bid with the ECI annotations, are reclaimed, lose the work since their
// last checkpoint and are replaced, as the Job controller replaces a pod that
// failed with DisruptionTarget. It answers what a workload would cost, how
// often it would be reclaimed and when it would finish, for each bid policy.
package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/spot"
)

// Workload is what a simulation runs: kinds of Jobs, where their pods may
// run, and the bid policies to compare. The YAML form uses the field names in
// the tags; durations are Go durations ("90m", "2h").
type Workload struct {
	// Start is the market time of the start (default: Epoch).
	Start time.Time `yaml:"start,omitempty" json:"start"`
	// Horizon ends the simulation; work not done by then is reported
	// unfinished (default: 30 days).
	Horizon time.Duration `yaml:"horizon,omitempty" json:"horizon"`
	// Region, or Zones, say where pods may run (default: cn-hangzhou).
	Region string    `yaml:"region,omitempty" json:"region,omitempty"`
	Zones  []string  `yaml:"zones,omitempty" json:"zones,omitempty"`
	Jobs   []JobSpec `yaml:"jobs" json:"jobs"`
	// Policies are bid policies to compare: each overrides the annotations
	// of every Job (an empty value removes one). None: the Jobs' own.
	Policies []Policy `yaml:"policies,omitempty" json:"policies,omitempty"`
}

// JobSpec is one kind of Job, repeated Count times.
type JobSpec struct {
	Name string `yaml:"name" json:"name"`
	// Count Jobs arrive, the first Arrival after the start, then one every
	// Interval.
	Count    int           `yaml:"count,omitempty" json:"count"`
	Arrival  time.Duration `yaml:"arrival,omitempty" json:"arrival"`
	Interval time.Duration `yaml:"interval,omitempty" json:"interval"`
	// Completions pods must succeed, at most Parallelism at a time.
	Completions int `yaml:"completions,omitempty" json:"completions"`
	Parallelism int `yaml:"parallelism,omitempty" json:"parallelism"`
	// Work is the work of one pod.
	Work time.Duration `yaml:"work" json:"work"`
	// RestartOverhead passes without progress each time a pod starts.
	RestartOverhead time.Duration `yaml:"restartOverhead,omitempty" json:"restartOverhead"`
	// CheckpointInterval of work, each taking CheckpointCost, saves the work
	// so far; 0: no checkpoints, a reclaimed pod starts over.
	CheckpointInterval time.Duration `yaml:"checkpointInterval,omitempty" json:"checkpointInterval"`
	CheckpointCost     time.Duration `yaml:"checkpointCost,omitempty" json:"checkpointCost"`
	// CheckpointAtNotice saves the work at SpotToBeReleased when the
	// checkpoint fits in the notice; the pod then waits for the release.
	CheckpointAtNotice bool `yaml:"checkpointAtNotice,omitempty" json:"checkpointAtNotice"`
	// Deadline after arrival, for the fraction of Jobs that meet it.
	Deadline time.Duration `yaml:"deadline,omitempty" json:"deadline"`
	// CPU and MemoryGiB are the pod's limits, sized as ECI does when there
	// is no eci-use-specs (default 2 vCPU, 4 GiB).
	CPU       float64 `yaml:"cpu,omitempty" json:"cpu"`
	MemoryGiB float64 `yaml:"memoryGiB,omitempty" json:"memoryGiB"`
	// Annotations of the pod template: the eci-* annotations.
	Annotations map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
}

// Policy is a named set of annotations that override the Jobs' own.
type Policy struct {
	Name        string            `yaml:"name" json:"name"`
	Annotations map[string]string `yaml:"annotations" json:"annotations"`
}

// Defaults of a Workload.
const (
	DefaultHorizon = 30 * 24 * time.Hour
	DefaultRegion  = "cn-hangzhou"
)

// Epoch is the default start of a simulation.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ReadWorkload reads a workload from a YAML file.
func ReadWorkload(path string) (*Workload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading workload: %w", err)
	}
	w, err := ParseWorkload(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// ParseWorkload decodes a workload in YAML; unknown fields are errors.
func ParseWorkload(data []byte) (*Workload, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var w Workload
	if err := dec.Decode(&w); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("workload: empty")
		}
		return nil, fmt.Errorf("decoding workload: %w", err)
	}
	return &w, nil
}

// normalize fills in defaults and checks the workload.
func (w *Workload) normalize() error {
	if w.Start.IsZero() {
		w.Start = Epoch
	}
	if w.Horizon == 0 {
		w.Horizon = DefaultHorizon
	}
	if w.Horizon < 0 {
		return fmt.Errorf("workload: negative horizon %v", w.Horizon)
	}
	if w.Region == "" && len(w.Zones) == 0 {
		w.Region = DefaultRegion
	}
	if len(w.Jobs) == 0 {
		return errors.New("workload: no jobs")
	}
	names := map[string]bool{}
	for i := range w.Jobs {
		j := &w.Jobs[i]
		if j.Name == "" {
			j.Name = fmt.Sprintf("job%d", i)
		}
		if names[j.Name] {
			return fmt.Errorf("workload: job name %q used twice", j.Name)
		}
		names[j.Name] = true
		if j.Count == 0 {
			j.Count = 1
		}
		if j.Completions == 0 {
			j.Completions = 1
		}
		if j.Parallelism == 0 {
			j.Parallelism = j.Completions
		}
		if j.CPU == 0 && j.MemoryGiB == 0 {
			j.CPU, j.MemoryGiB = spot.DefaultCPU, spot.DefaultMemoryGiB
		}
		switch {
		case j.Count < 0 || j.Completions < 0 || j.Parallelism < 0:
			return fmt.Errorf("job %s: count, completions and parallelism must not be negative", j.Name)
		case j.Work <= 0:
			return fmt.Errorf("job %s: work %v must be positive", j.Name, j.Work)
		case j.Arrival < 0 || j.Interval < 0 || j.RestartOverhead < 0 || j.CheckpointInterval < 0 || j.CheckpointCost < 0 || j.Deadline < 0:
			return fmt.Errorf("job %s: durations must not be negative", j.Name)
		}
	}
	seen := map[string]bool{}
	for i, p := range w.Policies {
		if p.Name == "" {
			return fmt.Errorf("workload: policy %d has no name", i)
		}
		if seen[p.Name] {
			return fmt.Errorf("workload: policy name %q used twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// kind is a JobSpec compiled for one policy: its order to the market.
type kind struct {
	spec       *JobSpec
	bid        market.Bid
	candidates [][]*catalog.Offering
}

// compile turns the Jobs into market orders under policy p (nil: the Jobs'
// own annotations) with spot.Order, as the ECI service does: the annotations
// checked, eci-use-specs or the pod's limits giving the candidate pools.
func (w *Workload) compile(cat *catalog.Catalog, p *Policy) ([]kind, error) {
	zones := w.Zones
	if len(zones) == 0 {
		zones = cat.Zones(w.Region)
		if len(zones) == 0 {
			return nil, fmt.Errorf("workload: unknown region %q", w.Region)
		}
	}
	kinds := make([]kind, len(w.Jobs))
	for i := range w.Jobs {
		j := &w.Jobs[i]
		ann := maps.Clone(j.Annotations)
		if ann == nil {
			ann = map[string]string{}
		}
		if p != nil {
			for k, v := range p.Annotations {
				ann[k] = v
			}
		}
		sp, err := annotation.ParseAnnotations(ann)
		var o market.Order
		if err == nil {
			o, err = spot.Order(cat, sp, j.CPU, j.MemoryGiB, zones, strings.Join(zones, ","))
		}
		if err != nil {
			var fe *annotation.FieldError
			if errors.As(err, &fe) {
				err = errors.New(fe.Annotation())
			}
			return nil, fmt.Errorf("job %s%s: %w", j.Name, policySuffix(p), err)
		}
		kinds[i] = kind{spec: j, bid: o.Bid, candidates: o.Candidates}
	}
	return kinds, nil
}

func policySuffix(p *Policy) string {
	if p == nil {
		return ""
	}
	return " (policy " + p.Name + ")"
}
