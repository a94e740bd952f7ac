// Command spoteci-logger writes one container's output into its log file. It
// is containerd's "binary" logging driver: the container's shim starts it
// with the container's stdout on fd 3, its stderr on fd 4 and a pipe on fd 5
// that it closes once ready, so the log is written by a process that lives as
// long as the container, whatever happens to spoteci or containerd meanwhile.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spoteci/spoteci/internal/runtime/logfile"
)

func main() {
	path := flag.String("log", "", "log file to append to")
	maxSize := flag.Int64("max-size", logfile.DefaultMaxSize, "bytes a log file may hold before it is rotated")
	maxFiles := flag.Int("max-files", logfile.DefaultMaxFiles, "log files kept, the current one included")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "spoteci-logger: --log is required")
		os.Exit(2)
	}
	// A signal to the shim's process group must not cut the log short: the
	// logger ends when the container's output does.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	f, err := logfile.OpenRotating(*path, *maxSize, *maxFiles)
	ready := os.NewFile(5, "ready")
	ready.Close() // the shim waits for this before it starts the container
	if err != nil {
		fmt.Fprintln(os.Stderr, "spoteci-logger:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	for _, fd := range []uintptr{3, 4} {
		in := os.NewFile(fd, "output")
		wg.Go(func() {
			// Each record batch is one append: the two streams interleave
			// by whole records.
			if err := logfile.Copy(f, in); err != nil {
				fmt.Fprintln(os.Stderr, "spoteci-logger:", err)
			}
		})
	}
	wg.Wait()
	f.Close()
}
