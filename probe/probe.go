// Package probe is harden's escape and posture probe: the vectors that
// container breakouts rely on (mounts, new namespaces, the keyring, eBPF,
// io_uring, raw sockets, module loading, device nodes, writes to /proc/sys
// and /sys, host information in /proc, the cgroup release_agent, engine
// sockets, privilege escalation, root, a writable rootfs, missing limits,
// capabilities, and a fork bomb bounded by the pids limit), what each one
// stands for, and which of harden's controls is expected to stop it.
//
// The vectors run inside a container, in the static harden-probe binary
// (cmd/harden-probe), which prints one Finding per vector and line:
//
//	{"vector": "mount.tmpfs", "result": "blocked", "detail": "mount: EPERM"}
//
// "open" means the container could do it, "blocked" that it could not, and
// "n/a" that the vector does not apply here (the host kernel lacks the file
// or the feature); the detail gives the errno or the evidence. A detail that
// starts with "probe error:" means the probe itself failed for that vector.
//
// The metadata (Vectors) is the one list that the probe, `hardenctl probe`
// and the security suite (test/security) share; `hardenctl probe` and the
// suite only read it, they never run a vector on the host.
//
// Nothing a vector does can damage the host, even when it succeeds: mounts
// are undone, sockets and descriptors closed, files in /proc and /sys are
// opened for writing but never written (a successful open is the evidence),
// device nodes and test files are removed, state-changing calls (unshare,
// setns, chroot, personality, keyrings) run in a forked child that exits at
// once, and the fork bomb runs only under a pids limit of at most 10000,
// forks at most limit+50 children that exit on their own within seconds.
//
// The package imports nothing but the standard library and
// golang.org/x/sys/unix, so that harden-probe builds with CGO_ENABLED=0 and
// runs in any image.
package probe

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Results a vector can report.
const (
	Open          = "open"
	Blocked       = "blocked"
	NotApplicable = "n/a"
)

// ErrorPrefix starts the detail of a vector the probe itself failed to
// measure; the result is then NotApplicable.
const ErrorPrefix = "probe error:"

// Internal names of the results, as the vectors' code uses them.
const (
	resOpen    = Open
	resBlocked = Blocked
	resNA      = NotApplicable
)

// outcome is what one vector found.
type outcome struct {
	result, detail string
}

func open(format string, a ...any) outcome    { return outcome{resOpen, fmt.Sprintf(format, a...)} }
func blocked(format string, a ...any) outcome { return outcome{resBlocked, fmt.Sprintf(format, a...)} }
func na(format string, a ...any) outcome      { return outcome{resNA, fmt.Sprintf(format, a...)} }

// probeError reports a failure of the probe itself; the suite fails on it.
func probeError(err error) outcome { return outcome{resNA, ErrorPrefix + " " + err.Error()} }

// Vector is one attack or posture check.
type Vector struct {
	// ID is stable: the security suite's assertions, `hardenctl probe`
	// and the docs name it ("area.name").
	ID string `json:"vector"`
	// Desc is one line: the attack the vector represents.
	Desc string `json:"description"`
	// Rules are the IDs of harden's rules (docs/policy.md, section 15)
	// whose effect stops the vector, the one that answers first first.
	Rules []string `json:"rules"`
	// How says in a few words what those rules do about it.
	How string `json:"how"`

	check func() outcome
}

// Control is the rules and how they stop the vector, for a person:
// "caps.drop: NET_RAW dropped".
func (v Vector) Control() string {
	return strings.Join(v.Rules, ", ") + ": " + v.How
}

// Finding is what one vector found: one JSON line of the probe's output.
type Finding struct {
	Vector string `json:"vector"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// ProbeError reports whether the probe failed to measure the vector.
func (f Finding) ProbeError() bool { return strings.HasPrefix(f.Detail, ErrorPrefix) }

// ParseFinding decodes one line of the probe's output and checks that it
// names a vector and one of the three results. Unknown fields are ignored,
// so that a newer probe's output still reads.
func ParseFinding(line []byte) (Finding, error) {
	var f Finding
	if err := json.Unmarshal(line, &f); err != nil {
		return Finding{}, fmt.Errorf("probe output line %q is not a result: %w", line, err)
	}
	if f.Vector == "" {
		return Finding{}, fmt.Errorf("probe output line %q names no vector", line)
	}
	switch f.Result {
	case Open, Blocked, NotApplicable:
	default:
		return Finding{}, fmt.Errorf("vector %s: result %q is not open, blocked or n/a", f.Vector, f.Result)
	}
	return f, nil
}

// Run runs a vector; a panic becomes a probe error for that vector, so
// one broken check cannot hide the others' results.
func Run(v Vector) (f Finding) {
	f.Vector = v.ID
	defer func() {
		if r := recover(); r != nil {
			o := probeError(fmt.Errorf("panic: %v", r))
			f.Result, f.Detail = o.result, o.detail
		}
	}()
	o := v.check()
	f.Result, f.Detail = o.result, o.detail
	return f
}

// Lookup returns the vector with the id.
func Lookup(id string) (Vector, bool) {
	for _, v := range vectors {
		if v.ID == id {
			return v, true
		}
	}
	return Vector{}, false
}

// Vectors lists every vector in the order they run (a copy: callers may
// change it). The fork bomb is last: while it runs the pids limit is
// exhausted on purpose.
func Vectors() []Vector {
	out := make([]Vector, len(vectors))
	for i, v := range vectors {
		v.Rules = slices.Clone(v.Rules)
		out[i] = v
	}
	return out
}

// vectors is the list. To add a vector: write a function with a doc
// comment that says what attack it represents and that cannot harm the
// host when it succeeds, add it here with a stable id and the rules that
// stop it, and see docs/security.md, section 8.
var vectors = []Vector{
	{ID: "mount.tmpfs", Desc: "mount a new tmpfs (mount(2) reachable: remount /proc, /sys, cgroupfs)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: mountTmpfs},
	{ID: "mount.bind", Desc: "bind-mount a directory (re-expose masked or read-only paths)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: mountBind},
	{ID: "mount.proc", Desc: "mount a fresh procfs (a /proc without the masked paths)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: mountProc},
	{ID: "unshare.user", Desc: "unshare(CLONE_NEWUSER): a user namespace with full capabilities over new kernel code",
		Rules: []string{"seccomp.profile"}, How: "namespace flags only with CAP_SYS_ADMIN", check: unshareUser},
	{ID: "unshare.mnt", Desc: "unshare(CLONE_NEWNS): a private mount namespace",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: unshareMnt},
	{ID: "unshare.net", Desc: "unshare(CLONE_NEWNET): a network namespace (netfilter attack surface)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: unshareNet},
	{ID: "clone.user", Desc: "clone(CLONE_NEWUSER): a child in a new user namespace",
		Rules: []string{"seccomp.profile"}, How: "namespace flags only with CAP_SYS_ADMIN", check: cloneUser},
	{ID: "clone.mnt", Desc: "clone(CLONE_NEWNS): a child in a new mount namespace",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: cloneMnt},
	{ID: "clone.net", Desc: "clone(CLONE_NEWNET): a child in a new network namespace",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: cloneNet},
	{ID: "clone3.ns", Desc: "clone3 with CLONE_NEWUSER|NEWNS|NEWNET (flags a seccomp filter cannot read)",
		Rules: []string{"seccomp.profile"}, How: "clone3 answers ENOSYS (flags unreadable)", check: clone3NS},
	{ID: "setns.pid1", Desc: "setns(2) into the namespaces of pid 1 (nsenter; with host pid 1 an escape)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: setnsPid1},
	{ID: "chroot", Desc: "chroot(2) (CAP_SYS_CHROOT; chroot-based escapes from mount namespaces)",
		Rules: []string{"caps.drop"}, How: "SYS_CHROOT dropped", check: chrootVector},
	{ID: "personality.aslr", Desc: "personality(ADDR_NO_RANDOMIZE): switch off ASLR for exploits",
		Rules: []string{"seccomp.profile"}, How: "only a few personality values allowed", check: personalityASLR},
	{ID: "keyctl.session", Desc: "keyctl(KEYCTL_JOIN_SESSION_KEYRING): the kernel keyring is not namespaced",
		Rules: []string{"seccomp.profile"}, How: "keyring calls denied", check: keyctlSession},
	{ID: "keyctl.add_key", Desc: "add_key(2) into the process keyring",
		Rules: []string{"seccomp.profile"}, How: "keyring calls denied", check: addKey},
	{ID: "bpf.map_create", Desc: "bpf(BPF_MAP_CREATE): the eBPF syscall (verifier bugs)",
		Rules: []string{"seccomp.profile", "caps.drop"}, How: "bpf only with CAP_BPF or CAP_SYS_ADMIN", check: bpfMapCreate},
	{ID: "perf.event_open", Desc: "perf_event_open(2) on the probe itself (perf bugs, side channels)",
		Rules: []string{"seccomp.profile", "caps.drop"}, How: "only with CAP_PERFMON or CAP_SYS_ADMIN", check: perfEventOpen},
	{ID: "userfaultfd", Desc: "userfaultfd(2): stall kernel copies to win races",
		Rules: []string{"seccomp.profile"}, How: "denied", check: userfaultfd},
	{ID: "io_uring.setup", Desc: "io_uring_setup(2): io_uring's kernel surface",
		Rules: []string{"seccomp.profile"}, How: "denied", check: ioUringSetup},
	{ID: "socket.packet", Desc: "socket(AF_PACKET, SOCK_RAW): sniff and inject frames",
		Rules: []string{"caps.drop"}, How: "NET_RAW dropped", check: socketPacket},
	{ID: "socket.raw", Desc: "socket(AF_INET, SOCK_RAW): craft IP packets (spoofing)",
		Rules: []string{"caps.drop"}, How: "NET_RAW dropped", check: socketRaw},
	{ID: "socket.alg", Desc: "socket(AF_ALG): the kernel crypto API",
		Rules: []string{"seccomp.profile"}, How: "AF_ALG denied", check: socketAlg},
	{ID: "socket.vsock", Desc: "socket(AF_VSOCK): talk to the hypervisor",
		Rules: []string{"seccomp.profile"}, How: "AF_VSOCK denied", check: socketVsock},
	{ID: "handle.open_by_handle_at", Desc: "open_by_handle_at(2): open host files by handle (shocker)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_DAC_READ_SEARCH", check: openByHandleAt},
	{ID: "module.init", Desc: "init_module(2) reachable (load kernel code)",
		Rules: []string{"seccomp.profile", "caps.drop"}, How: "module calls denied; no CAP_SYS_MODULE", check: initModule},
	{ID: "module.finit", Desc: "finit_module(2) reachable (load kernel code)",
		Rules: []string{"seccomp.profile", "caps.drop"}, How: "module calls denied; no CAP_SYS_MODULE", check: finitModule},
	{ID: "mknod.block", Desc: "mknod(2) of a block device for the host's disk",
		Rules: []string{"caps.drop"}, How: "MKNOD dropped", check: mknodBlock},
	{ID: "ptrace.attach", Desc: "ptrace(PTRACE_ATTACH) of another process",
		Rules: []string{"seccomp.profile"}, How: "strict's filter removes ptrace", check: ptraceAttach},
	{ID: "ptrace.vm_readv", Desc: "process_vm_readv(2): read another process's memory",
		Rules: []string{"seccomp.profile"}, How: "strict's filter removes process_vm_readv", check: processVMReadv},
	{ID: "syslog.read", Desc: "syslog(2): read the host kernel log",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYSLOG", check: syslogRead},
	{ID: "write.proc_sys", Desc: "open /proc/sys/kernel/core_pattern for writing (core_pattern escape)",
		Rules: []string{"paths.readonly"}, How: "/proc/sys read-only", check: writeProcSys},
	{ID: "write.sysrq", Desc: "open /proc/sysrq-trigger for writing (crash or reboot the host)",
		Rules: []string{"paths.readonly"}, How: "/proc/sysrq-trigger read-only", check: writeSysrq},
	{ID: "write.sys_kernel", Desc: "open a /sys/kernel file for writing (uevent_helper escape, kernel knobs)",
		Rules: []string{"privileged.deny"}, How: "sysfs stays read-only", check: writeSysKernel},
	{ID: "write.sys_module", Desc: "open a kernel module parameter in /sys/module for writing",
		Rules: []string{"privileged.deny"}, How: "sysfs stays read-only", check: writeSysModule},
	{ID: "read.kcore", Desc: "read /proc/kcore (kernel memory)",
		Rules: []string{"paths.mask"}, How: "masked", check: readKcore},
	{ID: "read.keys", Desc: "read /proc/keys (host keyring descriptions)",
		Rules: []string{"paths.mask"}, How: "masked", check: readKeys},
	{ID: "read.timer_list", Desc: "read /proc/timer_list (host timers and process names)",
		Rules: []string{"paths.mask"}, How: "masked", check: readTimerList},
	{ID: "read.sched_debug", Desc: "read /proc/sched_debug (host scheduler state and process names)",
		Rules: []string{"paths.mask"}, How: "masked", check: readSchedDebug},
	{ID: "dev.kmsg_mem", Desc: "open /dev/kmsg, /dev/mem, /dev/kmem or /dev/port",
		Rules: []string{"devices.deny-host", "privileged.deny"}, How: "no host devices", check: devKmsgMem},
	{ID: "dev.host", Desc: "host device nodes visible in /dev",
		Rules: []string{"devices.deny-host", "privileged.deny"}, How: "no host devices", check: devHost},
	{ID: "cgroup.release_agent", Desc: "open a cgroup v1 release_agent for writing (CVE-2022-0492 escape)",
		Rules: []string{"caps.drop", "seccomp.profile"}, How: "no CAP_SYS_ADMIN", check: cgroupReleaseAgent},
	{ID: "cgroup.writable", Desc: "open the container's own cgroup limits for writing (lift its limits)",
		Rules: []string{"privileged.deny"}, How: "cgroupfs stays read-only", check: cgroupWritable},
	{ID: "engine.socket", Desc: "connect to a container engine socket (docker, containerd, CRI-O, podman)",
		Rules: []string{"mounts.deny-host-path"}, How: "engine sockets refused as bind mounts", check: engineSocket},
	{ID: "pidns.host", Desc: "host processes visible (host pid namespace)",
		Rules: []string{"namespaces.host"}, How: "the host pid namespace refused", check: pidnsHost},
	{ID: "nnp.off", Desc: "no_new_privileges is off: setuid binaries and file capabilities raise privileges",
		Rules: []string{"process.no-new-privileges"}, How: "set on every process", check: nnpOff},
	{ID: "seccomp.off", Desc: "no seccomp filter on the process",
		Rules: []string{"seccomp.profile"}, How: "a filter on every process", check: seccompOff},
	{ID: "uid.root", Desc: "the process runs as uid 0",
		Rules: []string{"user.non-root"}, How: "uid 0 refused (restricted, strict)", check: uidRoot},
	{ID: "rootfs.writable", Desc: "the root filesystem is writable (replace binaries, persist)",
		Rules: []string{"rootfs.readonly"}, How: "read-only root filesystem (strict)", check: rootfsWritable},
	{ID: "caps.beyond_restricted", Desc: "capabilities beyond Pod Security restricted (NET_BIND_SERVICE only)",
		Rules: []string{"caps.drop"}, How: "NET_BIND_SERVICE at most (restricted, strict)", check: capsBeyondRestricted},
	{ID: "limit.pids", Desc: "no pids limit on the container's cgroup",
		Rules: []string{"resources.ceiling"}, How: "pids ceiling", check: limitPids},
	{ID: "limit.memory", Desc: "no memory limit below the host's memory",
		Rules: []string{"resources.ceiling"}, How: "memory ceiling (restricted, strict)", check: limitMemory},
	{ID: "fork.bomb", Desc: "a fork bomb: fork past the pids limit (run only under a limit <= 10000)",
		Rules: []string{"resources.ceiling"}, How: "pids ceiling", check: forkBomb},
}
