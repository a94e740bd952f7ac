package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/eci"
	"github.com/spoteci/spoteci/internal/ecisdk"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// clientOptions are the flags of every command that talks to the service.
type clientOptions struct {
	stateDir, endpoint, token, output string
}

func defaultStateDir() string {
	if d := os.Getenv("SPOTECI_STATE_DIR"); d != "" {
		return d
	}
	return "state"
}

func (o *clientOptions) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.stateDir, "state-dir", defaultStateDir(), "state folder of the server, to read its endpoint and credentials from eci.json")
	f.StringVar(&o.endpoint, "endpoint", "", "ECI service endpoint, e.g. http://127.0.0.1:8780 (default: from the state folder; its AccessKey from ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET, else the state folder)")
	f.StringVar(&o.token, "token", "", "bearer token of the admin API (default: from the state folder)")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
}

// clients are the two ways to the service: ECI's and ECS's actions through
// the official SDK, and the admin API for what ECI has no action for.
type clients struct {
	*ecisdk.Client
	admin *eciapi.Client
}

// client validates the output flag and returns clients of the service.
func (o *clientOptions) client() (*clients, error) {
	if o.output != "table" && o.output != "json" {
		return nil, fmt.Errorf("--output must be 'table' or 'json', not %q", o.output)
	}
	var info eciapi.ServerInfo
	if o.endpoint == "" || o.token == "" || os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID") == "" {
		var err error
		if info, err = eciapi.ReadServerInfo(o.stateDir); err != nil && (o.endpoint == "" || o.token == "") {
			return nil, err
		}
	}
	info.Endpoint, info.Token = cmp.Or(o.endpoint, info.Endpoint), cmp.Or(o.token, info.Token)
	if id := os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"); id != "" {
		info.AccessKeyId, info.AccessKeySecret = id, os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
	}
	info.Region = cmp.Or(info.Region, eci.DefaultRegion)
	return newClients(info)
}

// newClients are the clients of the service that info describes.
func newClients(info eciapi.ServerInfo) (*clients, error) {
	sdk, err := ecisdk.Local(info, 2)
	if err != nil {
		return nil, err
	}
	return &clients{Client: sdk, admin: &eciapi.Client{Endpoint: info.Endpoint, Token: info.Token}}, nil
}

// print writes v as JSON, or calls table with an aligned writer.
func (o *clientOptions) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	table(tw)
	return tw.Flush()
}

func row(tw io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(tw, strings.Join(parts, "\t"))
}

func money(v float64) string { return fmt.Sprintf("%.4f", v) }

func price(v float64) string { return fmt.Sprintf("%.3f", v) }

// age says a duration the way kubectl does: 45s, 3m12s, 4h53m, 2d3h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// marketNow is the service's market time of a listing: its clock runs
// faster than the wall's under a time scale. Wall time without one.
func marketNow(l *wire.Listing) time.Time {
	if l != nil {
		if t, err := wire.ParseTime(l.MarketTime); err == nil {
			return t
		}
	}
	return time.Now()
}

// since says how long before now a wire time was; "" for none.
func since(now time.Time, s string) string {
	t, err := wire.ParseTime(s)
	if s == "" || err != nil {
		return "-"
	}
	return age(now.Sub(t))
}
