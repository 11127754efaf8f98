package profiles

import (
	"fmt"
	"sort"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file checks a seccomp filter without libseccomp, so that the shim can
// be built without cgo: cgo alone cost the shim about 1 MiB of resident memory
// per container (docs/benchmarks.md). It gives the answers libseccomp
// 2.5.4 gives for everything that does not depend on how two rules for the
// same syscall merge: syscall names (the table in syscalls_libseccomp.go is
// read from libseccomp), architectures, actions (the same kernel probes),
// operators and argument indexes. Whether two rules conflict (libseccomp's
// EEXIST, "file exists") is libseccomp's own tree logic and is left to it:
// builds with cgo (harden-runc, hardenctl) run libseccomp after this check,
// and runc refuses such a filter at create. TestCheckSeccompMatchesLibseccomp
// compares the two on every name, architecture, action and operator.

// The libseccomp actions as the kernel and libseccomp spell them
// (include/seccomp.h, SCMP_ACT_*).
const (
	scmpActKillProcess uint32 = 0x80000000
	scmpActKillThread  uint32 = 0x00000000
	scmpActTrap        uint32 = 0x00030000
	scmpActErrno       uint32 = 0x00050000
	scmpActTrace       uint32 = 0x7ff00000
	scmpActLog         uint32 = 0x7ffc0000
	scmpActAllow       uint32 = 0x7fff0000
	scmpActNotify      uint32 = 0x7fc00000
	// maxErrno is libseccomp's bound on SCMP_ACT_ERRNO's code (src/system.h).
	maxErrno = 4095
)

// scmpAction is what runc hands libseccomp for an OCI action: the code is
// cut to int16 as runc does (SetReturnCode(int16(*errnoRet))), so only its
// low 16 bits reach the filter.
func scmpAction(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	code := uint32(1) // EPERM, runc's default
	if errno != nil {
		code = uint32(*errno & 0xffff)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return scmpActKillThread, nil
	case specs.ActKillProcess:
		return scmpActKillProcess, nil
	case specs.ActTrap:
		return scmpActTrap, nil
	case specs.ActErrno:
		return scmpActErrno | code, nil
	case specs.ActTrace:
		return scmpActTrace | code, nil
	case specs.ActAllow:
		return scmpActAllow, nil
	case specs.ActLog:
		return scmpActLog, nil
	case specs.ActNotify:
		return scmpActNotify, nil
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// validAction is libseccomp's sys_chk_seccomp_action: the errno must be
// below MAX_ERRNO, and KILL_PROCESS, LOG and NOTIFY need a kernel that has
// them. rule is true for a rule's action (not the default), where
// libseccomp also refuses NOTIFY on a kernel without TSYNC_ESRCH, because
// libseccomp-golang turns TSYNC on for every filter.
func validAction(act uint32, rule bool) error {
	k := seccompKernel()
	switch {
	case act&0xffff0000 == scmpActErrno:
		if act&0xffff >= maxErrno {
			return fmt.Errorf("errno %d is out of range: libseccomp accepts 0 to %d", act&0xffff, maxErrno-1)
		}
	case act == scmpActKillProcess && !k.killProcess:
		return fmt.Errorf("this kernel has no SCMP_ACT_KILL_PROCESS (Linux 4.14)")
	case act == scmpActLog && !k.log:
		return fmt.Errorf("this kernel has no SCMP_ACT_LOG (Linux 4.14)")
	case act == scmpActNotify && !k.notify:
		return fmt.Errorf("this kernel has no SCMP_ACT_NOTIFY (Linux 5.0)")
	case act == scmpActNotify && rule && k.tsync && !k.tsyncESRCH:
		return fmt.Errorf("SCMP_ACT_NOTIFY needs SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7) with libseccomp's TSYNC")
	}
	return nil
}

// validOperator is the OCI operators libseccomp has (SCMP_CMP_*).
func validOperator(op specs.LinuxSeccompOperator) error {
	switch op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
		specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual:
		return nil
	}
	return fmt.Errorf("unknown operator %q", op)
}

// scmpArch is one libseccomp architecture as libseccomp-golang's
// GetArchFromString names it.
type scmpArch struct {
	// supported is false for the architectures libseccomp 2.5.4 does not
	// have (libseccomp-golang maps them to ARCH_BAD).
	supported bool
	bigEndian bool
}

// scmpArches maps every name libseccomp-golang's GetArchFromString accepts
// (after strings.ToLower) to its architecture. A filter holds one byte
// order only: libseccomp refuses the others with EDOM.
var scmpArches = map[string]scmpArch{
	"x86": {true, false}, "amd64": {true, false}, "x86-64": {true, false}, "x86_64": {true, false},
	"x64": {true, false}, "x32": {true, false}, "arm": {true, false}, "arm64": {true, false},
	"aarch64": {true, false}, "mips": {true, true}, "mips64": {true, true}, "mips64n32": {true, true},
	"mipsel": {true, false}, "mipsel64": {true, false}, "mipsel64n32": {true, false},
	"ppc": {true, true}, "ppc64": {true, true}, "ppc64le": {true, false}, "s390": {true, true},
	"s390x": {true, true}, "parisc": {true, true}, "parisc64": {true, true}, "riscv64": {true, false},
	"loong64": {false, false}, "loongarch64": {false, false}, "m68k": {false, true},
	"sh": {false, false}, "sheb": {false, true},
}

// nativeBigEndian is the byte order of the filter's native architecture,
// which libseccomp adds to every filter first.
var nativeBigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// checkArch is what AddArch answers for one OCI architecture name.
func checkArch(a specs.Arch) error {
	arch, ok := scmpArches[archName(a)]
	switch {
	case !ok:
		return fmt.Errorf("unknown architecture")
	case !arch.supported:
		return fmt.Errorf("libseccomp %s does not support this architecture", libseccompVersion)
	case arch.bigEndian != nativeBigEndian:
		return fmt.Errorf("a filter holds one byte order and this architecture's differs from the host's")
	}
	return nil
}

// archName turns "SCMP_ARCH_X86_64" into the "x86_64" libseccomp parses.
func archName(a specs.Arch) string {
	return strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
}

// libseccompKnows reports whether libseccomp resolves the name, as
// seccomp_syscall_resolve_name does: C sees the name up to its first NUL.
func libseccompKnows(name string) bool {
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	i := sort.SearchStrings(libseccompSyscalls[:], name)
	return i < len(libseccompSyscalls) && libseccompSyscalls[i] == name
}

// knownSyscall checks a syscall name a person wrote against the names
// libseccomp, the library runc and crun compile filters with, knows.
func knownSyscall(name string) error {
	if !libseccompKnows(name) && !newerSyscalls[name] {
		return fmt.Errorf("unknown syscall %q (libseccomp does not know it)", name)
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

// checkSeccomp refuses what runc's libseccomp would refuse when it builds
// the filter (libcontainer/seccomp/seccomp_linux.go), in the order runc
// meets it, except a conflict between two rules for one syscall (see the
// top of this file). Rules whose action equals the default are skipped, as
// runc skips them; conditions on the same argument become separate rules.
// Syscall names libseccomp does not know are skipped as runc skips them,
// unless strictNames is set (for profiles a person wrote, where a typo must
// not pass silently).
func checkSeccomp(f *specs.LinuxSeccomp, strictNames bool) error {
	def, err := scmpAction(f.DefaultAction, f.DefaultErrnoRet)
	if err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	if err := validAction(def, false); err != nil {
		return fmt.Errorf("defaultAction: %w", err)
	}
	for _, a := range f.Architectures {
		if err := checkArch(a); err != nil {
			return fmt.Errorf("architectures: %q: %w", a, err)
		}
	}
	for i, r := range f.Syscalls {
		act, err := scmpAction(r.Action, r.ErrnoRet)
		if err != nil {
			return fmt.Errorf("syscalls[%d].action: %w", i, err)
		}
		if act == def {
			continue
		}
		for j, a := range r.Args {
			if err := validOperator(a.Op); err != nil {
				return fmt.Errorf("syscalls[%d].args[%d]: %w", i, j, err)
			}
			if a.Index > 5 {
				return fmt.Errorf("syscalls[%d].args[%d]: index %d: syscalls have 6 arguments (0-5)", i, j, a.Index)
			}
		}
		// libseccomp checks the action when a rule is added, so a rule
		// whose names it all skips is never checked.
		for _, name := range r.Names {
			if !libseccompKnows(name) {
				if strictNames && !newerSyscalls[name] {
					return fmt.Errorf("syscalls[%d]: unknown syscall %q", i, name)
				}
				continue
			}
			if err := validAction(act, true); err != nil {
				return fmt.Errorf("syscalls[%d]: add rule for %q: %w", i, name, err)
			}
		}
	}
	return nil
}
