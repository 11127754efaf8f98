package spec

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Exception names a widening that NeverWidens accepts, in one precise form,
// because the policy asked for it explicitly.
type Exception string

// SeccompComplain accepts a seccomp default action that denied (errno,
// SIGSYS, kill) becoming SCMP_ACT_LOG, and nothing else: not
// SCMP_ACT_ALLOW, not a lost filter. The caller passes it only when the
// seccomp profile that applies sets complain mode.
const SeccompComplain Exception = "seccomp.complain"

// NeverWidens checks that after grants nothing before did not: no capability
// added, no_new_privileges and read-only root kept, seccomp not cleared nor
// its default action turned from denying to letting syscalls run, no flag
// that weakens it added, no masked or read-only path removed, no namespace
// dropped, no limit raised, no device, sysctl or mount that is not a
// restricted scratch tmpfs added. It is the invariant every mutator
// promises; tests and fuzzing hold Apply to it, and the entry points run it
// on every decision as a last line of defence. exceptions accept the
// widenings the policy asked for, each in its one precise form.
//
// The policy's filter replaces the engine's, so filters are compared by
// their default action and flags, not rule by rule: a rule-level comparison
// of two different filters says nothing reliable.
func NeverWidens(before, after *specs.Spec, exceptions ...Exception) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	bp, ap := before.Process, after.Process
	if bp != nil && ap != nil {
		bc, ac := bp.Capabilities, ap.Capabilities
		if bc == nil && ac != nil && !emptyCaps(ac) {
			bad("process.capabilities: added where the spec had none")
		}
		if bc != nil && ac != nil {
			for _, set := range [][3]any{
				{"bounding", bc.Bounding, ac.Bounding}, {"effective", bc.Effective, ac.Effective},
				{"permitted", bc.Permitted, ac.Permitted}, {"inheritable", bc.Inheritable, ac.Inheritable},
				{"ambient", bc.Ambient, ac.Ambient},
			} {
				if extra := missingFrom(set[1].([]string), set[2].([]string)); len(extra) > 0 {
					bad("process.capabilities.%s: added %v", set[0], extra)
				}
			}
		}
		if bp.NoNewPrivileges && !ap.NoNewPrivileges {
			bad("process.noNewPrivileges: turned off")
		}
		if bp.ApparmorProfile != "" && bp.ApparmorProfile != "unconfined" && (ap.ApparmorProfile == "" || ap.ApparmorProfile == "unconfined") {
			bad("process.apparmorProfile: confinement removed")
		}
		if bp.SelinuxLabel != "" && ap.SelinuxLabel == "" {
			bad("process.selinuxLabel: removed")
		}
		if bp.User.UID != ap.User.UID || bp.User.GID != ap.User.GID {
			bad("process.user: changed")
		}
	}
	if before.Root != nil && before.Root.Readonly && (after.Root == nil || !after.Root.Readonly) {
		bad("root.readonly: turned off")
	}

	bl, al := before.Linux, after.Linux
	if bl != nil {
		if al == nil {
			bad("linux: removed")
		} else {
			if bl.Seccomp != nil && al.Seccomp == nil {
				bad("linux.seccomp: cleared")
			}
			if err := seccompNotWeakened(bl.Seccomp, al.Seccomp, slices.Contains(exceptions, SeccompComplain)); err != nil {
				errs = append(errs, err)
			}
			if m := missingFrom(al.MaskedPaths, bl.MaskedPaths); len(m) > 0 {
				bad("linux.maskedPaths: removed %v", m)
			}
			if m := missingFrom(al.ReadonlyPaths, bl.ReadonlyPaths); len(m) > 0 {
				bad("linux.readonlyPaths: removed %v", m)
			}
			for _, n := range bl.Namespaces {
				if !slices.Contains(al.Namespaces, n) {
					bad("linux.namespaces: removed %s", n.Type)
				}
			}
			for k := range al.Sysctl {
				if _, ok := bl.Sysctl[k]; !ok {
					bad("linux.sysctl: added %s", k)
				}
			}
			for _, d := range al.Devices {
				if !slices.ContainsFunc(bl.Devices, func(o specs.LinuxDevice) bool { return o.Path == d.Path }) {
					bad("linux.devices: added %s", d.Path)
				}
			}
			if err := resourcesNotRaised(bl.Resources, al.Resources); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, m := range after.Mounts {
		if slices.ContainsFunc(before.Mounts, func(o specs.Mount) bool { return o.Destination == m.Destination && o.Source == m.Source }) {
			continue
		}
		if m.Type != "tmpfs" || !slices.Contains(m.Options, "nosuid") || !slices.Contains(m.Options, "nodev") || !slices.Contains(m.Options, "noexec") {
			bad("mounts: added %s from %s", m.Destination, m.Source)
		}
	}
	return errors.Join(errs...)
}

// seccompNotWeakened compares two filters' default actions and flags. With
// complain, a denying default may become SCMP_ACT_LOG (and only that).
func seccompNotWeakened(b, a *specs.LinuxSeccomp, complain bool) error {
	if b == nil || a == nil {
		return nil
	}
	if DeniesSyscall(b.DefaultAction) && !DeniesSyscall(a.DefaultAction) {
		if !complain || a.DefaultAction != specs.ActLog {
			return fmt.Errorf("linux.seccomp.defaultAction: %s denies, %s does not", b.DefaultAction, a.DefaultAction)
		}
	}
	// No syscall the replaced filter denied (by its default or by a rule
	// without conditions) or allowed only with certain arguments may be
	// allowed unconditionally (IntersectSeccomp keeps that).
	if !complain && DeniesSyscall(a.DefaultAction) && !reflect.DeepEqual(a, b) {
		bv := verdicts(b)
		var widened []string
		for _, r := range a.Syscalls {
			if !allows(r.Action) || len(r.Args) > 0 {
				continue
			}
			for _, n := range r.Names {
				if !verdictOf(bv, b, n).allowed {
					widened = append(widened, n)
				}
			}
		}
		if len(widened) > 0 {
			return fmt.Errorf("linux.seccomp.syscalls: allows %v, which the replaced filter denied or allowed only with certain arguments", widened)
		}
	}
	// SPEC_ALLOW turns off the speculative store bypass mitigation the
	// kernel applies to every seccomp-filtered task.
	if slices.Contains(a.Flags, specs.LinuxSeccompFlagSpecAllow) && !slices.Contains(b.Flags, specs.LinuxSeccompFlagSpecAllow) {
		return fmt.Errorf("linux.seccomp.flags: added %s", specs.LinuxSeccompFlagSpecAllow)
	}
	return nil
}

func emptyCaps(c *specs.LinuxCapabilities) bool {
	return len(c.Bounding)+len(c.Effective)+len(c.Permitted)+len(c.Inheritable)+len(c.Ambient) == 0
}

// missingFrom returns the members of b that a lacks.
func missingFrom(a, b []string) []string {
	var out []string
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}

func resourcesNotRaised(b, a *specs.LinuxResources) error {
	if b == nil {
		return nil
	}
	if a == nil {
		return errors.New("linux.resources: removed")
	}
	var errs []error
	limitKept := func(path string, bv, av *int64) {
		if bv == nil || *bv <= 0 {
			return
		}
		if av == nil || *av <= 0 || *av > *bv {
			errs = append(errs, fmt.Errorf("%s: raised from %d to %v", path, *bv, deref(av)))
		}
	}
	if b.Memory != nil {
		var av *int64
		if a.Memory != nil {
			av = a.Memory.Limit
		}
		limitKept("linux.resources.memory.limit", b.Memory.Limit, av)
	}
	if b.Pids != nil {
		var av *int64
		if a.Pids != nil {
			av = a.Pids.Limit
		}
		limitKept("linux.resources.pids.limit", b.Pids.Limit, av)
	}
	if b.CPU != nil && b.CPU.Quota != nil && *b.CPU.Quota > 0 {
		if a.CPU == nil || a.CPU.Quota == nil || *a.CPU.Quota <= 0 || quotaRatio(a.CPU) > quotaRatio(b.CPU) {
			errs = append(errs, errors.New("linux.resources.cpu.quota: raised"))
		}
	}
	if len(a.Devices) > len(b.Devices) {
		for _, d := range a.Devices[len(b.Devices):] {
			if d.Allow {
				errs = append(errs, fmt.Errorf("linux.resources.devices: added an allow rule for %s", d.Access))
			}
		}
	}
	return errors.Join(errs...)
}

func quotaRatio(c *specs.LinuxCPU) float64 {
	p := uint64(defaultCPUPeriod)
	if c.Period != nil && *c.Period > 0 {
		p = *c.Period
	}
	return float64(*c.Quota) / float64(p)
}

func deref(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}
