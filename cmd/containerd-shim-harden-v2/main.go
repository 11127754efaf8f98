// Command containerd-shim-harden-v2 is harden's containerd shim (runtime
// type io.containerd.harden.v2): the runc shim with every container hardened
// at Create, Exec and Update.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/shim"

	hshim "github.com/harden-dev/harden/shim"
)

func main() {
	hshim.Register()
	shim.RunShim(context.Background(), hshim.NewManager())
}
