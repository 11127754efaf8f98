// Command pause is the process of harden's local pod sandbox image: it blocks until SIGINT or
// SIGTERM and reaps the zombies it inherits as PID 1, like Kubernetes' pause.c. It is built
// static (CGO_ENABLED=0) by test/images/build.sh and needs nothing else in its image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
