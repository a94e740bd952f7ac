// Package spot turns what a user asks for (the eci-* pod annotations, or the
// fields of a CreateContainerGroup request; package annotation names them)
// into a market bid and candidate specs. It is the one place those values
// are checked against what is sold, so the API and the node refuse the same
// things with the same words.
package spot

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// Request is a checked ask.
type Request struct {
	Bid market.Bid
	// Specs from eci-use-specs; empty when the size comes from limits.
	Specs []catalog.Spec
	// APIEvict asks the node to evict the pod through the Eviction API at the
	// release notice.
	APIEvict bool
}

var (
	// At most 3 decimals; trailing zeros do not count (the SDK writes 0.250000).
	limitPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,3}0*)?$`)
	wholeNumber  = regexp.MustCompile(`^[0-9]+$`)
)

// Parse checks the fields against the rules of SPEC section 2.
func Parse(cat *catalog.Catalog, f annotation.Fields) (Request, error) {
	var r Request
	switch f.Strategy {
	case "", string(market.NoSpot):
		r.Bid.Strategy = market.NoSpot
	case string(market.SpotAsPriceGo), string(market.SpotWithPriceLimit):
		r.Bid.Strategy = market.Strategy(f.Strategy)
	default:
		return r, refuse(annotation.FieldStrategy, f.Strategy, "want SpotAsPriceGo or SpotWithPriceLimit")
	}
	switch {
	case f.PriceLimit != "" && r.Bid.Strategy != market.SpotWithPriceLimit:
		return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, "a price limit is only valid with SpotWithPriceLimit")
	case f.PriceLimit == "" && r.Bid.Strategy == market.SpotWithPriceLimit:
		return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, "SpotWithPriceLimit needs a price limit")
	case f.PriceLimit != "":
		if !limitPattern.MatchString(f.PriceLimit) {
			return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, "want a positive hourly price with at most 3 decimals, like 0.25")
		}
		limit, err := strconv.ParseFloat(f.PriceLimit, 64)
		if err != nil {
			return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, "the price limit is out of range")
		}
		if !catalog.ValidPrice(limit) {
			return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, fmt.Sprintf("want a positive hourly price up to %d", catalog.MaxPrice))
		}
		r.Bid.Limit = limit
	}
	r.Bid.Protection = time.Hour
	if f.Duration != "" && r.Bid.Strategy == market.NoSpot {
		return r, refuse(annotation.FieldDuration, f.Duration, "a protection period is only valid with a spot strategy")
	}
	if f.Duration != "" {
		h, err := strconv.Atoi(f.Duration)
		if err != nil || !wholeNumber.MatchString(f.Duration) || time.Duration(h) > market.MaxProtection/time.Hour {
			return r, refuse(annotation.FieldDuration, f.Duration, "want whole hours from 0 to 6 (0: no protection period)")
		}
		r.Bid.Protection = time.Duration(h) * time.Hour
	}
	var err error
	if r.Bid.Fallback, r.APIEvict, err = annotation.Local(f); err != nil {
		return r, err
	}
	if strings.TrimSpace(f.Specs) != "" {
		specs, err := cat.ParseSpecs(f.Specs)
		if err != nil {
			return r, refuse(annotation.FieldSpecs, f.Specs, err.Error())
		}
		r.Specs = specs
	}
	return r, nil
}

// refuse is the error for value of field, with why.
func refuse(field annotation.Field, value, why string) *annotation.FieldError {
	return &annotation.FieldError{Field: field, Value: value, Reason: why}
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
// the simulator alike: the fields are checked (Parse); without specs the
// instance is sized from cpu and memory (both 0: ECI's default 2 vCPU
// 4 GiB; one of them 0, unset: the least, MinSpecCPU vCPU or 0.5 GiB, as
// memory under 0.5 GiB counts as 0.5); the candidate pools are those
// of zones, in the specs' order. where names the zones in errors.
func Order(cat *catalog.Catalog, f annotation.Fields, cpu, memGiB float64, zones []string, where string) (market.Order, Request, error) {
	req, err := Parse(cat, f)
	if err != nil {
		return market.Order{}, req, err
	}
	specs := req.Specs
	if len(specs) == 0 {
		if cpu < 0 || memGiB < 0 || math.IsNaN(cpu) || math.IsNaN(memGiB) {
			return market.Order{}, req, &SizeError{cpu, memGiB, errors.New("must not be negative")}
		}
		switch {
		case cpu == 0 && memGiB == 0:
			cpu, memGiB = DefaultCPU, DefaultMemoryGiB
		case cpu == 0:
			cpu = catalog.MinSpecCPU
		}
		spec, err := catalog.SpecFromLimits(cpu, max(memGiB, 0.5))
		if err != nil {
			return market.Order{}, req, &SizeError{cpu, memGiB, err}
		}
		specs = []catalog.Spec{spec}
	}
	candidates := cat.Candidates(specs, zones)
	if !slices.ContainsFunc(candidates, func(g []*catalog.Offering) bool { return len(g) > 0 }) {
		return market.Order{}, req, &NotSoldError{specs, where}
	}
	return market.Order{Bid: req.Bid, Candidates: candidates}, req, nil
}
