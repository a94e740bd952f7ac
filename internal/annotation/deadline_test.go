package annotation

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDeadline(t *testing.T) {
	at := time.Date(2026, 12, 8, 6, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		a    map[string]string
		want *Deadline
	}{
		"none":     {map[string]string{AnnotationStrategy: "SpotAsPriceGo"}, nil},
		"a time":   {map[string]string{AnnotationDeadline: "2026-12-08T06:00:00Z", AnnotationExpectedDuration: "45m"}, &Deadline{At: at, Work: 45 * time.Minute, Policy: "uniform-progress"}},
		"after":    {map[string]string{AnnotationDeadline: "6h", AnnotationExpectedDuration: "2h", AnnotationDeadlinePolicy: "greedy"}, &Deadline{After: 6 * time.Hour, Work: 2 * time.Hour, Policy: "greedy"}},
		"progress": {map[string]string{AnnotationDeadline: "6h", AnnotationExpectedDuration: "2h", AnnotationProgress: "30m"}, &Deadline{After: 6 * time.Hour, Work: 2 * time.Hour, Policy: "uniform-progress", Checkpoints: true, Progress: 30 * time.Minute}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDeadline(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("ParseDeadline = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// Each refusal names the annotation and the value, as the node's Warning
// says it.
func TestParseDeadlineRefuses(t *testing.T) {
	cases := map[string]struct {
		a          map[string]string
		annotation string
		value      string
	}{
		"no deadline":       {map[string]string{AnnotationExpectedDuration: "1h"}, AnnotationExpectedDuration, "1h"},
		"policy alone":      {map[string]string{AnnotationDeadlinePolicy: "greedy"}, AnnotationDeadlinePolicy, "greedy"},
		"no work":           {map[string]string{AnnotationDeadline: "6h"}, AnnotationDeadline, "6h"},
		"bad deadline":      {map[string]string{AnnotationDeadline: "tomorrow", AnnotationExpectedDuration: "1h"}, AnnotationDeadline, "tomorrow"},
		"negative deadline": {map[string]string{AnnotationDeadline: "-6h", AnnotationExpectedDuration: "1h"}, AnnotationDeadline, "-6h"},
		"too short":         {map[string]string{AnnotationDeadline: "30m", AnnotationExpectedDuration: "1h"}, AnnotationDeadline, "30m"},
		"bad work":          {map[string]string{AnnotationDeadline: "6h", AnnotationExpectedDuration: "0s"}, AnnotationExpectedDuration, "0s"},
		"bad policy":        {map[string]string{AnnotationDeadline: "6h", AnnotationExpectedDuration: "1h", AnnotationDeadlinePolicy: "lazy"}, AnnotationDeadlinePolicy, "lazy"},
		"bad progress":      {map[string]string{AnnotationDeadline: "6h", AnnotationExpectedDuration: "1h", AnnotationProgress: "half"}, AnnotationProgress, "half"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDeadline(tc.a)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseDeadline(%v) = %v, want a FieldError", tc.a, err)
			}
			msg := fe.Annotation()
			if !strings.Contains(msg, tc.annotation+"=") || !strings.Contains(msg, `"`+tc.value+`"`) {
				t.Errorf("refusal %q does not name %s=%q", msg, tc.annotation, tc.value)
			}
		})
	}
}

func TestDeadlineBy(t *testing.T) {
	start := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	if got := (Deadline{After: 6 * time.Hour}).By(start); !got.Equal(start.Add(6 * time.Hour)) {
		t.Errorf("By = %v", got)
	}
	at := start.Add(time.Hour)
	if got := (Deadline{At: at}).By(start); !got.Equal(at) {
		t.Errorf("By = %v", got)
	}
}
