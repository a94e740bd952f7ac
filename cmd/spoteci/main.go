// Command spoteci runs the spot ECI service, its market and, later, the virtual node.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/spoteci/spoteci/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir := os.Getenv("SPOTECI_CPU_PROFILE"); dir != "" {
		defer profileCPU(dir)()
	}
	if err := cli.Run(ctx, cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// profileCPU writes a CPU profile of this process into dir, named after
// its command and pid, until the returned function is called: where a
// benchmark's CPU goes (SPOTECI_CPU_PROFILE=dir).
func profileCPU(dir string) func() {
	name := "spoteci"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	f, err := os.Create(filepath.Join(dir, name+"-"+strconv.Itoa(os.Getpid())+".pprof"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "cpu profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
