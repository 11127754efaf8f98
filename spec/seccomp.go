package spec

import (
	"fmt"
	"reflect"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompBuilder produces the seccomp filter for a spec. It receives the spec
// after every other mutator ran, because the filter depends on the final
// capabilities (moby/profiles adds syscalls for CAP_SYS_ADMIN, CAP_BPF, ...).
type SeccompBuilder func(s *specs.Spec) (*specs.LinuxSeccomp, error)

// SetSeccompProfile installs the filter that build returns as
// linux.seccomp. The policy's filter replaces what the engine sent: a
// workload must not choose a weaker one (Kubernetes "Unconfined", Docker
// seccomp=unconfined). It never clears seccomp; a nil filter from build
// leaves the spec's own.
func SetSeccompProfile(rule, name string, build SeccompBuilder) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil {
			// No process: nothing would run under the filter (an update
			// or a bare linux section).
			return nil, nil
		}
		want, err := build(s)
		if err != nil {
			return nil, fmt.Errorf("build seccomp profile %q: %w", name, err)
		}
		if want == nil {
			return nil, nil
		}
		l := ensureLinux(s)
		if l.Seccomp != nil && reflect.DeepEqual(l.Seccomp, want) {
			return nil, nil
		}
		before := SeccompSummary(l.Seccomp)
		l.Seccomp = want
		return []Change{{Rule: rule, Path: "linux.seccomp", Op: OpSet, Before: before, After: name + " " + SeccompSummary(want), Reason: "filter syscalls with the profile's seccomp policy"}}, nil
	})
}

// SeccompSummary describes a filter in one line for records and diffs:
// "defaultAction SCMP_ACT_ERRNO, 354 syscalls in 12 rules", or "(none)".
func SeccompSummary(sc *specs.LinuxSeccomp) string {
	if sc == nil {
		return "(none)"
	}
	n := 0
	for _, r := range sc.Syscalls {
		n += len(r.Names)
	}
	return fmt.Sprintf("defaultAction %s, %d syscall names in %d rules", sc.DefaultAction, n, len(sc.Syscalls))
}
