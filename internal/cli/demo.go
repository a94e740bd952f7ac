package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/examples"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
	"github.com/spoteci/spoteci/pkg/eci/wire"
)

// longJob is the guide's Job (the same annotations and image) with a
// container that first works for 20 s, so that the market can reclaim it
// while it runs: the guide's own pi takes about a second.
const longJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: pi-long
spec:
  template:
    metadata:
      annotations:
        k8s.aliyun.com/eci-use-specs: ecs.c5.large,2-4Gi
        k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo
    spec:
      containers:
      - name: pi
        image: registry-vpc.cn-beijing.aliyuncs.com/ostest/perl
        command: ["sh", "-c", "sleep 20; perl -Mbignum=bpi -wle 'print bpi(2000)'"]
      restartPolicy: Never
`

func newDemoCommand(streams Streams) *cobra.Command {
	var binDir, stateDir string
	var scale float64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the guide's scenario end to end in about a minute: a Job on spot ECI, a reclaim, its replacement, the bill",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if stateDir == "" {
				dir, err := os.MkdirTemp("", "spoteci-demo")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				stateDir = dir
			}
			return runDemo(cmd.Context(), streams, binDir, stateDir, scale)
		},
	}
	cmd.Flags().StringVar(&binDir, "bin-dir", defaultBinDir(), "folder with the control plane and kubectl (make kube)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state folder (default: a temporary one, removed after)")
	cmd.Flags().Float64Var(&scale, "time-scale", 360, "market time runs this many times faster (360: the 1-hour protection lasts 10 s)")
	return cmd
}

type demo struct {
	out       io.Writer
	kubectl   string
	kubeconf  string
	eci       *clients
	startedAt time.Time
}

func runDemo(ctx context.Context, streams Streams, binDir, stateDir string, scale float64) error {
	d := &demo{out: streams.Out, kubectl: filepath.Join(binDir, "kubectl"), startedAt: time.Now()}
	d.say("Starting a Kubernetes control plane, the ECI service and the virtual node (market time x%g: an hour lasts %s)",
		scale, (time.Duration(float64(time.Hour) / scale)).Round(time.Second))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o := &serverOptions{stateDir: stateDir, listen: "127.0.0.1:0", region: "cn-hangzhou", timeScale: scale,
		seed: 1, noticeLead: 5 * time.Minute, defaultStock: 10000,
		cloud: cloudOptions{imageCache: filepath.Join(binDir, "images"), registryListen: "127.0.0.1:0"}}
	st, err := startStack(ctx, log, o, binDir, DefaultNodeName)
	if err != nil {
		return err
	}
	defer func() {
		// Leave nothing behind: the instances go with the demo.
		st.stop()
		runDown(context.WithoutCancel(ctx), Streams{Out: io.Discard, ErrOut: io.Discard}, log, o)
	}()
	d.kubeconf = st.kube.Kubeconfig()
	d.say("Follow it in the web console too: %s (sign in with the Token of %s)", st.service.info.Console, filepath.Join(stateDir, eciapi.InfoFile))
	if d.eci, err = newClients(st.service.info); err != nil {
		return err
	}
	defer d.eci.Close()
	if err := d.waitFor(ctx, time.Minute, func() bool { return strings.Contains(d.quiet("get", "nodes"), " Ready") }); err != nil {
		return fmt.Errorf("the virtual node did not get Ready: %w", err)
	}

	d.say("The guide's Job, as written: spot instance, SpotAsPriceGo, specs ecs.c5.large or 2 vCPU 4 GiB")
	fmt.Fprint(d.out, indent(examples.ACKSpotJob))
	if err := d.apply(ctx, "spot_job.yaml", examples.ACKSpotJob); err != nil {
		return err
	}
	if err := d.waitFor(ctx, 2*time.Minute, func() bool { return strings.Contains(d.quiet("get", "job", "pi"), "Complete") }); err != nil {
		return err
	}
	d.run("get", "pod")
	d.run("get", "events", "--field-selector", "involvedObject.kind=Pod", "-o", "custom-columns=REASON:.reason,MESSAGE:.message")
	digits := strings.TrimSpace(d.quiet("logs", "job/pi"))
	fmt.Fprintf(d.out, "  $ kubectl logs job/pi\n    %s... (%d digits)\n", digits[:min(60, len(digits))], len(digits)-1) // all but the point

	d.say("A longer Job with the same bid, to watch a reclaim while it runs (it sleeps 20 s before computing pi)")
	fmt.Fprint(d.out, indent(longJob))
	if err := d.apply(ctx, "pi-long.yaml", longJob); err != nil {
		return err
	}
	var g wire.ContainerGroup
	if err := d.waitFor(ctx, time.Minute, func() bool {
		resp, err := d.eci.DescribeContainerGroups(ctx, eciapi.DescribeContainerGroupsRequest{Status: eciapi.StatusRunning})
		if err == nil && len(resp.ContainerGroups) == 1 {
			g = resp.ContainerGroups[0]
		}
		return g.ContainerGroupId != "" && strings.Contains(d.quiet("get", "pod", "-l", "job-name=pi-long"), "Running")
	}); err != nil {
		return err
	}
	d.run("get", "pod", "-l", "job-name=pi-long")
	resp, err := d.eci.DescribeAvailableResource(ctx, wire.DescribeAvailableResourceRequest{DestinationResource: "InstanceType", ZoneId: g.ZoneId, InstanceType: g.InstanceType})
	pools := poolsOf(resp)
	if err != nil || len(pools) != 1 {
		return fmt.Errorf("reading the pool of %s: %v", g.ContainerGroupId, err)
	}
	d.say("It runs on %s in %s at %.3f CNY/h (pay-as-you-go: %.3f). Now the zone runs out of spot stock:",
		g.InstanceType, g.ZoneId, extension(g).PurchasePrice, pools[0].OriginalPrice)
	stock := 0
	if _, err := d.eci.admin.ModifySpotMarket(ctx, eciapi.ModifySpotMarketRequest{InstanceType: g.InstanceType, ZoneId: g.ZoneId, Stock: &stock}); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  $ spoteci market set --type %s --zone %s --stock 0\n", g.InstanceType, g.ZoneId)
	d.say("SpotAsPriceGo is reclaimed only for stock. Protection lasts 1 hour; then the 5-minute check notices, and the release follows 5 minutes later")
	if err := d.waitFor(ctx, 2*time.Minute, func() bool { return strings.Contains(d.quiet("get", "pod", "-l", "job-name=pi-long"), "BidFailed") }); err != nil {
		return err
	}
	d.run("get", "events", "--field-selector", "reason=SpotToBeReleased")
	d.run("get", "pod", "-l", "job-name=pi-long")
	d.say("The reclaimed pod is kept: Failed, reason BidFailed, condition DisruptionTarget")
	d.run("get", "pod", "-l", "job-name=pi-long", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase,REASON:.status.reason,MESSAGE:.status.message")
	d.say("The Job controller replaces it (after its failure back-off of about 10 s); the replacement lands where there is stock")
	if err := d.waitFor(ctx, 2*time.Minute, func() bool {
		pods := d.quiet("get", "pod", "-l", "job-name=pi-long", "--no-headers")
		return strings.Count(pods, "\n") >= 2 && strings.Contains(pods, "Running")
	}); err != nil {
		return err
	}
	d.run("get", "pod", "-l", "job-name=pi-long")
	if err := d.waitFor(ctx, 3*time.Minute, func() bool { return strings.Contains(d.quiet("get", "job", "pi-long"), "Complete") }); err != nil {
		return err
	}
	d.say("The Job completes")
	d.run("get", "job,pod")
	done := strings.TrimSpace(d.quiet("get", "pod", "-l", "job-name=pi-long", "--field-selector", "status.phase=Succeeded", "-o", "name"))
	out := strings.TrimSpace(d.quiet("logs", done))
	fmt.Fprintf(d.out, "  $ kubectl logs %s\n    %s...\n", done, out[:min(60, len(out))])
	d.say("The bill: per second, the purchase price during protection, the market price after")
	bill, err := d.eci.admin.DescribeBill(ctx, eciapi.DescribeBillRequest{})
	if err != nil {
		return err
	}
	for _, it := range bill.Items {
		fmt.Fprintf(d.out, "  %-24s %-14s %-14s %-9s %7.3f h  %.4f CNY (pay-as-you-go %.4f)\n", it.ContainerGroupName, it.InstanceType, it.ZoneId, it.Status, it.Seconds/3600, it.Amount, it.OnDemandAmount)
	}
	fmt.Fprintf(d.out, "  total %.4f CNY, %.0f%% less than pay-as-you-go\n", bill.Amount, 100*(1-bill.Amount/bill.OnDemandAmount))
	d.say("Done in %s", time.Since(d.startedAt).Round(time.Second))
	return nil
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "\n[%4.0fs] %s\n", time.Since(d.startedAt).Seconds(), fmt.Sprintf(format, args...))
}

// run shows a kubectl command and its output, as a user would see them.
func (d *demo) run(args ...string) {
	fmt.Fprintf(d.out, "  $ kubectl %s\n%s", strings.Join(args, " "), indent(d.quiet(args...)))
}

func (d *demo) quiet(args ...string) string {
	out, _ := exec.Command(d.kubectl, append([]string{"--kubeconfig", d.kubeconf}, args...)...).CombinedOutput()
	return string(out)
}

func (d *demo) apply(ctx context.Context, file, manifest string) error {
	cmd := exec.CommandContext(ctx, d.kubectl, "--kubeconfig", d.kubeconf, "create", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(d.out, "  $ kubectl create -f %s\n%s", file, indent(string(out)))
	if err != nil {
		return fmt.Errorf("kubectl create: %w", err)
	}
	return nil
}

func (d *demo) waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			// Say where it stands: a demo that stops says why.
			return fmt.Errorf("timed out after %v; the Jobs, the pods and their events:\n%s%s%s", timeout,
				indent(d.quiet("get", "job", "-o", "custom-columns=NAME:.metadata.name,SUCCEEDED:.status.succeeded,FAILED:.status.failed,UNCOUNTED:.status.uncountedTerminatedPods,CONDITIONS:.status.conditions[*].type")),
				indent(d.quiet("get", "pod", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase,REASON:.status.reason,DELETING:.metadata.deletionTimestamp,FINALIZERS:.metadata.finalizers,NODE:.spec.nodeName")),
				indent(d.quiet("get", "events", "--sort-by=.lastTimestamp")))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "    " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
