// Package record writes minimal seccomp profiles from what a workload does.
//
// A container is started under a recording filter (RecordingProfile) whose
// rules hand every syscall libseccomp knows to a user-space listener
// (SCMP_ACT_NOTIFY). The runtime (runc, crun) connects to the filter's
// listenerPath once the filter is installed and passes the notification fd
// with SCM_RIGHTS; the Recorder receives it, notes each syscall's name and
// architecture, and answers with SECCOMP_USER_NOTIF_FLAG_CONTINUE so the
// kernel runs the syscall as if no filter were there. Profile then turns the
// names into an OCI LinuxSeccomp that allows exactly those and denies the
// rest with EPERM, like moby's default profile denies what it does not list.
//
// CONTINUE lets the syscall run unchecked, so the workload is not confined
// while it is recorded: record only trusted workloads, in a test environment
// (seccomp_unotify(2), "Design goals; use of SECCOMP_USER_NOTIF_FLAG_CONTINUE").
// See docs/recording.md for the choice of mechanism and its limits.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/spec"
)

// unnotifiable are the syscalls a recording filter must allow instead of
// notifying. runc refuses SCMP_ACT_NOTIFY on write, because "runc init"
// writes the notification fd's number to its parent after the filter is
// installed and before any listener has the fd (runc
// libcontainer/seccomp/seccomp_linux.go, InitSeccomp). They are never seen
// by the recorder, so every profile allows them (AlwaysAllowed).
var unnotifiable = []string{"write"}

// AlwaysAllowed are allowed by every generated profile, whether or not the
// recording saw them:
//
//   - write: runc's init writes to its parent and to the exec FIFO after the
//     filter is installed, and a recording cannot observe it (unnotifiable);
//   - exit, exit_group: how every thread and process ends. A workload
//     stopped by a signal at the end of a recording (--duration) never
//     called them, and without them could not end on its own (glibc's
//     _exit tries exit_group, then exit, then crashes);
//   - rt_sigreturn: returning from any signal handler, which a recording
//     sees only if a signal happened to arrive (SIGTERM on stop, SIGCHLD,
//     the Go runtime's preemption signal);
//   - futex, nanosleep, sched_yield, rt_sigprocmask, sigaltstack, mmap,
//     munmap, madvise, getpid, gettid, tgkill, read, close: what the Go
//     runtime of "runc init" may do between installing the filter and
//     execve in one run and not another (lock contention, a garbage
//     collection, an asynchronous preemption). Missing one would make the
//     container fail to start now and then, not the workload fail.
var AlwaysAllowed = []string{
	"close", "exit", "exit_group", "futex", "getpid", "gettid", "madvise", "mmap", "munmap",
	"nanosleep", "read", "rt_sigprocmask", "rt_sigreturn", "sched_yield", "sigaltstack", "tgkill", "write",
}

// RuntimeWithoutNNP are the syscalls runc 1.4's init makes after it
// installed the filter and before execve when the container runs without
// no_new_privileges: then runc must install the filter while it still has
// its capabilities, before it sets up the user (setgroups, setgid, setuid,
// capset), changes into the working directory, fixes the stdio owners and
// closes inherited fds. Measured with this package against runc 1.4.0;
// crun differs. harden's profiles always set no_new_privileges, and so does
// ctr, under which hardenctl record runs the workload, so a recording never
// sees these: a profile meant for Docker's default (no_new_privileges off)
// or a Kubernetes pod with allowPrivilegeEscalation needs them added.
var RuntimeWithoutNNP = []string{
	"capget", "capset", "chdir", "close_range", "epoll_ctl", "faccessat2", "fchown", "getcwd", "getpid",
	"getppid", "newfstatat", "prctl", "setgid", "setgroups", "setuid", "tgkill",
}

// eperm returns a fresh pointer to EPERM, the errno of the default action,
// as in moby's profile ("defaultErrnoRet": 1) and runc's default for
// SCMP_ACT_ERRNO.
func eperm() *uint {
	e := uint(unix.EPERM)
	return &e
}

// archFamilies lists, for each native architecture, the OCI names of the
// architectures its kernel runs: the native one first, then the compat ABIs
// (moby/profiles seccomp arches()).
var archFamilies = map[libseccomp.ScmpArch][]specs.Arch{
	libseccomp.ArchAMD64:       {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	libseccomp.ArchARM64:       {specs.ArchAARCH64, specs.ArchARM},
	libseccomp.ArchMIPS64:      {specs.ArchMIPS64, specs.ArchMIPS, specs.ArchMIPS64N32},
	libseccomp.ArchMIPS64N32:   {specs.ArchMIPS64N32, specs.ArchMIPS, specs.ArchMIPS64},
	libseccomp.ArchMIPSEL64:    {specs.ArchMIPSEL64, specs.ArchMIPSEL, specs.ArchMIPSEL64N32},
	libseccomp.ArchMIPSEL64N32: {specs.ArchMIPSEL64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64},
	libseccomp.ArchS390X:       {specs.ArchS390X, specs.ArchS390},
	libseccomp.ArchPPC64LE:     {specs.ArchPPC64LE},
	libseccomp.ArchRISCV64:     {specs.ArchRISCV64},
	libseccomp.ArchLOONGARCH64: {specs.ArchLOONGARCH64},
}

// ociArch is the OCI name of a libseccomp architecture
// ("SCMP_ARCH_X86_64" for amd64).
func ociArch(a libseccomp.ScmpArch) (specs.Arch, bool) {
	switch a {
	case libseccomp.ArchAMD64:
		return specs.ArchX86_64, true
	case libseccomp.ArchARM64:
		return specs.ArchAARCH64, true
	case libseccomp.ArchLOONGARCH64:
		return specs.ArchLOONGARCH64, true
	case libseccomp.ArchInvalid, libseccomp.ArchNative:
		return "", false
	}
	s := a.String()
	if strings.HasPrefix(s, "Unknown") || strings.Contains(s, " ") {
		return "", false
	}
	return specs.Arch("SCMP_ARCH_" + strings.ToUpper(s)), true
}

// Arches returns the OCI names of the native architecture and its compat
// ABIs, native first.
func Arches() ([]specs.Arch, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	if fam, ok := archFamilies[native]; ok {
		return slices.Clone(fam), nil
	}
	a, ok := ociArch(native)
	if !ok {
		return nil, fmt.Errorf("native architecture %s has no OCI name", native)
	}
	return []specs.Arch{a}, nil
}

// maxSyscallNumber bounds the scan of the native syscall table. The largest
// native number on any architecture libseccomp supports is below 1024
// (x32's are flagged with bit 30 and not native).
const maxSyscallNumber = 1024

// KnownSyscalls lists the native architecture's syscalls that libseccomp
// can name, sorted. A filter can only name these: runc and crun resolve
// every rule's name with libseccomp and skip the names it does not know.
func KnownSyscalls() ([]string, error) {
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("native architecture: %w", err)
	}
	var names []string
	for nr := range maxSyscallNumber {
		name, err := libseccomp.ScmpSyscall(nr).GetNameByArch(native)
		if err != nil || name == "" || strings.HasPrefix(name, "UNKNOWN") {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, errors.New("libseccomp names no syscall of the native architecture")
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// RecordingProfile is the filter a container runs under while it is
// recorded. Every syscall libseccomp can name is SCMP_ACT_NOTIFY, so the
// listener at listenerPath sees it, except write, which runc requires to be
// allowed (unnotifiable). metadata reaches the listener with the fd
// (specs.ContainerProcessState.Metadata); the Recorder accepts only fds that
// carry the metadata it was given.
//
// The default action is the generated profile's: ERRNO(EPERM). It applies
// only to syscalls the host's libseccomp cannot name (newer than it, or
// compat-only names such as socketcall), which no profile could allow by
// name, so the recorded run fails on them exactly as a run under the
// generated profile will (runc turns syscalls above the highest named one
// into ENOSYS in both cases). SCMP_ACT_NOTIFY itself cannot be the default:
// runc refuses it for the same reason as for write.
func RecordingProfile(listenerPath, metadata string) (*specs.LinuxSeccomp, error) {
	if listenerPath == "" || !strings.HasPrefix(listenerPath, "/") {
		return nil, fmt.Errorf("listener path %q: want an absolute path", listenerPath)
	}
	arches, err := Arches()
	if err != nil {
		return nil, err
	}
	known, err := KnownSyscalls()
	if err != nil {
		return nil, err
	}
	notify := slices.DeleteFunc(known, func(n string) bool { return slices.Contains(unnotifiable, n) })
	return &specs.LinuxSeccomp{
		DefaultAction:    specs.ActErrno,
		DefaultErrnoRet:  eperm(),
		Architectures:    arches,
		ListenerPath:     listenerPath,
		ListenerMetadata: metadata,
		Syscalls: []specs.LinuxSyscall{
			{Names: slices.Clone(unnotifiable), Action: specs.ActAllow},
			{Names: notify, Action: specs.ActNotify},
		},
	}, nil
}

// Profile returns the minimal profile that allows names and AlwaysAllowed
// on arches (OCI names; empty means the native family) and denies every
// other syscall with EPERM. Names are sorted and deduplicated. The result
// is an OCI linux.seccomp object: ctr --seccomp-profile, runc and crun take
// it as is, and a harden policy names it in seccomp.profile.
func Profile(names []string, arches []specs.Arch) (*specs.LinuxSeccomp, error) {
	if len(arches) == 0 {
		var err error
		if arches, err = Arches(); err != nil {
			return nil, err
		}
	}
	all := append(slices.Clone(names), AlwaysAllowed...)
	slices.Sort(all)
	all = slices.Compact(all)
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: eperm(),
		Architectures:   slices.Clone(arches),
		Syscalls:        []specs.LinuxSyscall{{Names: all, Action: specs.ActAllow}},
	}, nil
}

// Marshal renders a profile as indented JSON with a final newline.
func Marshal(f *specs.LinuxSeccomp) ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteProfile writes f to path atomically (a temporary file in the same
// directory, fsync, rename) with mode 0644. harden loads a seccomp profile
// only if nobody but its owner can write it, so an existing file at path
// that is writable by group or others is refused rather than replaced: the
// replacement would inherit its mode (spec.WriteFileAtomic keeps it), and
// whoever can write it now could hold it open.
func WriteProfile(path string, f *specs.LinuxSeccomp) error {
	b, err := Marshal(f)
	if err != nil {
		return fmt.Errorf("encode profile: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("write profile %s: not a regular file", path)
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("write profile %s: the existing file is writable by group or others (mode %04o), and harden would refuse it; remove it first", path, fi.Mode().Perm())
		}
	}
	if err := spec.WriteFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("write profile %s: %w", path, err)
	}
	return nil
}
