// The pod sandbox's one process for the local real node: it holds the pod's
// namespaces and waits until the runtime stops it. A static binary in an image
// of its own, so the node needs no registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
