// Package annotation holds the spot fields of an ask as one typed value,
// Spot, and the one set of rules that makes it. It names the eci-* pod
// annotations of SPEC section 2 and the OpenAPI parameters they become, and
// parses each entry once: a pod's annotations in the virtual node
// (ParseAnnotations), a request's parameters in the service
// (ParseRequest). A refusal is a *FieldError: the ECI code, the field and
// the value, said in the words of either. It needs no catalog: a virtual
// node uses it without knowing what the backend sells (package spot checks
// the specs against that, in the service).
package annotation

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

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

var fields = []Field{FieldStrategy, FieldPriceLimit, FieldDuration, FieldFallback, FieldSpecs, FieldReleaseStrategy}

// FieldByAPI is the field of an API name ("SpotPriceLimit").
func FieldByAPI(api string) (Field, bool) {
	for _, f := range fields {
		if f.API == api {
			return f, true
		}
	}
	return Field{}, false
}

// FieldError is a value that cannot be honoured.
type FieldError struct {
	Field  Field
	Value  string
	Reason string
}

// Error names the API field; Annotation names the annotation instead.
func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", e.Field.API, Quote(e.Value), e.Reason)
}

// Annotation says the error in the words of the pod annotation.
func (e *FieldError) Annotation() string {
	return fmt.Sprintf("invalid annotation %s=%s: %s", e.Field.Annotation, Quote(e.Value), e.Reason)
}

// Code is the ECI error code of the refusal: InvalidParameter.<API field>.
func (e *FieldError) Code() string { return "InvalidParameter." + e.Field.API }

// QuoteLimit is how much of a refused value a message quotes.
const QuoteLimit = 64

// Quote quotes a value for a message, its first QuoteLimit bytes and its
// length when longer: a refusal names what it refused without copying an
// oversized input into events and statuses (control characters quote to
// four bytes each).
func Quote(v string) string {
	if len(v) <= QuoteLimit {
		return strconv.Quote(v)
	}
	cut := QuoteLimit
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(v[:cut]), len(v))
}

// Spot is what one ask says of spot, parsed: the market's bid itself, the
// specs and the release strategy. It is made once where the ask enters and
// carried as it is; only the wire between node and service writes it out
// as text again.
type Spot struct {
	Bid market.Bid
	// Specs is eci-use-specs (the API's InstanceType) as written; empty
	// when the size comes from limits. Only the service knows what is
	// sold, and reads it (spot.Order).
	Specs string
	// APIEvict asks the node to evict the pod through the Eviction API at
	// the release notice (a pod's annotation; the API has no such field).
	APIEvict bool
}

// ParseAnnotations is the entry of a pod: its eci-* annotations, checked by
// the rules of SPEC section 2 (the specs aside); other annotations are
// ignored. The node acts on fallback and the release strategy itself, so
// those are checked first.
func ParseAnnotations(a map[string]string) (Spot, error) {
	var s Spot
	var err error
	if s.Bid.Fallback, err = parseFallback(a[AnnotationFallback]); err != nil {
		return s, err
	}
	if s.APIEvict, err = parseReleaseStrategy(a[AnnotationReleaseStrategy]); err != nil {
		return s, err
	}
	var duration *string
	if d := a[AnnotationDuration]; d != "" {
		duration = &d
	}
	if s.Bid, err = parseBid(a[AnnotationStrategy], a[AnnotationPriceLimit], duration, s.Bid.Fallback); err != nil {
		return s, err
	}
	s.Specs = a[AnnotationUseSpecs]
	return s, nil
}

// ParseRequest is the entry of an OpenAPI request: its SpotStrategy,
// SpotPriceLimit, SpotDuration (nil: not sent), SpotFallback and
// InstanceType parameters, checked by the same rules.
func ParseRequest(strategy, limit string, duration *string, fallback bool, instanceType string) (Spot, error) {
	if duration != nil && *duration == "" {
		// Sent but empty is a mistake, not the default; the refusal has
		// always quoted it as "\"\"".
		empty := `""`
		duration = &empty
	}
	bid, err := parseBid(strategy, limit, duration, fallback)
	return Spot{Bid: bid, Specs: instanceType}, err
}

var (
	// At most 3 decimals; trailing zeros do not count (the SDK writes 0.250000).
	limitPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,3}0*)?$`)
	wholeNumber  = regexp.MustCompile(`^[0-9]+$`)
)

// parseBid holds the rules of the strategy, the price limit and the
// protection period (duration nil: not given, one hour).
func parseBid(strategy, limit string, duration *string, fallback bool) (market.Bid, error) {
	b := market.Bid{Protection: time.Hour, Fallback: fallback}
	switch strategy {
	case "", string(market.NoSpot):
		b.Strategy = market.NoSpot
	case string(market.SpotAsPriceGo), string(market.SpotWithPriceLimit):
		b.Strategy = market.Strategy(strategy)
	default:
		return b, refuse(FieldStrategy, strategy, "want SpotAsPriceGo or SpotWithPriceLimit")
	}
	switch {
	case limit != "" && b.Strategy != market.SpotWithPriceLimit:
		return b, refuse(FieldPriceLimit, limit, "a price limit is only valid with SpotWithPriceLimit")
	case limit == "" && b.Strategy == market.SpotWithPriceLimit:
		return b, refuse(FieldPriceLimit, limit, "SpotWithPriceLimit needs a price limit")
	case limit != "":
		if !limitPattern.MatchString(limit) {
			return b, refuse(FieldPriceLimit, limit, "want a positive hourly price with at most 3 decimals, like 0.25")
		}
		l, err := strconv.ParseFloat(limit, 64)
		if err != nil {
			return b, refuse(FieldPriceLimit, limit, "the price limit is out of range")
		}
		if !catalog.ValidPrice(l) {
			return b, refuse(FieldPriceLimit, limit, fmt.Sprintf("want a positive hourly price up to %d", catalog.MaxPrice))
		}
		b.Limit = l
	}
	if duration == nil {
		return b, nil
	}
	d := *duration
	if b.Strategy == market.NoSpot {
		return b, refuse(FieldDuration, d, "a protection period is only valid with a spot strategy")
	}
	h, err := strconv.Atoi(d)
	if err != nil || !wholeNumber.MatchString(d) || time.Duration(h) > market.MaxProtection/time.Hour {
		return b, refuse(FieldDuration, d, "want whole hours from 0 to 6 (0: no protection period)")
	}
	b.Protection = time.Duration(h) * time.Hour
	return b, nil
}

func parseFallback(v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, refuse(FieldFallback, v, `want "true" or "false"`)
}

func parseReleaseStrategy(v string) (apiEvict bool, err error) {
	switch v {
	case "":
		return false, nil
	case "api-evict":
		return true, nil
	}
	return false, refuse(FieldReleaseStrategy, v, "want api-evict")
}

// refuse is the error for value of field, with why.
func refuse(field Field, value, why string) *FieldError {
	return &FieldError{Field: field, Value: value, Reason: why}
}
