package spot_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/spot"
)

// fields are the six annotations as a pod writes them; empty is absent.
type fields struct {
	Strategy, PriceLimit, Duration, Fallback, Specs, ReleaseStrategy string
}

func (f fields) annotations() map[string]string {
	a := map[string]string{}
	for k, v := range map[string]string{
		annotation.AnnotationStrategy: f.Strategy, annotation.AnnotationPriceLimit: f.PriceLimit,
		annotation.AnnotationDuration: f.Duration, annotation.AnnotationFallback: f.Fallback,
		annotation.AnnotationUseSpecs: f.Specs, annotation.AnnotationReleaseStrategy: f.ReleaseStrategy,
	} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

// request is a whole ask, checked: the spot fields of a pod and its specs
// against what is sold.
type request struct {
	Bid      market.Bid
	Specs    []catalog.Spec
	APIEvict bool
}

// parse checks f as the service does a pod's ask, through the node's entry
// (annotation.ParseAnnotations) and spot.Specs.
func parse(cat *catalog.Catalog, f fields) (request, error) {
	sp, err := annotation.ParseAnnotations(f.annotations())
	if err != nil {
		return request{}, err
	}
	specs, err := spot.Specs(cat, sp)
	if err != nil {
		return request{}, err
	}
	return request{Bid: sp.Bid, Specs: specs, APIEvict: sp.APIEvict}, nil
}

// bidOption is one valid way to write the strategy and the price limit.
type bidOption struct {
	strategy, limit string
	want            market.Strategy
	wantLimit       float64
}

var bidOptions = []bidOption{
	{"", "", market.NoSpot, 0},
	{"SpotAsPriceGo", "", market.SpotAsPriceGo, 0},
	{"SpotWithPriceLimit", "0.25", market.SpotWithPriceLimit, 0.25},
	{"SpotWithPriceLimit", "1", market.SpotWithPriceLimit, 1},
	{"SpotWithPriceLimit", "0.125", market.SpotWithPriceLimit, 0.125},
}

var durationOptions = []struct {
	value string
	want  time.Duration
}{
	{"", time.Hour},
	{"0", 0},
	{"6", 6 * time.Hour},
}

var fallbackOptions = []struct {
	value string
	want  bool
}{
	{"", false},
	{"false", false},
	{"true", true},
}

var specsOptions = []struct {
	value string
	want  []catalog.Spec
}{
	{"", nil},
	{"ecs.c5.large,2-4Gi", []catalog.Spec{{Type: "ecs.c5.large"}, {CPU: 2, MemoryGiB: 4}}},
}

var releaseOptions = []struct {
	value string
	want  bool
}{
	{"", false},
	{"api-evict", true},
}

type validCase struct {
	name   string
	fields fields
	want   request
}

// validCases is every combination of the valid values of SPEC section 2; a
// protection period goes with a spot strategy only.
func validCases() []validCase {
	var cases []validCase
	for _, b := range bidOptions {
		for _, d := range durationOptions {
			if b.want == market.NoSpot && d.value != "" {
				continue
			}
			for _, fb := range fallbackOptions {
				for _, sp := range specsOptions {
					for _, rel := range releaseOptions {
						f := fields{
							Strategy:        b.strategy,
							PriceLimit:      b.limit,
							Duration:        d.value,
							Fallback:        fb.value,
							Specs:           sp.value,
							ReleaseStrategy: rel.value,
						}
						cases = append(cases, validCase{
							name:   fmt.Sprintf("%+v", f),
							fields: f,
							want: request{
								Bid: market.Bid{
									Strategy:   b.want,
									Limit:      b.wantLimit,
									Protection: d.want,
									Fallback:   fb.want,
								},
								Specs:    sp.want,
								APIEvict: rel.want,
							},
						})
					}
				}
			}
		}
	}
	return cases
}

func TestParseValid(t *testing.T) {
	cat := catalog.Default()
	cases := validCases()
	if want := (4*3 + 1) * 2 * 3 * 2; len(cases) != want {
		t.Fatalf("%d valid cases, want %d", len(cases), want)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(cat, tc.fields)
			if err != nil {
				t.Fatalf("Parse(%+v) = error %v, want success", tc.fields, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%+v) =\n  %+v\nwant\n  %+v", tc.fields, got, tc.want)
			}
			if err := got.Bid.Validate(); err != nil {
				t.Errorf("Parse(%+v).Bid.Validate() = %v", tc.fields, err)
			}
		})
	}
}

type invalidCase struct {
	name   string
	fields fields
	field  annotation.Field
	value  string
}

// base is a valid set of fields that each invalid case spoils in one place.
var base = fields{
	Strategy:        "SpotWithPriceLimit",
	PriceLimit:      "0.25",
	Duration:        "1",
	Fallback:        "false",
	Specs:           "ecs.c5.large,2-4Gi",
	ReleaseStrategy: "api-evict",
}

func with(change func(*fields)) fields {
	f := base
	change(&f)
	return f
}

var invalidCases = []invalidCase{
	{"unknown strategy", with(func(f *fields) { f.Strategy = "Cheapest"; f.PriceLimit = "" }),
		annotation.FieldStrategy, "Cheapest"},
	{"unknown strategy with limit", with(func(f *fields) { f.Strategy = "Cheapest" }),
		annotation.FieldStrategy, "Cheapest"},
	{"limit without strategy", with(func(f *fields) { f.Strategy = "" }),
		annotation.FieldPriceLimit, "0.25"},
	{"limit with SpotAsPriceGo", with(func(f *fields) { f.Strategy = "SpotAsPriceGo" }),
		annotation.FieldPriceLimit, "0.25"},
	{"SpotWithPriceLimit without limit", with(func(f *fields) { f.PriceLimit = "" }),
		annotation.FieldPriceLimit, ""},
	{"limit with 4 decimals", with(func(f *fields) { f.PriceLimit = "0.2555" }),
		annotation.FieldPriceLimit, "0.2555"},
	{"negative limit", with(func(f *fields) { f.PriceLimit = "-0.1" }),
		annotation.FieldPriceLimit, "-0.1"},
	{"zero limit", with(func(f *fields) { f.PriceLimit = "0" }),
		annotation.FieldPriceLimit, "0"},
	{"non-numeric limit", with(func(f *fields) { f.PriceLimit = "abc" }),
		annotation.FieldPriceLimit, "abc"},
	{"exponent limit", with(func(f *fields) { f.PriceLimit = "1e3" }),
		annotation.FieldPriceLimit, "1e3"},
	{"negative duration", with(func(f *fields) { f.Duration = "-1" }),
		annotation.FieldDuration, "-1"},
	{"fractional duration", with(func(f *fields) { f.Duration = "1.5" }),
		annotation.FieldDuration, "1.5"},
	{"duration over 6", with(func(f *fields) { f.Duration = "7" }),
		annotation.FieldDuration, "7"},
	{"non-numeric duration", with(func(f *fields) { f.Duration = "x" }),
		annotation.FieldDuration, "x"},
	{"fallback yes", with(func(f *fields) { f.Fallback = "yes" }),
		annotation.FieldFallback, "yes"},
	{"release strategy delete", with(func(f *fields) { f.ReleaseStrategy = "delete" }),
		annotation.FieldReleaseStrategy, "delete"},
	{"unknown type", with(func(f *fields) { f.Specs = "ecs.nope.large" }),
		annotation.FieldSpecs, "ecs.nope.large"},
	{"malformed spec", with(func(f *fields) { f.Specs = "2-4G" }),
		annotation.FieldSpecs, "2-4G"},
	{"spec under 2 vCPU", with(func(f *fields) { f.Specs = "1-2Gi" }),
		annotation.FieldSpecs, "1-2Gi"},
	{"bad spec after a good one", with(func(f *fields) { f.Specs = "ecs.c5.large,2-4G" }),
		annotation.FieldSpecs, "ecs.c5.large,2-4G"},
	// A limit too large for a float64 is not a price (ParseFloat gives +Inf).
	{"limit overflowing float64", with(func(f *fields) { f.PriceLimit = "1" + strings.Repeat("0", 400) }),
		annotation.FieldPriceLimit, "1" + strings.Repeat("0", 400)},
	// Money is bounded where it enters: a limit that would overflow a bill.
	{"limit above the price bound", with(func(f *fields) { f.PriceLimit = "1000000" }),
		annotation.FieldPriceLimit, "1000000"},
	// The protection period is a spot instance's: meaningless pay-as-you-go.
	{"duration without spot", with(func(f *fields) { f.Strategy, f.PriceLimit, f.Duration = "", "", "1" }),
		annotation.FieldDuration, "1"},
	{"more than 5 specs", with(func(f *fields) { f.Specs = "2-4Gi,4-8Gi,8-16Gi,16-32Gi,32-64Gi,64-128Gi" }),
		annotation.FieldSpecs, "2-4Gi,4-8Gi,8-16Gi,16-32Gi,32-64Gi,64-128Gi"},
	// An oversized value with control characters is quoted cut short.
	{"huge specs", with(func(f *fields) { f.Specs = strings.Repeat("\x01,", 25000) }),
		annotation.FieldSpecs, strings.Repeat("\x01,", 25000)},
}

func TestParseInvalid(t *testing.T) {
	cat := catalog.Default()
	if _, err := parse(cat, base); err != nil {
		t.Fatalf("the base fields are invalid: %v", err)
	}
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(cat, tc.fields)
			if err == nil {
				t.Fatalf("Parse(%+v) = %+v, want an error on %s", tc.fields, got, tc.field.Annotation)
			}
			var fe *annotation.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%+v) error %T %v, want *annotation.FieldError", tc.fields, err, err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field = %+v, want %+v", fe.Field, tc.field)
			}
			if fe.Value != tc.value {
				t.Errorf("Value = %q, want %q", fe.Value, tc.value)
			}
			quoted := annotation.Quote(tc.value) // cut short when long
			if len(tc.value) > annotation.QuoteLimit && len(fe.Error()) > 300 {
				t.Errorf("Error() is %d bytes: a long value is not cut short", len(fe.Error()))
			}
			if msg := fe.Error(); !strings.Contains(msg, tc.field.API) || !strings.Contains(msg, quoted) {
				t.Errorf("Error() = %q, want it to name %s and quote %s", msg, tc.field.API, quoted)
			}
			if msg := fe.Annotation(); !strings.Contains(msg, tc.field.Annotation) || !strings.Contains(msg, quoted) {
				t.Errorf("Annotation() = %q, want it to name %s and quote %s", msg, tc.field.Annotation, quoted)
			}
			if err.Error() != fe.Error() {
				t.Errorf("err.Error() = %q, FieldError.Error() = %q", err.Error(), fe.Error())
			}
		})
	}
}

func TestParseAnnotationsIgnoresOthers(t *testing.T) {
	a := map[string]string{
		annotation.AnnotationStrategy:        "SpotWithPriceLimit",
		annotation.AnnotationPriceLimit:      "0.25",
		annotation.AnnotationDuration:        "0",
		annotation.AnnotationFallback:        "true",
		annotation.AnnotationUseSpecs:        "ecs.c5.large,2-4Gi",
		annotation.AnnotationReleaseStrategy: "api-evict",
		// Not ours: ignored.
		"k8s.aliyun.com/eci-image-cache":          "true",
		"k8s.aliyun.com/eci-spot-strategy-x":      "Cheapest",
		"K8S.ALIYUN.COM/ECI-SPOT-STRATEGY":        "Cheapest",
		"eci-spot-price-limit":                    "9",
		"k8s.aliyun.com/eci-spot-duration ":       "7",
		"kubectl.kubernetes.io/last-applied-conf": "{}",
	}
	want := annotation.Spot{
		Bid:      market.Bid{Strategy: market.SpotWithPriceLimit, Limit: 0.25, Protection: 0, Fallback: true},
		Specs:    "ecs.c5.large,2-4Gi",
		APIEvict: true,
	}
	if got, err := annotation.ParseAnnotations(a); err != nil || got != want {
		t.Errorf("ParseAnnotations = %+v, %v, want %+v", got, err, want)
	}
	none := annotation.Spot{Bid: market.Bid{Strategy: market.NoSpot, Protection: time.Hour}}
	if got, err := annotation.ParseAnnotations(map[string]string{"app": "web"}); err != nil || got != none {
		t.Errorf("ParseAnnotations(no eci annotations) = %+v, %v, want %+v", got, err, none)
	}
	if got, err := annotation.ParseAnnotations(nil); err != nil || got != none {
		t.Errorf("ParseAnnotations(nil) = %+v, %v, want %+v", got, err, none)
	}
	// The annotation constants are the names of SPEC section 2.
	for name, f := range map[string]annotation.Field{
		"k8s.aliyun.com/eci-spot-strategy":         annotation.FieldStrategy,
		"k8s.aliyun.com/eci-spot-price-limit":      annotation.FieldPriceLimit,
		"k8s.aliyun.com/eci-spot-duration":         annotation.FieldDuration,
		"k8s.aliyun.com/eci-spot-fallback":         annotation.FieldFallback,
		"k8s.aliyun.com/eci-use-specs":             annotation.FieldSpecs,
		"k8s.aliyun.com/eci-spot-release-strategy": annotation.FieldReleaseStrategy,
	} {
		if f.Annotation != name {
			t.Errorf("field %s has annotation %q, want %q", f.API, f.Annotation, name)
		}
	}
}

// threeDecimals reports whether limit is a finite positive number written with
// at most 3 decimals. Below 1e12 it checks that limit*1000 is an integer
// (within 1e-9 relative to its size, the float64 error of the product) and
// that that integer/1000 gives limit back exactly; above, a float64 cannot
// hold 3 decimals apart and only finiteness is checked.
func threeDecimals(limit float64) bool {
	if !(limit > 0) || math.IsInf(limit, 0) {
		return false
	}
	if limit >= 1e12 {
		return true
	}
	x := limit * 1000
	n := math.Round(x)
	return math.Abs(x-n) <= 1e-9*math.Max(1, x) && n/1000 == limit
}

func FuzzParse(f *testing.F) {
	for _, tc := range validCases() {
		v := tc.fields
		f.Add(v.Strategy, v.PriceLimit, v.Duration, v.Fallback, v.Specs, v.ReleaseStrategy)
	}
	for _, tc := range invalidCases {
		v := tc.fields
		f.Add(v.Strategy, v.PriceLimit, v.Duration, v.Fallback, v.Specs, v.ReleaseStrategy)
	}
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, strategy, limit, duration, fallback, specs, release string) {
		in := fields{
			Strategy:        strategy,
			PriceLimit:      limit,
			Duration:        duration,
			Fallback:        fallback,
			Specs:           specs,
			ReleaseStrategy: release,
		}
		r, err := parse(cat, in)
		if err != nil {
			var fe *annotation.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse(%+v) error %T %v, want *annotation.FieldError", in, err, err)
			}
			var raw string
			switch fe.Field {
			case annotation.FieldStrategy:
				raw = in.Strategy
			case annotation.FieldPriceLimit:
				raw = in.PriceLimit
			case annotation.FieldDuration:
				raw = in.Duration
			case annotation.FieldFallback:
				raw = in.Fallback
			case annotation.FieldSpecs:
				raw = in.Specs
			case annotation.FieldReleaseStrategy:
				raw = in.ReleaseStrategy
			default:
				t.Fatalf("Parse(%+v) error names unknown field %+v", in, fe.Field)
			}
			if fe.Value != raw {
				t.Fatalf("Parse(%+v) error on %s has Value %q, want the input %q", in, fe.Field.API, fe.Value, raw)
			}
			return
		}
		if err := r.Bid.Validate(); err != nil {
			t.Fatalf("Parse(%+v) = %+v, whose bid fails Validate: %v", in, r, err)
		}
		if r.Bid.Strategy == market.SpotWithPriceLimit && !threeDecimals(r.Bid.Limit) {
			t.Fatalf("Parse(%+v) limit %v: not a positive price with at most 3 decimals", in, r.Bid.Limit)
		}
		if p := r.Bid.Protection; p < 0 || p > 6*time.Hour || p%time.Hour != 0 {
			t.Fatalf("Parse(%+v) protection %v: not whole hours from 0 to 6", in, p)
		}
		if in.Duration == "" && r.Bid.Protection != time.Hour {
			t.Fatalf("Parse(%+v) protection %v without a duration, want 1h", in, r.Bid.Protection)
		}
		if r.Bid.Fallback != (in.Fallback == "true") {
			t.Fatalf("Parse(%+v) fallback %v", in, r.Bid.Fallback)
		}
		if r.APIEvict != (in.ReleaseStrategy == "api-evict") {
			t.Fatalf("Parse(%+v) APIEvict %v", in, r.APIEvict)
		}
		for _, sp := range r.Specs {
			again, err := cat.ParseSpecs(sp.String())
			if err != nil {
				t.Fatalf("Parse(%+v) spec %+v: String() %q does not re-parse: %v", in, sp, sp.String(), err)
			}
			if len(again) != 1 || again[0] != sp {
				t.Fatalf("Parse(%+v) spec %+v: String() %q re-parses as %+v", in, sp, sp.String(), again)
			}
		}
	})
}

// The two entries, a pod's annotations and a request's parameters, make
// the same Spot by the same rules, and refuse the same values with the same
// FieldError; the API has no release strategy, and its fallback is a bool.
func TestEntriesAgree(t *testing.T) {
	fromRequest := func(f fields) (annotation.Spot, error) {
		var duration *string
		if f.Duration != "" {
			duration = &f.Duration
		}
		return annotation.ParseRequest(f.Strategy, f.PriceLimit, duration, f.Fallback == "true", f.Specs)
	}
	var all []fields
	for _, tc := range validCases() {
		all = append(all, tc.fields)
	}
	for _, tc := range invalidCases {
		if tc.field != annotation.FieldFallback && tc.field != annotation.FieldReleaseStrategy {
			all = append(all, tc.fields)
		}
	}
	for _, f := range all {
		want, wantErr := annotation.ParseAnnotations(f.annotations())
		want.APIEvict = false
		got, err := fromRequest(f)
		if !reflect.DeepEqual(err, wantErr) || (err == nil && got != want) {
			t.Errorf("%+v: ParseRequest = %+v, %v; ParseAnnotations = %+v, %v", f, got, err, want, wantErr)
		}
	}
	// Sent but empty is refused, as it always was, quoting "\"\"".
	empty := ""
	_, err := annotation.ParseRequest("SpotAsPriceGo", "", &empty, false, "")
	if want := `invalid SpotDuration "\"\"": want whole hours from 0 to 6 (0: no protection period)`; err == nil || err.Error() != want {
		t.Errorf("an empty SpotDuration: %v, want %s", err, want)
	}
}

// A refusal is said in the words of the API (the service's message, code
// InvalidParameter.<field>) or of the annotation (the node's event), and
// the field is found again by its API name.
func TestFieldErrorWords(t *testing.T) {
	_, err := parse(catalog.Default(), fields{Strategy: "SpotWithPriceLimit", PriceLimit: "0.2555"})
	var fe *annotation.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("parse: %v", err)
	}
	for got, want := range map[string]string{
		fe.Code():       "InvalidParameter.SpotPriceLimit",
		fe.Error():      `invalid SpotPriceLimit "0.2555": want a positive hourly price with at most 3 decimals, like 0.25`,
		fe.Annotation(): `invalid annotation k8s.aliyun.com/eci-spot-price-limit="0.2555": want a positive hourly price with at most 3 decimals, like 0.25`,
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	for _, f := range []annotation.Field{annotation.FieldStrategy, annotation.FieldPriceLimit, annotation.FieldDuration,
		annotation.FieldFallback, annotation.FieldSpecs, annotation.FieldReleaseStrategy} {
		if got, ok := annotation.FieldByAPI(f.API); !ok || got != f {
			t.Errorf("FieldByAPI(%q) = %+v, %v", f.API, got, ok)
		}
	}
	if _, ok := annotation.FieldByAPI("Container.Image"); ok {
		t.Error("FieldByAPI took another field for a spot field")
	}
}

// Without specs an instance is sized from the limits; a size left out
// counts as the least, so a pod that limits only its memory (as a chart's
// Deployment often does) still gets an instance.
func TestOrderSizedByLimits(t *testing.T) {
	cat := catalog.Default()
	const region = "cn-hangzhou"
	zones := cat.Zones(region)
	for _, c := range []struct {
		cpu, mem float64
		want     string
	}{
		{0, 0, "2-4Gi"},
		{0, 0.5, "2-"},
		{0, 16, "2-16Gi"},
		{4, 0, "4-"},
		{1, 1, "2-"},
	} {
		o, err := spot.Order(cat, annotation.Spot{}, c.cpu, c.mem, zones, region)
		if err != nil {
			t.Errorf("%g vCPU %g GiB: %v", c.cpu, c.mem, err)
			continue
		}
		got := o.Candidates[0][0]
		spec := fmt.Sprintf("%d-%gGi", got.Type.VCPU, got.Type.MemoryGiB)
		if !strings.HasPrefix(spec, c.want) {
			t.Errorf("%g vCPU %g GiB: an instance of %s (%s), want %s", c.cpu, c.mem, spec, got.Type.Name, c.want)
		}
	}
}
