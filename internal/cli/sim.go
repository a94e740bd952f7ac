package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/annotation"
	"github.com/spoteci/spoteci/internal/catalog"
	"github.com/spoteci/spoteci/internal/market"
	"github.com/spoteci/spoteci/internal/prices"
	"github.com/spoteci/spoteci/internal/sim"
	"github.com/spoteci/spoteci/internal/sim/deadline"
	"github.com/spoteci/spoteci/internal/sim/jobs"
)

// simSchemaVersion is the version of the JSON that `sim -o json` prints.
const simSchemaVersion = 1

func newSimCommand(streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate the spot market on a virtual clock: what a workload costs, when it finishes",
		Long: `Simulate the spot market with the very rules of the service (the same market core), on a
virtual clock that jumps from event to event: a month of market in seconds, the same seed
giving the same output byte for byte.

  sim deadline   the deadline job of "Can't Be Late" (NSDI 2024) on availability traces,
                 under the policies on-demand, greedy, uniform-progress, protected-progress
                 and optimal
  sim jobs       Jobs of pods that bid with the ECI annotations, on the price model`,
	}
	cmd.AddCommand(newSimDeadlineCommand(streams), newSimJobsCommand(streams))
	return cmd
}

// simOutput holds the flags every sim command shares.
type simOutput struct {
	output  string
	plotDir string
	quiet   bool
}

func (o *simOutput) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&o.plotDir, "plot", "", "write SVG plots to this folder")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar on stderr")
}

func (o *simOutput) validate() error {
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("--output must be 'table' or 'json', not %q", o.output)
	}
	return nil
}

// progress is a bar on stderr when it is a terminal.
func (o *simOutput) progress(w io.Writer, label string) sim.Progress {
	if f, ok := w.(*os.File); ok && !o.quiet {
		if info, err := f.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			return sim.NewBar(w, label)
		}
	}
	return sim.NoProgress{}
}

func (o *simOutput) json(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type svgWriter interface{ SVG(io.Writer) error }

// writePlot writes an SVG file into the plot folder and says so on stderr.
func (o *simOutput) writePlot(errOut io.Writer, name string, chart svgWriter) error {
	if err := os.MkdirAll(o.plotDir, 0o755); err != nil {
		return fmt.Errorf("creating plot folder: %w", err)
	}
	path := filepath.Join(o.plotDir, name)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating plot: %w", err)
	}
	if err := chart.SVG(f); err != nil {
		f.Close()
		return fmt.Errorf("drawing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !o.quiet {
		fmt.Fprintf(errOut, "plot written to %s\n", path)
	}
	return nil
}

func simRow(tw io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		switch v := c.(type) {
		case float64:
			parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	fmt.Fprintln(tw, strings.Join(parts, "\t"))
}

func percent(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

// deadlineOptions are the flags of sim deadline.
type deadlineOptions struct {
	simOutput
	traces                             string
	jobHours, deadlineHours, changeHrs float64
	starts                             int
	seed                               int64
	odPrice, spotPrice                 float64
	rules                              string
	protectionHours                    int
	noticeLead                         time.Duration
	policies                           string
	workers                            int
	byTrace                            bool
}

// deadlineParams echo the inputs of a deadline sweep in its JSON.
type deadlineParams struct {
	Traces          []string `json:"traces"`
	Rules           string   `json:"rules"`
	JobHours        float64  `json:"job_hours"`
	DeadlineHours   float64  `json:"deadline_hours"`
	ChangeoverHours float64  `json:"changeover_hours"`
	Starts          int      `json:"starts"`
	Seed            int64    `json:"seed"`
	ODPrice         float64  `json:"od_price"`
	SpotPrice       float64  `json:"spot_price"`
	ProtectionHours *int     `json:"protection_hours,omitempty"`
	NoticeLeadSecs  *float64 `json:"notice_lead_seconds,omitempty"`
}

type deadlineOutput struct {
	Version  int                `json:"version"`
	Kind     string             `json:"kind"`
	Params   deadlineParams     `json:"params"`
	Policies []deadline.Summary `json:"policies"`
	ByTrace  []deadline.Summary `json:"by_trace"`
}

func newSimDeadlineCommand(streams Streams) *cobra.Command {
	o := &deadlineOptions{}
	cmd := &cobra.Command{
		Use:   "deadline",
		Short: "The deadline job of Can't Be Late on availability traces, under each policy",
		Long: `Run a job of C hours of work that must finish within R hours of its start, paying a
changeover delay d each time it (re)starts on an instance, from random starts of each
availability trace (1 = spot available, 0 = not), under each policy:

  on-demand         pay-as-you-go from start to end
  greedy            spot whenever available, on-demand only when the deadline forces it
  uniform-progress  greedy, plus on-demand when spot is gone and progress lags C·t/R
  protected-progress  uniform progress on a later schedule, tuned by a search under eci
                    rules; ends on a spot instance its protection period covers
  optimal           the cheapest schedule knowing the whole trace (dynamic programming)

Spot comes from the market core: one unit of stock when the trace says available, none when
not, under the eci rules (protection period, 5-minute checks, notice) or the aws rules (none
of these: reclaimed the moment availability drops). The starts are drawn one at random in
each of --starts equal strata of the trace, so the means depend little on the seed.`,
		Example: `  # The paper's Table 3
  spoteci sim deadline --traces ../shared/data/traces/availability/1-node/aws-10-26-2022 \
      --job-hours 48 --deadline-hours 60 --changeover-hours 0.2 --starts 300 --seed 1 \
      --od-price 3.06 --spot-price 0.9731 --rules aws \
      --policy on-demand,greedy,uniform-progress,optimal -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, streams) },
	}
	f := cmd.Flags()
	f.StringVar(&o.traces, "traces", os.Getenv("SPOTECI_TRACES"), "availability trace file, or folder of *.json traces (default $SPOTECI_TRACES)")
	f.Float64Var(&o.jobHours, "job-hours", 48, "C: hours of work")
	f.Float64Var(&o.deadlineHours, "deadline-hours", 60, "R: hours from the start to the deadline")
	f.Float64Var(&o.changeHrs, "changeover-hours", 0.2, "d: hours without progress, but paid, at each (re)start on an instance")
	f.IntVar(&o.starts, "starts", 300, "random starts per trace")
	f.Int64Var(&o.seed, "seed", 1, "seed of the random starts")
	f.Float64Var(&o.odPrice, "od-price", 3.06, "on-demand (pay-as-you-go) price per hour")
	f.Float64Var(&o.spotPrice, "spot-price", 0.9731, "spot price per hour")
	f.StringVar(&o.rules, "rules", sim.RulesECI, "market rules: eci (protection, 5-minute checks, notice) or aws (none)")
	f.IntVar(&o.protectionHours, "protection-hours", 1, "protection period of spot instances under eci rules, whole hours 0 to 6")
	f.DurationVar(&o.noticeLead, "notice-lead", market.DefaultNoticeLead, "time from SpotToBeReleased to the release under eci rules")
	f.StringVar(&o.policies, "policy", strings.Join(deadline.Policies(), ","), "comma list of policies")
	f.IntVar(&o.workers, "workers", 0, "runs in parallel (default: the number of CPUs); the output does not depend on it")
	f.BoolVar(&o.byTrace, "by-trace", false, "also show each trace's results in the table")
	o.simOutput.addFlags(cmd)
	return cmd
}

func hoursDuration(h float64, flag string) (time.Duration, error) {
	if h < 0 || h > 1e6 {
		return 0, fmt.Errorf("--%s %v: want hours from 0 to 1e6", flag, h)
	}
	return time.Duration(h * float64(time.Hour)).Round(time.Millisecond), nil
}

func (o *deadlineOptions) run(cmd *cobra.Command, streams Streams) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.traces == "" {
		return errors.New("--traces is required (or $SPOTECI_TRACES): a trace file or a folder of them")
	}
	policies, err := deadline.ParsePolicies(o.policies)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	var job deadline.Job
	if job.Work, err = hoursDuration(o.jobHours, "job-hours"); err != nil {
		return err
	}
	if job.Deadline, err = hoursDuration(o.deadlineHours, "deadline-hours"); err != nil {
		return err
	}
	if job.Changeover, err = hoursDuration(o.changeHrs, "changeover-hours"); err != nil {
		return err
	}
	if err := job.Validate(); err != nil {
		return err
	}
	if o.rules == sim.RulesECI && (o.noticeLead <= 0) {
		return fmt.Errorf("--notice-lead %v must be positive under eci rules", o.noticeLead)
	}
	traces, err := sim.LoadTraces(o.traces)
	if err != nil {
		return err
	}
	params := deadlineParams{Rules: o.rules, JobHours: o.jobHours, DeadlineHours: o.deadlineHours, ChangeoverHours: o.changeHrs,
		Starts: o.starts, Seed: o.seed, ODPrice: o.odPrice, SpotPrice: o.spotPrice}
	if o.rules == sim.RulesECI {
		lead := o.noticeLead.Seconds()
		params.ProtectionHours, params.NoticeLeadSecs = &o.protectionHours, &lead
	}
	sweep := &deadline.Sweep{Job: job, Policies: policies, Starts: o.starts, Seed: o.seed, Workers: o.workers,
		Progress: o.progress(streams.ErrOut, "sim deadline")}
	for _, tr := range traces {
		m, err := deadline.NewMarket(deadline.MarketConfig{Name: tr.Name, Trace: tr.Trace, Rules: o.rules,
			OnDemand: o.odPrice, SpotPrice: o.spotPrice, Protection: time.Duration(o.protectionHours) * time.Hour, NoticeLead: o.noticeLead})
		if err != nil {
			return fmt.Errorf("trace %s: %w", tr.Name, err)
		}
		sweep.Markets = append(sweep.Markets, m)
		params.Traces = append(params.Traces, tr.Name)
	}
	rep, err := sweep.Run(cmd.Context())
	if err != nil {
		return err
	}
	if o.plotDir != "" {
		if err := o.deadlinePlots(streams.ErrOut, sweep, rep); err != nil {
			return err
		}
	}
	if o.output == "json" {
		return o.json(streams.Out, deadlineOutput{Version: simSchemaVersion, Kind: "deadline", Params: params, Policies: rep.Policies, ByTrace: rep.ByTrace})
	}
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	header := []any{"POLICY", "RUNS", "OD_H", "SPOT_H", "OD_PAID_H", "SPOT_PAID_H", "COST", "SAVINGS", "DEADLINE_MET", "PREEMPTIONS", "FINISH_H"}
	rows := rep.Policies
	if o.byTrace {
		header = append([]any{"TRACE"}, header...)
		rows = append(rows, rep.ByTrace...)
	}
	simRow(tw, header...)
	for _, s := range rows {
		cells := []any{s.Policy, s.Runs, s.ODHoursMean, s.SpotHoursMean, s.ODBilledHoursMean, s.SpotBilledHoursMean,
			s.CostMean, percent(s.SavingsVsOnDemand), percent(s.DeadlineMetFraction), s.PreemptionsMean, s.FinishHoursMean}
		if o.byTrace {
			trace := s.Trace
			if trace == "" {
				trace = "all"
			}
			cells = append([]any{trace}, cells...)
		}
		simRow(tw, cells...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintln(streams.ErrOut, "OD_H and SPOT_H are hours of work done on each (as the paper counts them); the PAID hours add the changeovers.")
	}
	return nil
}

// deadlinePlots draws the mean cost of each policy and, for the first start
// of the first trace, each policy's timeline.
func (o *deadlineOptions) deadlinePlots(errOut io.Writer, sweep *deadline.Sweep, rep *deadline.Report) error {
	title := fmt.Sprintf("Mean cost of the deadline job (%d traces, %d starts each, %s rules)", len(sweep.Markets), sweep.Starts, o.rules)
	if err := o.writePlot(errOut, "cost.svg", deadline.CostChart(rep, title)); err != nil {
		return err
	}
	m := sweep.Markets[0]
	starts, err := sweep.StartTicks(0)
	if err != nil {
		return err
	}
	for _, name := range sweep.Policies {
		p, err := deadline.NewPolicy(name, m, sweep.Job, starts[0])
		if err != nil {
			return err
		}
		r := m.Run(sweep.Job, p, starts[0], deadline.RunOptions{Record: true})
		if err := o.writePlot(errOut, "timeline-"+name+".svg", m.Timeline(sweep.Job, name, r)); err != nil {
			return err
		}
	}
	return nil
}

// jobsOptions are the flags of sim jobs.
type jobsOptions struct {
	simOutput
	workload   string
	market     string
	seed       int64
	traces     []string
	stock      int
	rules      string
	noticeLead time.Duration
	region     string
	zones      []string
	horizon    time.Duration

	// The one Job kind of a workload given by flags.
	job                         jobs.JobSpec
	specs, strategy, priceLimit string
	protectionHours             string
	fallback                    bool
}

type jobsOutput struct {
	Version  int            `json:"version"`
	Kind     string         `json:"kind"`
	Params   jobsParams     `json:"params"`
	Policies []jobs.Summary `json:"policies"`
}

type jobsParams struct {
	Market   string         `json:"market"`
	Seed     int64          `json:"seed"`
	Traces   []string       `json:"traces,omitempty"`
	Stock    int            `json:"stock"`
	Rules    string         `json:"rules"`
	Workload *jobs.Workload `json:"workload"`
}

func newSimJobsCommand(streams Streams) *cobra.Command {
	o := &jobsOptions{}
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "Jobs of pods bidding with the ECI annotations, on the price model or traces",
		Long: `Run Kubernetes-like Jobs (completions, parallelism, work per pod, restart overhead,
checkpoints) whose pods bid with the eci-* annotations, on the market core: a reclaimed pod
loses the work since its last checkpoint and is replaced, as the Job controller does. The
workload comes from a YAML file (-f) or, for one kind of Job, from flags; a YAML file may list
several policies (annotation sets) to compare.

Prices come from the seeded model of the catalog's snapshot (--market model), or stay at the
snapshot (--market fixed); --trace replays an availability trace as stock.`,
		Example: `  spoteci sim jobs --jobs 100 --interval 1h --completions 10 --parallelism 5 --work 3h \
      --checkpoint-interval 30m --checkpoint-cost 1m --specs 2-4Gi \
      --strategy SpotWithPriceLimit --price-limit 0.06
  spoteci sim jobs -f workload.yaml -o json --plot plots/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd, streams) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.workload, "workload", "f", "", "workload YAML file")
	f.StringVar(&o.market, "market", "model", "spot prices: model (seeded, hourly) or fixed (the snapshot)")
	f.Int64Var(&o.seed, "seed", 1, "seed of the price model")
	f.StringArrayVar(&o.traces, "trace", nil, "availability trace replayed as stock (0 = none), as FILE or FILE=ZONE/TYPE; repeatable")
	f.IntVar(&o.stock, "stock", prices.DefaultStock, "spot stock of each pool when available")
	f.StringVar(&o.rules, "rules", sim.RulesECI, "market rules: eci or aws")
	f.DurationVar(&o.noticeLead, "notice-lead", market.DefaultNoticeLead, "time from SpotToBeReleased to the release under eci rules")
	f.StringVar(&o.region, "region", "", "region whose zones pods may run in (default cn-hangzhou)")
	f.StringSliceVar(&o.zones, "zones", nil, "zones pods may run in")
	f.DurationVar(&o.horizon, "horizon", 0, "simulated time (default 720h)")

	f.IntVar(&o.job.Count, "jobs", 1, "Jobs (without -f)")
	f.DurationVar(&o.job.Arrival, "arrival", 0, "first arrival after the start")
	f.DurationVar(&o.job.Interval, "interval", 0, "time between arrivals")
	f.IntVar(&o.job.Completions, "completions", 1, "pods that must succeed per Job")
	f.IntVar(&o.job.Parallelism, "parallelism", 0, "pods at a time (default: completions)")
	f.DurationVar(&o.job.Work, "work", 0, "work of one pod (required without -f)")
	f.DurationVar(&o.job.RestartOverhead, "restart-overhead", 0, "time without progress at each start of a pod")
	f.DurationVar(&o.job.CheckpointInterval, "checkpoint-interval", 0, "work between checkpoints (0: none)")
	f.DurationVar(&o.job.CheckpointCost, "checkpoint-cost", 0, "time a checkpoint takes")
	f.BoolVar(&o.job.CheckpointAtNotice, "checkpoint-at-notice", false, "checkpoint at SpotToBeReleased")
	f.DurationVar(&o.job.Deadline, "deadline", 0, "deadline of a Job after its arrival")
	f.Float64Var(&o.job.CPU, "cpu", 0, "vCPU limit of a pod, without --specs (default 2)")
	f.Float64Var(&o.job.MemoryGiB, "memory", 0, "memory limit of a pod in GiB, without --specs (default 4)")
	f.StringVar(&o.specs, "specs", "", "eci-use-specs: ECS types and C-MGi sizes, in order of preference")
	f.StringVar(&o.strategy, "strategy", "", "eci-spot-strategy: SpotAsPriceGo or SpotWithPriceLimit (default: pay-as-you-go)")
	f.StringVar(&o.priceLimit, "price-limit", "", "eci-spot-price-limit, with SpotWithPriceLimit")
	f.StringVar(&o.protectionHours, "protection-hours", "", "eci-spot-duration: protection period in whole hours (default 1)")
	f.BoolVar(&o.fallback, "fallback", false, "eci-spot-fallback: pay-as-you-go when no spot stock is at or under the bid")
	o.simOutput.addFlags(cmd)
	return cmd
}

// jobFlags are the flags that describe the Job kind of a workload given by
// flags.
var jobFlags = []string{"jobs", "arrival", "interval", "completions", "parallelism", "work", "restart-overhead",
	"checkpoint-interval", "checkpoint-cost", "checkpoint-at-notice", "deadline", "cpu", "memory",
	"specs", "strategy", "price-limit", "protection-hours", "fallback"}

func (o *jobsOptions) loadWorkload(cmd *cobra.Command) (*jobs.Workload, error) {
	if o.workload != "" {
		for _, name := range jobFlags {
			if cmd.Flags().Changed(name) {
				return nil, fmt.Errorf("--%s describes the Job of a workload given by flags: not with -f", name)
			}
		}
		w, err := jobs.ReadWorkload(o.workload)
		if err != nil {
			return nil, err
		}
		return w, nil
	}
	if o.job.Work <= 0 {
		return nil, errors.New("--work is required without a workload file (-f)")
	}
	o.job.Name = "job"
	o.job.Annotations = map[string]string{}
	for k, v := range map[string]string{
		annotation.AnnotationUseSpecs: o.specs, annotation.AnnotationStrategy: o.strategy,
		annotation.AnnotationPriceLimit: o.priceLimit, annotation.AnnotationDuration: o.protectionHours,
	} {
		if v != "" {
			o.job.Annotations[k] = v
		}
	}
	if o.fallback {
		o.job.Annotations[annotation.AnnotationFallback] = "true"
	}
	// The one policy is the Job's own annotations, named after them.
	name := o.strategy
	if name == "" {
		name = "pay-as-you-go"
	}
	if o.priceLimit != "" {
		name += "-" + o.priceLimit
	}
	if o.protectionHours != "" {
		name += "-" + o.protectionHours + "h"
	}
	if o.fallback {
		name += "-fallback"
	}
	return &jobs.Workload{Jobs: []jobs.JobSpec{o.job}, Policies: []jobs.Policy{{Name: name, Annotations: map[string]string{}}}}, nil
}

func (o *jobsOptions) run(cmd *cobra.Command, streams Streams) error {
	if err := o.validate(); err != nil {
		return err
	}
	w, err := o.loadWorkload(cmd)
	if err != nil {
		return err
	}
	if o.region != "" {
		w.Region = o.region
	}
	if len(o.zones) > 0 {
		w.Zones = o.zones
	}
	if o.horizon != 0 {
		w.Horizon = o.horizon
	}
	if w.Start.IsZero() {
		w.Start = jobs.Epoch
	}
	cfg := prices.Config{Seed: o.seed, DefaultStock: o.stock}
	switch o.market {
	case "model":
	case "fixed":
		cfg.Fixed = true
	default:
		return fmt.Errorf("--market %q: want model or fixed", o.market)
	}
	if o.stock < 0 {
		return fmt.Errorf("--stock %d must not be negative", o.stock)
	}
	var gap time.Duration
	var traces []*prices.Trace
	for _, spec := range o.traces {
		file, pool, _ := strings.Cut(spec, "=")
		tr, err := prices.ReadTrace(file)
		if err != nil {
			return err
		}
		if pool != "" {
			zone, typ, ok := strings.Cut(pool, "/")
			if !ok {
				return fmt.Errorf("--trace %s: want FILE=ZONE/TYPE", spec)
			}
			tr.Zone, tr.Type = zone, typ
		}
		tr.Start = w.Start
		if gap == 0 || tr.Gap < gap {
			gap = tr.Gap
		}
		traces = append(traces, tr)
	}
	if gap == 0 {
		gap = market.DefaultCheckInterval // aws rules without traces: the model's hours fall on this grid
	}
	rules, err := sim.ParseRules(o.rules, gap, w.Start, o.noticeLead)
	if err != nil {
		return err
	}
	source := prices.NewBook(cfg)
	for _, tr := range traces {
		source.AddTrace(tr)
	}
	results, err := jobs.Simulate(cmd.Context(), w, jobs.Config{Catalog: catalog.Default(), Prices: source, Rules: rules,
		NextChange: source.NextChange, Progress: o.progress(streams.ErrOut, "sim jobs"), Record: 1})
	if err != nil {
		return err
	}
	if o.plotDir != "" {
		if err := o.writePlot(streams.ErrOut, "cost.svg", jobs.CostChart(results, "Mean cost per Job by policy")); err != nil {
			return err
		}
		for _, r := range results {
			chart, err := jobs.Timeline(r, source, fmt.Sprintf("First Job under %s (%s rules)", r.Summary.Policy, rules.Name))
			if err != nil {
				continue // nothing ran
			}
			if err := o.writePlot(streams.ErrOut, "timeline-"+r.Summary.Policy+".svg", chart); err != nil {
				return err
			}
			if stock, ok := jobs.StockChart(r, source, fmt.Sprintf("Spot stock under %s (%s rules)", r.Summary.Policy, rules.Name)); ok {
				if err := o.writePlot(streams.ErrOut, "stock-"+r.Summary.Policy+".svg", stock); err != nil {
					return err
				}
			}
		}
	}
	if o.output == "json" {
		out := jobsOutput{Version: simSchemaVersion, Kind: "jobs",
			Params: jobsParams{Market: o.market, Seed: o.seed, Traces: o.traces, Stock: o.stock, Rules: rules.Name, Workload: w}}
		for _, r := range results {
			out.Policies = append(out.Policies, r.Summary)
		}
		return o.json(streams.Out, out)
	}
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
	simRow(tw, "POLICY", "JOBS", "DONE", "COST/JOB", "SAVINGS", "P50_H", "P95_H", "RECLAIMS", "LOST_H/JOB", "WAIT_H/JOB", "SPOT_H/JOB", "PAYG_H/JOB", "DEADLINE_MET")
	for _, r := range results {
		s := r.Summary
		simRow(tw, s.Policy, s.Runs, s.JobsFinished, s.CostMean, percent(s.SavingsVsOnDemand), s.CompletionHoursP50, s.CompletionHoursP95,
			s.Reclaims, s.WorkLostHoursMean, s.WaitHoursMean, s.SpotHoursMean, s.ODHoursMean, percent(s.DeadlineMetFraction))
	}
	return tw.Flush()
}
