package cli

import (
	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/runtime"
)

// newShimCommand returns the hidden `spoteci shim` command: the supervisor of
// one container, started detached by the runtime (runtime.Host.Start), never
// by hand. It does its work in RunE only, so that starting it stays cheap.
func newShimCommand(streams Streams) *cobra.Command {
	var opts runtime.ShimOptions
	cmd := &cobra.Command{
		Use:    "shim --dir DIR --id ID --container NAME",
		Short:  "Run and supervise one container of an instance (started by the runtime)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runtime.RunShim(cmd.Context(), opts)
		},
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", "", "state folder of the runtime")
	f.StringVar(&opts.ID, "id", "", "instance id")
	f.StringVar(&opts.Container, "container", "", "container name")
	for _, name := range []string{"dir", "id", "container"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
