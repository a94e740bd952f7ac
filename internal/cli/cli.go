// Package cli holds the spoteci command line: one cobra command per subcommand,
// all writing data to Streams.Out and diagnostics to Streams.ErrOut.
package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Streams are the standard streams a command reads and writes; tests pass buffers.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Run executes the spoteci command line given by args (without the program name).
func Run(ctx context.Context, streams Streams, args []string) error {
	root := newRoot(streams)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	return root.ExecuteContext(ctx)
}

func newRoot(streams Streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "spoteci",
		Short:         "Spot elastic container instances for Kubernetes, run locally",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newUpCommand(streams),
		newDownCommand(streams),
		newServerCommand(streams),
		newNodeCommand(streams),
		newDemoCommand(streams),
		newMarketCommand(streams),
		newInstancesCommand(streams),
		newDescribeCommand(streams),
		newCreateCommand(streams),
		newDeleteCommand(streams),
		newLogsCommand(streams),
		newBillCommand(streams),
		newPriceCommand(streams),
		newSimCommand(streams),
		newImageCommand(streams),
	)
	return root
}
