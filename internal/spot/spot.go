// Package spot turns what a user asks for (the eci-* pod annotations, or the
// fields of a CreateContainerGroup request) into a market bid and candidate
// specs. It is the one place those values are checked, so the API and the
// node refuse the same things with the same words.
package spot

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
)

// The pod annotations of SPEC section 2.
const (
	AnnotationStrategy        = "k8s.aliyun.com/eci-spot-strategy"
	AnnotationPriceLimit      = "k8s.aliyun.com/eci-spot-price-limit"
	AnnotationDuration        = "k8s.aliyun.com/eci-spot-duration"
	AnnotationFallback        = "k8s.aliyun.com/eci-spot-fallback"
	AnnotationUseSpecs        = "k8s.aliyun.com/eci-use-specs"
	AnnotationReleaseStrategy = "k8s.aliyun.com/eci-spot-release-strategy"
)

// Field names one input, by its API field and its pod annotation.
type Field struct{ API, Annotation string }

// The fields.
var (
	FieldStrategy        = Field{"SpotStrategy", AnnotationStrategy}
	FieldPriceLimit      = Field{"SpotPriceLimit", AnnotationPriceLimit}
	FieldDuration        = Field{"SpotDuration", AnnotationDuration}
	FieldFallback        = Field{"SpotFallback", AnnotationFallback}
	FieldSpecs           = Field{"InstanceType", AnnotationUseSpecs}
	FieldReleaseStrategy = Field{"SpotReleaseStrategy", AnnotationReleaseStrategy}
)

// FieldError is a value that cannot be honoured.
type FieldError struct {
	Field  Field
	Value  string
	Reason string
}

// Error names the API field; Annotation names the annotation instead.
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field.API, e.Value, e.Reason)
}

// Annotation says the error in the words of the pod annotation.
func (e *FieldError) Annotation() string {
	return fmt.Sprintf("invalid annotation %s=%q: %s", e.Field.Annotation, e.Value, e.Reason)
}

// Fields are the raw values; empty means absent.
type Fields struct {
	Strategy, PriceLimit, Duration, Fallback, Specs, ReleaseStrategy string
}

// FromAnnotations picks the fields out of pod annotations.
func FromAnnotations(a map[string]string) Fields {
	return Fields{
		Strategy:        a[AnnotationStrategy],
		PriceLimit:      a[AnnotationPriceLimit],
		Duration:        a[AnnotationDuration],
		Fallback:        a[AnnotationFallback],
		Specs:           a[AnnotationUseSpecs],
		ReleaseStrategy: a[AnnotationReleaseStrategy],
	}
}

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
func Parse(cat *catalog.Catalog, f Fields) (Request, error) {
	var r Request
	switch f.Strategy {
	case "", string(market.NoSpot):
		r.Bid.Strategy = market.NoSpot
	case string(market.SpotAsPriceGo), string(market.SpotWithPriceLimit):
		r.Bid.Strategy = market.Strategy(f.Strategy)
	default:
		return r, &FieldError{FieldStrategy, f.Strategy, "want SpotAsPriceGo or SpotWithPriceLimit"}
	}
	switch {
	case f.PriceLimit != "" && r.Bid.Strategy != market.SpotWithPriceLimit:
		return r, &FieldError{FieldPriceLimit, f.PriceLimit, "a price limit is only valid with SpotWithPriceLimit"}
	case f.PriceLimit == "" && r.Bid.Strategy == market.SpotWithPriceLimit:
		return r, &FieldError{FieldPriceLimit, f.PriceLimit, "SpotWithPriceLimit needs a price limit"}
	case f.PriceLimit != "":
		if !limitPattern.MatchString(f.PriceLimit) {
			return r, &FieldError{FieldPriceLimit, f.PriceLimit, "want a positive hourly price with at most 3 decimals, like 0.25"}
		}
		limit, err := strconv.ParseFloat(f.PriceLimit, 64)
		if err != nil {
			return r, &FieldError{FieldPriceLimit, f.PriceLimit, "the price limit is out of range"}
		}
		if limit <= 0 {
			return r, &FieldError{FieldPriceLimit, f.PriceLimit, "the price limit must be positive"}
		}
		r.Bid.Limit = limit
	}
	r.Bid.Protection = time.Hour
	if f.Duration != "" {
		h, err := strconv.Atoi(f.Duration)
		if err != nil || !wholeNumber.MatchString(f.Duration) || time.Duration(h) > market.MaxProtection/time.Hour {
			return r, &FieldError{FieldDuration, f.Duration, "want whole hours from 0 to 6 (0: no protection period)"}
		}
		r.Bid.Protection = time.Duration(h) * time.Hour
	}
	switch f.Fallback {
	case "", "false":
	case "true":
		r.Bid.Fallback = true
	default:
		return r, &FieldError{FieldFallback, f.Fallback, `want "true" or "false"`}
	}
	switch f.ReleaseStrategy {
	case "":
	case "api-evict":
		r.APIEvict = true
	default:
		return r, &FieldError{FieldReleaseStrategy, f.ReleaseStrategy, "want api-evict"}
	}
	if strings.TrimSpace(f.Specs) != "" {
		specs, err := cat.ParseSpecs(f.Specs)
		if err != nil {
			return r, &FieldError{FieldSpecs, f.Specs, err.Error()}
		}
		r.Specs = specs
	}
	return r, nil
}
