package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/billing"
	"github.com/spoteci/spoteci/internal/eci"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

func newInstancesCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	var req eciapi.DescribeContainerGroupsRequest
	cmd := &cobra.Command{
		Use:     "instances",
		Aliases: []string{"get"},
		Short:   "List container groups (instances) with status, price and bill so far",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.DescribeAllContainerGroups(cmd.Context(), req, eci.MaxPageSize)
			if err != nil {
				return err
			}
			now := marketNow(resp.Spoteci)
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) {
				row(tw, "NAME", "ID", "STATUS", "TYPE", "ZONE", "STRATEGY", "PRICE/H", "BILL", "AGE")
				for _, g := range resp.ContainerGroups {
					x := extension(g)
					row(tw, g.ContainerGroupName, g.ContainerGroupId, g.Status, g.InstanceType, g.ZoneId, strategy(g),
						price(x.Price), money(x.Amount), since(now, g.CreationTime))
				}
			})
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&req.Status, "status", "", "only groups with this status (Pending, Running, Succeeded, Failed, Expired)")
	cmd.Flags().StringVar(&req.ContainerGroupName, "name", "", "only groups with this name")
	return cmd
}

// extension is spoteci's part of a group; zero from a backend without one.
func extension(g wire.ContainerGroup) wire.Group {
	if g.Spoteci == nil {
		return wire.Group{}
	}
	return *g.Spoteci
}

func strategy(g wire.ContainerGroup) string {
	switch {
	case extension(g).Degraded:
		return "PayAsYouGo (SpotDegraded)"
	case g.SpotStrategy == eciapi.SpotWithPriceLimit:
		return fmt.Sprintf("%s %.3f", g.SpotStrategy, g.SpotPriceLimit)
	case g.SpotStrategy == eciapi.NoSpot:
		return "PayAsYouGo"
	}
	return g.SpotStrategy
}

func newDescribeCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "describe ID",
		Short: "Show a container group in detail, with its containers and events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.DescribeContainerGroups(cmd.Context(), eciapi.DescribeContainerGroupsRequest{ContainerGroupIds: args})
			if err != nil {
				return err
			}
			if len(resp.ContainerGroups) == 0 {
				return fmt.Errorf("container group %q not found", args[0])
			}
			g := resp.ContainerGroups[0]
			if o.output == "json" {
				return o.print(streams.Out, g, nil)
			}
			return describe(streams, g, marketNow(resp.Spoteci))
		},
	}
	o.addFlags(cmd)
	return cmd
}

func describe(streams Streams, g wire.ContainerGroup, now time.Time) error {
	x := extension(g)
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	field := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	field("Name", g.ContainerGroupName)
	field("ID", g.ContainerGroupId)
	field("Status", g.Status)
	field("Zone", g.ZoneId)
	field("Instance Type", fmt.Sprintf("%s (%g vCPU, %g GiB)", g.InstanceType, g.Cpu, g.Memory))
	field("Strategy", strategy(g))
	if g.SpotStrategy != eciapi.NoSpot && !x.Degraded {
		field("Protection", fmt.Sprintf("%dh, until %s", x.SpotDuration, x.ProtectionEnd))
	}
	field("Created", g.CreationTime)
	if x.NoticeTime != "" {
		field("Release Notice", x.NoticeTime)
		field("Released", g.ExpiredTime)
	}
	field("Price", fmt.Sprintf("%s CNY/h now, %s at purchase", price(x.Price), price(x.PurchasePrice)))
	field("Bill", money(x.Amount)+" CNY")
	fmt.Fprintln(tw, "Containers:")
	for _, c := range g.Containers {
		fmt.Fprintf(tw, "  %s:\t%s %s\n", c.Name, c.CurrentState.State, strings.TrimSpace(fmt.Sprintf("%s %s", c.CurrentState.Reason, c.CurrentState.DetailStatus)))
		fmt.Fprintf(tw, "    Command:\t%s\n", strings.Join(append(append([]string{}, c.Commands...), c.Args...), " "))
		if c.CurrentState.State == "Terminated" {
			fmt.Fprintf(tw, "    Exit Code:\t%d\n", c.CurrentState.ExitCode)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(streams.Out, "Events:")
	ew := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	row(ew, "  Type", "Reason", "Age", "Message")
	row(ew, "  ----", "------", "---", "-------")
	for _, e := range g.Events {
		row(ew, "  "+e.Type, e.Reason, since(now, e.LastTimestamp), e.Message)
	}
	return ew.Flush()
}

func newCreateCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	req := eciapi.CreateContainerGroupRequest{}
	var limit, duration, image, container, workdir string
	var env []string
	var grace int64
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE [-- COMMAND [ARG...]]",
		Short: "Create a container group running IMAGE (its own command, or COMMAND)",
		Example: `  # The guide's pi container on a spot instance with a price limit:
  spoteci create pi --image registry.cn-shanghai.aliyuncs.com/eci_open/perl:5 --specs ecs.c5.large,2-4Gi \
      --spot-strategy SpotWithPriceLimit --price-limit 0.06 -- perl -Mbignum=bpi -wle 'print bpi(2000)'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if at := cmd.ArgsLenAtDash(); (at == -1 && len(args) != 1) || (at != -1 && at != 1) {
				return fmt.Errorf("want NAME --image IMAGE [-- COMMAND [ARG...]]")
			}
			if image == "" {
				return fmt.Errorf("--image is required (for example --image busybox)")
			}
			req.ContainerGroupName = args[0]
			if limit != "" {
				req.SpotPriceLimit = eciapi.Decimal(limit)
			}
			if cmd.Flags().Changed("spot-duration") {
				req.SpotDuration = (*eciapi.Decimal)(&duration)
			}
			if cmd.Flags().Changed("grace") {
				req.TerminationGracePeriodSeconds = &grace
			}
			ctr := eciapi.Container{Name: container, Image: image, Commands: args[1:], WorkingDir: workdir}
			if ctr.Name == "" {
				ctr.Name = args[0]
			}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
				ctr.EnvironmentVars = append(ctr.EnvironmentVars, eciapi.EnvironmentVar{Key: k, Value: v})
			}
			req.Containers = []eciapi.Container{ctr}
			id, err := c.CreateContainerGroup(cmd.Context(), req)
			if err != nil {
				return err
			}
			resp := wire.CreateContainerGroupResponse{ContainerGroupId: id}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) { row(tw, resp.ContainerGroupId) })
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&req.InstanceType, "specs", "", "candidate specs in order of preference, as eci-use-specs: ecs.c5.large,2-4Gi")
	f.Float64Var(&req.Cpu, "cpu", 0, "vCPU, when --specs is not given")
	f.Float64Var(&req.Memory, "memory", 0, "memory in GiB, when --specs is not given")
	f.StringVar(&req.SpotStrategy, "spot-strategy", "", "SpotAsPriceGo or SpotWithPriceLimit (default: pay-as-you-go)")
	f.StringVar(&limit, "price-limit", "", "hourly price limit, with SpotWithPriceLimit (at most 3 decimals)")
	f.StringVar(&duration, "spot-duration", "1", "protection period in whole hours (0: none)")
	f.BoolVar(&req.SpotFallback, "fallback", false, "create pay-as-you-go when no spot stock is at or under the bid")
	f.StringVar(&req.ZoneId, "zone", "", "zone (default: the market picks in the region)")
	f.StringVar(&req.ClientToken, "client-token", "", "idempotency token")
	f.Int64Var(&grace, "grace", 30, "termination grace period in seconds")
	f.StringVar(&image, "image", "", "image to run (Docker's short names work: busybox, perl)")
	f.StringVar(&container, "container", "", "container name (default: NAME)")
	f.StringVar(&workdir, "workdir", "", "working directory")
	f.StringArrayVar(&env, "env", nil, "environment variable KEY=VALUE; repeatable")
	return cmd
}

func newDeleteCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete container groups: billing stops, containers get SIGTERM and their grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := c.DeleteContainerGroup(cmd.Context(), eciapi.DeleteContainerGroupRequest{ContainerGroupId: id}); err != nil {
					return err
				}
				fmt.Fprintf(streams.Out, "%s deleted\n", id)
			}
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newLogsCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	var req eciapi.DescribeContainerLogRequest
	cmd := &cobra.Command{
		Use:   "logs ID",
		Short: "Print a container's log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			req.ContainerGroupId = args[0]
			resp, err := c.DescribeContainerLog(cmd.Context(), req)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return o.print(streams.Out, resp, nil)
			}
			_, err = fmt.Fprint(streams.Out, resp.Content)
			return err
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVarP(&req.ContainerName, "container", "c", "", "container (default: the only one)")
	cmd.Flags().IntVar(&req.Tail, "tail", 0, "only the last N lines")
	cmd.Flags().BoolVar(&req.Timestamps, "timestamps", false, "prefix each line with its time")
	return cmd
}

func newBillCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	var by string
	cmd := &cobra.Command{
		Use:   "bill [ID...]",
		Short: "The bill per container group (or per pod, Job or namespace), and the savings against pay-as-you-go",
		Example: `  spoteci bill                 # per container group
  spoteci bill --by job        # per Job of the virtual node's pods
  spoteci bill --by namespace -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if by != "" && by != billing.ByPod && by != billing.ByJob && by != billing.ByNamespace {
				return fmt.Errorf("--by must be pod, job or namespace, not %q", by)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			resp, err := c.admin.DescribeBill(cmd.Context(), eciapi.DescribeBillRequest{ContainerGroupIds: args})
			if err != nil {
				return err
			}
			if by != "" {
				rows := billing.By(resp, by)
				return o.print(streams.Out, rows, func(tw *tabwriter.Writer) {
					head := []any{strings.ToUpper(by), "INSTANCES", "HOURS", "AMOUNT", "PAYG", "SAVED"}
					if by == billing.ByJob {
						head = append(head, "DEADLINE", "MET")
					}
					row(tw, head...)
					for _, r := range rows {
						cells := []any{r.Key, r.Instances, fmt.Sprintf("%.3f", r.Seconds/3600), money(r.Amount), money(r.OnDemandAmount), billing.Saved(r.Amount, r.OnDemandAmount)}
						if by == billing.ByJob {
							deadline, met := "-", "-"
							if r.Deadline != nil {
								deadline, met = r.Deadline.Format(time.RFC3339), r.Met
							}
							cells = append(cells, deadline, met)
						}
						row(tw, cells...)
					}
					row(tw, "TOTAL", "", "", money(resp.Amount), money(resp.OnDemandAmount), billing.Saved(resp.Amount, resp.OnDemandAmount))
				})
			}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) {
				row(tw, "NAME", "ID", "STATUS", "TYPE", "ZONE", "STRATEGY", "HOURS", "AMOUNT", "PAYG", "SAVED")
				for _, it := range resp.Items {
					row(tw, it.ContainerGroupName, it.ContainerGroupId, it.Status, it.InstanceType, it.ZoneId, it.SpotStrategy,
						fmt.Sprintf("%.3f", it.Seconds/3600), money(it.Amount), money(it.OnDemandAmount), billing.Saved(it.Amount, it.OnDemandAmount))
				}
				row(tw, "TOTAL", "", "", "", "", "", "", money(resp.Amount), money(resp.OnDemandAmount), billing.Saved(resp.Amount, resp.OnDemandAmount))
			})
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&by, "by", "", "sum per pod, job or namespace (of the virtual node's pods; other groups count as \"-\")")
	return cmd
}

func newPriceCommand(streams Streams) *cobra.Command {
	o := &clientOptions{}
	var req eciapi.DescribeContainerGroupPriceRequest
	var limit string
	cmd := &cobra.Command{
		Use:   "price",
		Short: "Where a container group would land now, and at what price",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			req.SpotPriceLimit = eciapi.Decimal(limit)
			resp, err := c.DescribeContainerGroupPrice(cmd.Context(), req)
			if err != nil {
				return err
			}
			return o.print(streams.Out, resp, func(tw *tabwriter.Writer) {
				at, p := resp.Spoteci, resp.PriceInfo.Price
				switch {
				case at == nil:
					row(tw, "would cost", price(p.TradePrice), "CNY/h", "(pay-as-you-go", price(p.OriginalPrice)+")")
				case at.ZoneId == "":
					row(tw, "no placement now:", at.Reason)
				default:
					row(tw, "would land in", at.ZoneId, at.InstanceType, "at", price(p.TradePrice), "CNY/h", "(pay-as-you-go", price(p.OriginalPrice)+")")
				}
				row(tw)
				row(tw, "ZONE", "TYPE", "SPOT/H", "PAYG/H")
				for _, p := range resp.PriceInfo.SpotPrices {
					row(tw, p.ZoneId, p.InstanceType, price(p.SpotPrice), price(p.OriginPrice))
				}
			})
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&req.InstanceType, "specs", "", "candidate specs, as eci-use-specs")
	f.Float64Var(&req.Cpu, "cpu", 0, "vCPU, when --specs is not given")
	f.Float64Var(&req.Memory, "memory", 0, "memory in GiB, when --specs is not given")
	f.StringVar(&req.SpotStrategy, "spot-strategy", eciapi.SpotAsPriceGo, "bid policy")
	f.StringVar(&limit, "price-limit", "", "price limit, with SpotWithPriceLimit")
	f.StringVar(&req.ZoneId, "zone", "", "zone")
	return cmd
}
