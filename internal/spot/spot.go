// Package spot turns what a user asks for (the eci-* pod annotations, or the
// fields of a CreateContainerGroup request; package annotation names them)
// into a market bid and candidate specs. It is the one place those values
// are checked against what is sold, so the API and the node refuse the same
// things with the same words.
package spot

import (
	"regexp"
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
		if limit <= 0 {
			return r, refuse(annotation.FieldPriceLimit, f.PriceLimit, "the price limit must be positive")
		}
		r.Bid.Limit = limit
	}
	r.Bid.Protection = time.Hour
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
