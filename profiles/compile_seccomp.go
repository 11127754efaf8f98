//go:build cgo

package profiles

import (
	"errors"
	"fmt"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Compile checks the filter as runc's libseccomp will see it: first
// without libseccomp (checkSeccomp, the check the cgo-free shim makes),
// then by building it with libseccomp the way runc does
// (libcontainer/seccomp/seccomp_linux.go), which also refuses two rules
// for one syscall that conflict. Rules whose action equals the default are
// skipped, conditions on the same argument become separate rules. Syscall
// names libseccomp does not know are skipped as runc skips them, unless
// strictNames is set (for profiles a person wrote, where a typo must not
// pass silently).
func Compile(f *specs.LinuxSeccomp, strictNames bool) error {
	if err := checkSeccomp(f, strictNames); err != nil {
		return err
	}
	return libseccompCompile(f, strictNames)
}

// libseccompCompile builds the filter with libseccomp as runc does.
func libseccompCompile(f *specs.LinuxSeccomp, strictNames bool) error {
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
			if errors.Is(err, syscall.EEXIST) {
				// libseccomp's whole message is "file exists".
				return fmt.Errorf("syscalls[%d]: add rule for %q: %w: it conflicts with an earlier rule for the same syscall (the same argument conditions, another action)", i, name, err)
			}
			if err != nil {
				return fmt.Errorf("syscalls[%d]: add rule for %q: %w", i, name, err)
			}
		}
	}
	return nil
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
