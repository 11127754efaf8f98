//go:build !cgo

package profiles

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Compile checks the filter as runc's libseccomp will see it, without
// libseccomp: this is the build of the containerd shim, which has no cgo
// to keep its memory at the runc shim's (docs/benchmarks.md). It refuses
// everything libseccomp refuses except two rules for one syscall that
// conflict; runc refuses those at create, and `hardenctl policy validate`
// (built with cgo) at load. Syscall names libseccomp does not know are
// skipped as runc skips them, unless strictNames is set.
func Compile(f *specs.LinuxSeccomp, strictNames bool) error {
	return checkSeccomp(f, strictNames)
}
