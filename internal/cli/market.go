package cli

import (
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/plot"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

func newMarketCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{Use: "market", Short: "Spot prices, stock and price history; operator overrides"}
	o.addFlags(cmd)
	cmd.AddCommand(newMarketPricesCommand(streams, o), newMarketHistoryCommand(streams, o), newMarketSetCommand(streams, o))
	return cmd
}

func newMarketPricesCommand(streams Streams, o *clientOptions) *cobra.Command {
	req := wire.DescribeAvailableResourceRequest{DestinationResource: "InstanceType", SpotStrategy: eciapi.SpotAsPriceGo}
	cmd := &cobra.Command{
		Use:   "prices",
		Short: "Spot and pay-as-you-go prices and stock of each pool (type in a zone) now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.DescribeAvailableResource(cmd.Context(), req)
			if err != nil {
				return err
			}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) { poolTable(tw, poolsOf(resp)) })
		},
	}
	cmd.Flags().StringVar(&req.ZoneId, "zone", "", "only this zone")
	cmd.Flags().StringVar(&req.InstanceType, "type", "", "only this instance type")
	return cmd
}

// poolsOf flattens ECS's zones of instance types into pools with their
// numbers (spoteci's extension).
func poolsOf(resp wire.DescribeAvailableResourceResponse) []eciapi.Resource {
	var out []eciapi.Resource
	for _, z := range resp.AvailableZones.AvailableZone {
		for _, r := range z.AvailableResources.AvailableResource {
			for _, t := range r.SupportedResources.SupportedResource {
				p := eciapi.Resource{ZoneId: z.ZoneId, InstanceType: t.Value}
				if x := t.Spoteci; x != nil {
					p.Cpu, p.Memory, p.SpotPrice, p.OriginalPrice, p.Stock, p.Used, p.Estimated = x.Cpu, x.Memory, x.SpotPrice, x.OriginalPrice, x.Stock, x.Used, x.Estimated
				}
				out = append(out, p)
			}
		}
	}
	return out
}

func poolTable(tw *tabwriter.Writer, rs []eciapi.Resource) {
	row(tw, "ZONE", "TYPE", "VCPU", "MEMORY", "SPOT/H", "PAYG/H", "DISCOUNT", "STOCK", "USED", "PRICE SOURCE")
	for _, r := range rs {
		discount := "-"
		if r.OriginalPrice > 0 {
			discount = fmt.Sprintf("%.0f%%", 100*(1-r.SpotPrice/r.OriginalPrice))
		}
		source := "snapshot"
		if r.Estimated {
			source = "estimate" // see internal/catalog/NOTICE.md
		}
		row(tw, r.ZoneId, r.InstanceType, r.Cpu, fmt.Sprintf("%gGi", r.Memory), price(r.SpotPrice), price(r.OriginalPrice), discount, r.Stock, r.Used, source)
	}
}

func newMarketHistoryCommand(streams Streams, o *clientOptions) *cobra.Command {
	var req wire.DescribeSpotPriceHistoryRequest
	var since time.Duration
	var plotFile string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Price history of a type (last 30 days at most), per zone; --plot draws it as SVG",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if since > 0 {
				// The service clamps to its own clock; ask relative to it.
				now, err := c.DescribeContainerGroups(cmd.Context(), eciapi.DescribeContainerGroupsRequest{Limit: 1})
				if err != nil {
					return err
				}
				req.StartTime = marketNow(now.Spoteci).Add(-since)
			}
			resp, err := c.DescribeSpotPriceHistory(cmd.Context(), req)
			for err == nil && resp.NextOffset > 0 {
				more := req
				more.Offset = resp.NextOffset
				var page wire.DescribeSpotPriceHistoryResponse
				page, err = c.DescribeSpotPriceHistory(cmd.Context(), more)
				resp.SpotPrices.SpotPriceType = append(resp.SpotPrices.SpotPriceType, page.SpotPrices.SpotPriceType...)
				resp.NextOffset = page.NextOffset
			}
			if err != nil {
				return err
			}
			if plotFile != "" {
				if err := writeHistoryPlot(plotFile, req.InstanceType, resp.SpotPrices.SpotPriceType); err != nil {
					return err
				}
				fmt.Fprintf(streams.ErrOut, "plot written to %s\n", plotFile)
			}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) {
				row(tw, "TIME", "ZONE", "TYPE", "SPOT/H", "PAYG/H")
				for _, p := range resp.SpotPrices.SpotPriceType {
					row(tw, p.Timestamp, p.ZoneId, p.InstanceType, price(p.SpotPrice), price(p.OriginPrice))
				}
			})
		},
	}
	cmd.Flags().StringVar(&req.ZoneId, "zone", "", "zone (default: every zone that sells the type)")
	cmd.Flags().StringVar(&req.InstanceType, "type", "", "instance type (required)")
	cmd.Flags().DurationVar(&since, "since", 0, "only the last DURATION (e.g. 24h); default 30 days")
	cmd.Flags().StringVar(&plotFile, "plot", "", "also draw the history to this SVG file")
	cmd.MarkFlagRequired("type")
	return cmd
}

func writeHistoryPlot(path, typ string, points []wire.SpotPriceType) error {
	series := map[string]*plot.Series{}
	var order []string
	for _, p := range points {
		s, ok := series[p.ZoneId]
		if !ok {
			s = &plot.Series{Name: p.ZoneId}
			series[p.ZoneId] = s
			order = append(order, p.ZoneId)
		}
		at, err := wire.ParseTime(p.Timestamp)
		if err != nil {
			return fmt.Errorf("price point at %q: %w", p.Timestamp, err)
		}
		s.Points = append(s.Points, plot.Point{T: at, V: p.SpotPrice})
	}
	chart := plot.Chart{Title: "Spot price of " + typ + " (CNY/h)", YLabel: "CNY/h", Step: true}
	for _, z := range order {
		chart.Series = append(chart.Series, *series[z])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating plot: %w", err)
	}
	defer f.Close()
	if err := chart.SVG(f); err != nil {
		return err
	}
	return f.Close()
}

func newMarketSetCommand(streams Streams, o *clientOptions) *cobra.Command {
	var req eciapi.ModifySpotMarketRequest
	var priceFlag string
	var stock int
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Override the spot price and/or stock of a type, in one zone or every zone (operator)",
		Example: `  spoteci market set --type ecs.c5.large --zone cn-hangzhou-i --price 0.5   # force a reclaim of bids below 0.5
  spoteci market set --type ecs.c6.large --stock 0                          # no spot stock in any zone
  spoteci market set --type ecs.c6.large --reset                            # back to the model`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("price") {
				if _, err := strconv.ParseFloat(priceFlag, 64); err != nil {
					return fmt.Errorf("--price %q: want a number", priceFlag)
				}
				req.SpotPrice = (*eciapi.Decimal)(&priceFlag)
			}
			if cmd.Flags().Changed("stock") {
				req.Stock = &stock
			}
			resp, err := c.admin.ModifySpotMarket(cmd.Context(), req)
			if err != nil {
				return err
			}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) { poolTable(tw, resp.Resources) })
		},
	}
	cmd.Flags().StringVar(&req.InstanceType, "type", "", "instance type (required)")
	cmd.Flags().StringVar(&req.ZoneId, "zone", "", "zone (default: every zone of the region that sells the type)")
	cmd.Flags().StringVar(&priceFlag, "price", "", "spot price per hour from now on")
	cmd.Flags().IntVar(&stock, "stock", 0, "spot stock from now on")
	cmd.Flags().BoolVar(&req.Reset, "reset", false, "return price and stock to the model (and traces) first")
	cmd.MarkFlagRequired("type")
	return cmd
}
