// Package annotation names the eci-* pod annotations of SPEC section 2 and
// the API fields they become, holds their raw values, and says refusals in
// the words of either. It needs no catalog: a virtual node uses it without
// knowing what the backend sells (package spot checks that, in the service).
package annotation

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
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
	return fmt.Sprintf("invalid %s %s: %s", e.Field.API, Quote(e.Value), e.Reason)
}

// Annotation says the error in the words of the pod annotation.
func (e *FieldError) Annotation() string {
	return fmt.Sprintf("invalid annotation %s=%s: %s", e.Field.Annotation, Quote(e.Value), e.Reason)
}

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

// Fields are the raw values; empty means absent.
type Fields struct {
	Strategy, PriceLimit, Duration, Fallback, Specs, ReleaseStrategy string
}

// Local checks the two fields that need no catalog and that a virtual node
// turns into its request itself: fallback and the release strategy. The
// rest is the service's to check (Parse), against what it sells.
func Local(f Fields) (fallback, apiEvict bool, err error) {
	switch f.Fallback {
	case "", "false":
	case "true":
		fallback = true
	default:
		return false, false, &FieldError{Field: FieldFallback, Value: f.Fallback, Reason: `want "true" or "false"`}
	}
	switch f.ReleaseStrategy {
	case "":
	case "api-evict":
		apiEvict = true
	default:
		return false, false, &FieldError{Field: FieldReleaseStrategy, Value: f.ReleaseStrategy, Reason: "want api-evict"}
	}
	return fallback, apiEvict, nil
}

// AnnotationMessage says, in the words of its pod annotation, an API
// refusal of one of the fields (code InvalidParameter.<API field>, message
// as FieldError.Error writes it); false for any other refusal.
func AnnotationMessage(code, message string) (string, bool) {
	api, ok := strings.CutPrefix(code, "InvalidParameter.")
	if !ok {
		return "", false
	}
	for _, f := range []Field{FieldStrategy, FieldPriceLimit, FieldDuration, FieldFallback, FieldSpecs} {
		if rest, ok := strings.CutPrefix(message, "invalid "+f.API+" "); ok && f.API == api {
			return "invalid annotation " + f.Annotation + "=" + rest, true
		}
	}
	return "", false
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
