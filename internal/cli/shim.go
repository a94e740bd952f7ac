package cli

import "github.com/spf13/cobra"

// newShimCommand is replaced by the runtime's shim entry point.
func newShimCommand(streams Streams) *cobra.Command {
	return &cobra.Command{Use: "shim", Hidden: true}
}
