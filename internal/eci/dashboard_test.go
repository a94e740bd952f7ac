package eci_test

import (
	"os"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboardSchema decodes the Grafana dashboard with Grafana's own
// schema (the foundation SDK is generated from it), strictly: a field
// missing, misspelt or of the wrong type in a panel or a variable is an
// error, as it would be a panel drawn wrong in Grafana. (Grafana itself is
// under the AGPL, which this project does not take on, even in a test.)
func TestDashboardSchema(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/spoteci.json")
	if err != nil {
		t.Fatal(err)
	}
	plugins.RegisterDefaultPlugins() // the panel types' options
	var d dashboard.Dashboard
	err = d.UnmarshalJSONStrict(raw)
	if errs, ok := err.(cog.BuildErrors); ok && len(errs) == 0 {
		err = nil // an empty list of errors, returned as an error
	}
	if err != nil {
		t.Fatalf("deploy/grafana/spoteci.json against Grafana's schema:\n%v", err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("deploy/grafana/spoteci.json: %v", err)
	}
	if len(d.Panels) < 6 {
		t.Errorf("%d panels decoded", len(d.Panels))
	}
}
