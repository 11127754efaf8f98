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
		// The engine's filter may deny what the profile's allows (a pod's
		// own stricter Localhost profile, a recorded profile): the filter
		// harden installs never allows a syscall the one it replaces
		// denied. Not in complain mode, which the policy asks for to let
		// every syscall run: there the profile's filter is what is logged.
		var narrowed []string
		if s.Linux != nil && o.complainRule == "" {
			want, narrowed = IntersectSeccomp(want, s.Linux.Seccomp)
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
		if len(narrowed) > 0 {
			changes = append(changes, Change{Rule: rule, Path: "linux.seccomp.syscalls", Op: OpRemove, Before: narrowed,
				Reason: "the engine's filter denied these syscalls (or allowed them only with certain arguments): the profile's filter keeps those denials and conditions"})
		}
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

// allows reports whether action a lets the syscall run.
func allows(a specs.LinuxSeccompAction) bool { return a == specs.ActAllow || a == specs.ActLog }

// syscallVerdict is what a filter does with one syscall, at the level
// IntersectSeccomp reasons about.
type syscallVerdict struct {
	allowed bool                 // unconditionally (an allow rule without args, or the default)
	deny    *specs.LinuxSyscall  // an unconditional denying rule, when that is what decides
	cond    []specs.LinuxSyscall // allow rules with argument conditions (and no unconditional one)
}

// verdicts classifies every syscall f's rules name; a syscall no rule
// names gets f's default action (defaultVerdict).
func verdicts(f *specs.LinuxSeccomp) map[string]syscallVerdict {
	m := make(map[string]syscallVerdict)
	for i := range f.Syscalls {
		r := &f.Syscalls[i]
		for _, name := range r.Names {
			v := m[name]
			switch {
			case v.allowed:
			case allows(r.Action) && len(r.Args) == 0:
				v = syscallVerdict{allowed: true}
			case allows(r.Action):
				c := *r
				c.Names = []string{name}
				v.cond = append(v.cond, c)
			case len(r.Args) == 0 && v.deny == nil:
				d := *r
				d.Names = []string{name}
				v.deny = &d
			}
			m[name] = v
		}
	}
	for name, v := range m {
		switch {
		case v.allowed:
		case len(v.cond) > 0:
			v.deny = nil
		case v.deny == nil:
			v.allowed = allows(f.DefaultAction) // only conditional denials: the default decides
		}
		m[name] = v
	}
	return m
}

// verdictOf is name's verdict under a filter whose rules gave m.
func verdictOf(m map[string]syscallVerdict, f *specs.LinuxSeccomp, name string) syscallVerdict {
	if v, ok := m[name]; ok {
		return v
	}
	return syscallVerdict{allowed: allows(f.DefaultAction)}
}

// IntersectSeccomp narrows want, the filter a profile installs, so that it
// allows no syscall that engine, the filter it replaces, denied: a syscall
// the engine denied by a rule keeps that rule (its action and errno: ENOSYS
// for clone3 makes libc fall back to clone), one the engine's default
// denied is left to want's default, and one the engine allowed only with
// certain arguments gets the engine's conditional rules in place of want's
// unconditional allow. It returns want itself when nothing changes, and the
// syscalls it narrowed.
//
// Rules of want that already carry argument conditions are kept as they
// are (the conjunction of two conditional rule sets is not expressed), and
// a want whose default action lets syscalls run is returned unchanged
// (NeverWidens refuses it against a denying engine filter).
func IntersectSeccomp(want, engine *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []string) {
	if want == nil || engine == nil || !DeniesSyscall(want.DefaultAction) || reflect.DeepEqual(want, engine) {
		return want, nil
	}
	ev := verdicts(engine)
	var kept, added []specs.LinuxSyscall
	var narrowed []string
	for _, r := range want.Syscalls {
		if !allows(r.Action) || len(r.Args) > 0 {
			kept = append(kept, r)
			continue
		}
		var names []string
		for _, n := range r.Names {
			v := verdictOf(ev, engine, n)
			switch {
			case v.allowed:
				names = append(names, n)
				continue
			case v.deny != nil:
				added = append(added, *v.deny)
			case len(v.cond) > 0:
				added = append(added, v.cond...)
			}
			narrowed = append(narrowed, n)
		}
		if len(names) == len(r.Names) {
			kept = append(kept, r)
		} else if len(names) > 0 {
			r.Names = names
			kept = append(kept, r)
		}
	}
	if len(narrowed) == 0 {
		return want, nil
	}
	out := *want
	out.Syscalls = append(kept, added...)
	// A rule carried over that hands syscalls to the engine's seccomp agent
	// needs the agent's socket, or the runtime refuses the filter.
	if slices.ContainsFunc(added, func(r specs.LinuxSyscall) bool { return r.Action == specs.ActNotify }) && out.ListenerPath == "" {
		out.ListenerPath, out.ListenerMetadata = engine.ListenerPath, engine.ListenerMetadata
	}
	return &out, narrowed
}
