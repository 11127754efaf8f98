package profiles

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// knownSyscall checks a syscall name a person wrote against libseccomp, the
// library runc and crun compile filters with.
func knownSyscall(name string) error {
	if _, err := libseccomp.GetSyscallFromName(name); err != nil && !newerSyscalls[name] {
		return fmt.Errorf("unknown syscall %q (libseccomp does not know it)", name)
	}
	return nil
}

// Compile builds the filter with libseccomp the way runc does
// (libcontainer/seccomp/seccomp_linux.go): rules whose action equals the
// default are skipped, conditions on the same argument become separate
// rules. It fails on anything runc would refuse: an unknown action, operator
// or architecture, an impossible condition. Syscall names libseccomp does
// not know are skipped as runc skips them, unless strictNames is set (for
// profiles a person wrote, where a typo must not pass silently).
func Compile(f *specs.LinuxSeccomp, strictNames bool) error {
	def, err := action(f.DefaultAction, f.DefaultErrnoRet)
	if err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	filter, err := libseccomp.NewFilter(def)
	if err != nil {
		return fmt.Errorf("create filter: %w", err)
	}
	defer filter.Release()
	for _, a := range f.Architectures {
		arch, err := libseccomp.GetArchFromString(archName(a))
		if err != nil {
			return fmt.Errorf("architectures: %q: %w", a, err)
		}
		if err := filter.AddArch(arch); err != nil {
			return fmt.Errorf("architectures: %q: %w", a, err)
		}
	}
	for i, r := range f.Syscalls {
		act, err := action(r.Action, r.ErrnoRet)
		if err != nil {
			return fmt.Errorf("syscalls[%d].action: %w", i, err)
		}
		if act == def {
			continue
		}
		conds := make([]libseccomp.ScmpCondition, 0, len(r.Args))
		perArg := map[uint]int{}
		for j, a := range r.Args {
			op, err := operator(a.Op)
			if err != nil {
				return fmt.Errorf("syscalls[%d].args[%d]: %w", i, j, err)
			}
			vals := []uint64{a.Value}
			if a.Op == specs.OpMaskedEqual {
				vals = append(vals, a.ValueTwo)
			}
			c, err := libseccomp.MakeCondition(a.Index, op, vals...)
			if err != nil {
				return fmt.Errorf("syscalls[%d].args[%d]: %w", i, j, err)
			}
			conds = append(conds, c)
			perArg[a.Index]++
		}
		split := false
		for _, n := range perArg {
			split = split || n > 1
		}
		for _, name := range r.Names {
			call, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				if strictNames && !newerSyscalls[name] {
					return fmt.Errorf("syscalls[%d]: unknown syscall %q", i, name)
				}
				continue
			}
			switch {
			case len(conds) == 0:
				err = filter.AddRule(call, act)
			case split:
				for _, c := range conds {
					if err = filter.AddRuleConditional(call, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = filter.AddRuleConditional(call, act, conds)
			}
			if err != nil {
				return fmt.Errorf("syscalls[%d]: add rule for %q: %w", i, name, err)
			}
		}
	}
	return nil
}

// newerSyscalls are real Linux syscalls that libseccomp releases older than
// the kernel may not know yet (Debian 12 ships 2.5.4). runc skips them; a
// profile that names them is not mistaken.
var newerSyscalls = map[string]bool{
	"cachestat": true, "fchmodat2": true, "file_getattr": true, "file_setattr": true,
	"futex_requeue": true, "futex_wait": true, "futex_wake": true, "getxattrat": true,
	"listmount": true, "listxattrat": true, "lsm_get_self_attr": true, "lsm_list_modules": true,
	"lsm_set_self_attr": true, "map_shadow_stack": true, "mseal": true, "open_tree_attr": true,
	"removexattrat": true, "riscv_hwprobe": true, "setxattrat": true, "statmount": true,
	"uretprobe": true,
}

func action(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		code := int16(1) // EPERM, runc's default
		if errno != nil {
			code = int16(*errno)
		}
		return libseccomp.ActErrno.SetReturnCode(code), nil
	case specs.ActTrace:
		code := int16(1)
		if errno != nil {
			code = int16(*errno)
		}
		return libseccomp.ActTrace.SetReturnCode(code), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	case specs.ActNotify:
		return libseccomp.ActNotify, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
}

func operator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("unknown operator %q", op)
}

// archName turns "SCMP_ARCH_X86_64" into the "x86_64" libseccomp parses.
func archName(a specs.Arch) string {
	return strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
}
