// Command spoteci-shim supervises one container, exactly as `spoteci shim`
// does, from a binary that links nothing but the runtime: every container
// start pays for the shim's start, and the whole spoteci binary spends about
// 15 ms initialising packages (client-go, Prometheus, SQLite) that a shim never
// uses. The runtime starts it with the same arguments as `spoteci shim`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/spoteci/spoteci/internal/runtime"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "shim" {
		args = args[1:] // the runtime's argv names the subcommand of the big binary
	}
	var opts runtime.ShimOptions
	fs := flag.NewFlagSet("spoteci-shim", flag.ExitOnError)
	fs.StringVar(&opts.Dir, "dir", "", "state folder of the runtime")
	fs.StringVar(&opts.ID, "id", "", "instance id")
	fs.StringVar(&opts.Container, "container", "", "container name")
	fs.Parse(args)
	if opts.Dir == "" || opts.ID == "" || opts.Container == "" {
		fmt.Fprintln(os.Stderr, "spoteci-shim: --dir, --id and --container are required")
		os.Exit(2)
	}
	if err := runtime.RunShim(context.Background(), opts); err != nil {
		fmt.Fprintln(os.Stderr, "spoteci-shim:", err)
		os.Exit(1)
	}
}
