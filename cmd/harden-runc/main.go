// Command harden-runc is a runc-compatible runtime for engines that drive a
// runtime binary (Docker with a runtime path, Podman --runtime, CRI-O
// runtime_path, the runc shim's BinaryName): it hardens create, run,
// restore, exec and update with harden's policy, then execs the real runtime
// with the same command line. Its own flags, before the subcommand:
//
//	--harden-config FILE     node configuration (default $HARDEN_CONFIG, else /etc/harden/config.toml)
//	--harden-runtime NAME    run this runtime: runc, crun, runsc, or a path
//
// `harden-runc --version` prints the real runtime's version: engines parse it.
package main

import (
	"os"

	"github.com/harden-dev/harden/runcwrap"
)

func main() {
	os.Exit(runcwrap.Main())
}
