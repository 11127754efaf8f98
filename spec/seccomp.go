package spec

import (
	"fmt"
	"reflect"
	"slices"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SeccompBuilder produces the seccomp filter for a spec. It receives the spec
// after every other mutator ran, because the filter depends on the final
// capabilities (moby/profiles adds syscalls for CAP_SYS_ADMIN, CAP_BPF, ...).
// The filter it returns belongs to the caller.
type SeccompBuilder func(s *specs.Spec) (*specs.LinuxSeccomp, error)

// SeccompOption changes how SetSeccompProfile installs its filter.
type SeccompOption func(*seccompOptions)

type seccompOptions struct {
	complainRule string // "" when the filter enforces
	logRule      string // "" when denials are not flagged for logging
}

// Complain installs the filter in complain mode: every action that denies a
// syscall becomes SCMP_ACT_LOG (ComplainSeccomp), so the workload keeps
// running and the kernel logs each syscall the filter would have denied. It
// widens the container on purpose: the policy must ask for it, the change is
// recorded under rule, and NeverWidens accepts it only with SeccompComplain.
func Complain(rule string) SeccompOption {
	return func(o *seccompOptions) { o.complainRule = rule }
}

// LogDenials adds SECCOMP_FILTER_FLAG_LOG to the filter's flags, so the
// kernel logs every action other than SCMP_ACT_ALLOW (subject to
// /proc/sys/kernel/seccomp/actions_logged), the change recorded under rule.
func LogDenials(rule string) SeccompOption {
	return func(o *seccompOptions) { o.logRule = rule }
}

// SetSeccompProfile installs the filter that build returns as
// linux.seccomp. The policy's filter replaces what the engine sent: a
// workload must not choose a weaker one (Kubernetes "Unconfined", Docker
// seccomp=unconfined). It never clears seccomp; a nil filter from build
// leaves the spec's own.
func SetSeccompProfile(rule, name string, build SeccompBuilder, opts ...SeccompOption) Mutator {
	var o seccompOptions
	for _, opt := range opts {
		opt(&o)
	}
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
		var extra []Change
		if o.complainRule != "" {
			var converted []string
			want, converted = ComplainSeccomp(want)
			extra = append(extra, Change{
				Rule: o.complainRule, Path: "linux.seccomp", Op: OpSet,
				Before: converted, After: string(specs.ActLog),
				Reason: "complain mode (the policy asks for it): syscalls the profile denies are logged and ALLOWED, so the container is not protected by this filter",
			})
		}
		if o.logRule != "" && !slices.Contains(want.Flags, specs.LinuxSeccompFlagLog) {
			want.Flags = append(slices.Clone(want.Flags), specs.LinuxSeccompFlagLog)
			extra = append(extra, Change{
				Rule: o.logRule, Path: "linux.seccomp.flags", Op: OpAdd,
				After:  []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
				Reason: "the kernel logs every syscall the filter does not allow (see /proc/sys/kernel/seccomp/actions_logged)",
			})
		}
		l := ensureLinux(s)
		if l.Seccomp != nil && reflect.DeepEqual(l.Seccomp, want) {
			return nil, nil
		}
		before := SeccompSummary(l.Seccomp)
		l.Seccomp = want
		changes := []Change{{Rule: rule, Path: "linux.seccomp", Op: OpSet, Before: before, After: name + " " + SeccompSummary(want), Reason: "filter syscalls with the profile's seccomp policy"}}
		return append(changes, extra...), nil
	})
}

// DeniesSyscall reports whether action a stops the syscall: an errno, a
// SIGSYS or a kill. SCMP_ACT_ALLOW and SCMP_ACT_LOG let it run;
// SCMP_ACT_TRACE and SCMP_ACT_NOTIFY hand the decision to another process.
func DeniesSyscall(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActErrno, specs.ActTrap, specs.ActKill, specs.ActKillThread, specs.ActKillProcess:
		return true
	}
	return false
}

// ComplainSeccomp returns a copy of f in which every action that denies a
// syscall, the default action and each rule's, is SCMP_ACT_LOG: the kernel
// logs the syscall (when "log" is in /proc/sys/kernel/seccomp/actions_logged,
// as it is by default) and lets it run. converted lists what was replaced
// ("defaultAction SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS: ptrace").
//
// One kind of rule is kept: SCMP_ACT_ERRNO returning ENOSYS. It does not
// deny, it pretends the syscall does not exist so that libc falls back to an
// older one the filter can inspect (moby's profile answers clone3 with
// ENOSYS because clone3's flags are in memory seccomp cannot read; glibc then
// uses clone, whose namespace flags the filter checks). Logging it instead
// would let clone3 bypass the clone check and record every thread creation
// as a "denial" whose fix, allowing clone3, would be wrong.
func ComplainSeccomp(f *specs.LinuxSeccomp) (complain *specs.LinuxSeccomp, converted []string) {
	c := *f
	c.Architectures = slices.Clone(f.Architectures)
	c.Flags = slices.Clone(f.Flags)
	if DeniesSyscall(c.DefaultAction) {
		converted = append(converted, "defaultAction "+string(c.DefaultAction))
		c.DefaultAction, c.DefaultErrnoRet = specs.ActLog, nil
	}
	c.Syscalls = make([]specs.LinuxSyscall, 0, len(f.Syscalls))
	for _, r := range f.Syscalls {
		if DeniesSyscall(r.Action) && !isENOSYS(r) {
			converted = append(converted, fmt.Sprintf("%s: %v", r.Action, r.Names))
			r.Action, r.ErrnoRet = specs.ActLog, nil
		}
		c.Syscalls = append(c.Syscalls, r)
	}
	return &c, converted
}

func isENOSYS(r specs.LinuxSyscall) bool {
	return r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == uint(syscall.ENOSYS)
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
	s := fmt.Sprintf("defaultAction %s, %d syscall names in %d rules", sc.DefaultAction, n, len(sc.Syscalls))
	if len(sc.Flags) > 0 {
		s += fmt.Sprintf(", flags %v", sc.Flags)
	}
	return s
}
