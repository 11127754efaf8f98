// Command containerd-shim-harden-v2 is harden's containerd shim (runtime
// type io.containerd.harden.v2): the runc shim with every container hardened
// at Create, Exec and Update.
package main

import (
	"context"

	hshim "github.com/harden-dev/harden/shim"
)

func main() {
	hshim.Main(context.Background())
}
