// Package spot turns what a user asks for (the spot fields, parsed by
// package annotation, and the size) into a market order: the bid and the
// candidate pools. It is the one place an ask is checked against what is
// sold, for the service and the simulator alike.
package spot

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// Specs checks the specs of s (eci-use-specs, the API's InstanceType)
// against what cat sells; none when the size comes from limits.
func Specs(cat *catalog.Catalog, s annotation.Spot) ([]catalog.Spec, error) {
	if strings.TrimSpace(s.Specs) == "" {
		return nil, nil
	}
	specs, err := cat.ParseSpecs(s.Specs)
	if err != nil {
		return nil, &annotation.FieldError{Field: annotation.FieldSpecs, Value: s.Specs, Reason: err.Error()}
	}
	return specs, nil
}

// DefaultCPU and DefaultMemoryGiB size an instance that names no specs and
// has no limits, as ECI does.
const (
	DefaultCPU       = 2
	DefaultMemoryGiB = 4
)

// SizeError is a size from limits that no instance has.
type SizeError struct {
	CPU, MemoryGiB float64
	Err            error
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("Cpu %v, Memory %v: %v", e.CPU, e.MemoryGiB, e.Err)
}

// NotSoldError says that no candidate of the specs is sold in the zones.
type NotSoldError struct {
	Specs []catalog.Spec
	Where string
}

func (e *NotSoldError) Error() string {
	names := make([]string, len(e.Specs))
	for i, s := range e.Specs {
		names[i] = s.String()
	}
	return fmt.Sprintf("no instance type for %s is sold in %s", strings.Join(names, ","), e.Where)
}

// Order is the one way an ask becomes a market order, for the service and
// the simulator alike: the bid is s's, the specs are checked (Specs); without specs the
// instance is sized from cpu and memory (both 0: ECI's default 2 vCPU
// 4 GiB; one of them 0, unset: the least, MinSpecCPU vCPU or 0.5 GiB, as
// memory under 0.5 GiB counts as 0.5); the candidate pools are those
// of zones, in the specs' order. where names the zones in errors.
func Order(cat *catalog.Catalog, s annotation.Spot, cpu, memGiB float64, zones []string, where string) (market.Order, error) {
	specs, err := Specs(cat, s)
	if err != nil {
		return market.Order{}, err
	}
	if len(specs) == 0 {
		if cpu < 0 || memGiB < 0 || math.IsNaN(cpu) || math.IsNaN(memGiB) {
			return market.Order{}, &SizeError{cpu, memGiB, errors.New("must not be negative")}
		}
		switch {
		case cpu == 0 && memGiB == 0:
			cpu, memGiB = DefaultCPU, DefaultMemoryGiB
		case cpu == 0:
			cpu = catalog.MinSpecCPU
		}
		spec, err := catalog.SpecFromLimits(cpu, max(memGiB, 0.5))
		if err != nil {
			return market.Order{}, &SizeError{cpu, memGiB, err}
		}
		specs = []catalog.Spec{spec}
	}
	candidates := cat.Candidates(specs, zones)
	if !slices.ContainsFunc(candidates, func(g []*catalog.Offering) bool { return len(g) > 0 }) {
		return market.Order{}, &NotSoldError{specs, where}
	}
	return market.Order{Bid: s.Bid, Candidates: candidates}, nil
}
