// Command pause is the pod sandbox's process of the benchmark's real
// kubelet peer, as registry.k8s.io/pause is (which is out of reach here):
// it holds the pod's namespaces and does nothing until SIGTERM or SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
