// Command probe runs inside a container and tries the escape and posture
// vectors that container breakouts rely on: mounts, new namespaces, the
// keyring, eBPF, io_uring, raw sockets, module loading, device nodes,
// writes to /proc/sys and /sys, host information in /proc, the cgroup
// release_agent, engine sockets, privilege escalation, root, a writable
// rootfs, missing limits, capabilities, and a fork bomb bounded by the pids
// limit. It prints one JSON object per vector and line:
//
//	{"vector": "mount.tmpfs", "result": "blocked", "detail": "mount: EPERM"}
//
// "open" means the container could do it, "blocked" that it could not, and
// "n/a" that the vector does not apply here (the host kernel lacks the file
// or the feature); the detail gives the errno or the evidence. A detail that
// starts with "probe error:" means the probe itself failed for that vector.
//
// Nothing a vector does can damage the host, even when it succeeds: mounts
// are undone, sockets and descriptors closed, files in /proc and /sys are
// opened for writing but never written (a successful open is the evidence),
// device nodes and test files are removed, state-changing calls (unshare,
// setns, chroot, personality, keyrings) run in a forked child that exits at
// once, and the fork bomb runs only under a pids limit of at most 10000,
// forks at most limit+50 children that exit on their own within seconds.
//
// The probe is static (CGO_ENABLED=0) so it runs in any image; the security
// suite (test/security) bind-mounts it read-only into the containers it
// starts. `probe -list` prints the vector ids and what each stands for.
// The probe exits 0 once every result is printed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
)

// Results a vector can report.
const (
	resOpen    = "open"
	resBlocked = "blocked"
	resNA      = "n/a"
)

// outcome is what one vector found.
type outcome struct {
	result, detail string
}

func open(format string, a ...any) outcome    { return outcome{resOpen, fmt.Sprintf(format, a...)} }
func blocked(format string, a ...any) outcome { return outcome{resBlocked, fmt.Sprintf(format, a...)} }
func na(format string, a ...any) outcome      { return outcome{resNA, fmt.Sprintf(format, a...)} }

// probeError reports a failure of the probe itself; the suite fails on it.
func probeError(err error) outcome { return outcome{resNA, "probe error: " + err.Error()} }

// vector is one attack or posture check.
type vector struct {
	id   string // stable; the suite's assertions and the docs name it
	desc string // one line: the attack it represents
	run  func() outcome
}

// line is the JSON printed per vector.
type line struct {
	Vector string `json:"vector"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

func main() {
	list := flag.Bool("list", false, "print the vector ids and descriptions, run nothing")
	only := flag.String("only", "", "comma-separated vector ids to run (default: all)")
	flag.Parse()

	vs := vectors()
	if *list {
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, v := range vs {
			fmt.Fprintf(w, "%s\t%s\n", v.id, v.desc)
		}
		_ = w.Flush()
		return
	}
	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			want[id] = true
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if len(want) > 0 && !want[v.id] {
			continue
		}
		o := runOne(v)
		if err := enc.Encode(line{Vector: v.id, Result: o.result, Detail: o.detail}); err != nil {
			fmt.Fprintf(os.Stderr, "probe: write result: %v\n", err)
			os.Exit(1)
		}
	}
}

// runOne runs a vector; a panic becomes a probe error for that vector, so
// one broken check cannot hide the others' results.
func runOne(v vector) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = probeError(fmt.Errorf("panic: %v", r))
		}
	}()
	return v.run()
}

// vectors lists every vector in the order they run. The fork bomb is last:
// while it runs the pids limit is exhausted on purpose.
func vectors() []vector {
	return []vector{
		{"mount.tmpfs", "mount a new tmpfs (mount(2) reachable: remount /proc, /sys, cgroupfs)", mountTmpfs},
		{"mount.bind", "bind-mount a directory (re-expose masked or read-only paths)", mountBind},
		{"mount.proc", "mount a fresh procfs (a /proc without the masked paths)", mountProc},
		{"unshare.user", "unshare(CLONE_NEWUSER): a user namespace with full capabilities over new kernel code", unshareUser},
		{"unshare.mnt", "unshare(CLONE_NEWNS): a private mount namespace", unshareMnt},
		{"unshare.net", "unshare(CLONE_NEWNET): a network namespace (netfilter attack surface)", unshareNet},
		{"clone.user", "clone(CLONE_NEWUSER): a child in a new user namespace", cloneUser},
		{"clone.mnt", "clone(CLONE_NEWNS): a child in a new mount namespace", cloneMnt},
		{"clone.net", "clone(CLONE_NEWNET): a child in a new network namespace", cloneNet},
		{"clone3.ns", "clone3 with CLONE_NEWUSER|NEWNS|NEWNET (flags a seccomp filter cannot read)", clone3NS},
		{"setns.pid1", "setns(2) into the namespaces of pid 1 (nsenter; with host pid 1 an escape)", setnsPid1},
		{"chroot", "chroot(2) (CAP_SYS_CHROOT; chroot-based escapes from mount namespaces)", chrootVector},
		{"personality.aslr", "personality(ADDR_NO_RANDOMIZE): switch off ASLR for exploits", personalityASLR},
		{"keyctl.session", "keyctl(KEYCTL_JOIN_SESSION_KEYRING): the kernel keyring is not namespaced", keyctlSession},
		{"keyctl.add_key", "add_key(2) into the process keyring", addKey},
		{"bpf.map_create", "bpf(BPF_MAP_CREATE): the eBPF syscall (verifier bugs)", bpfMapCreate},
		{"perf.event_open", "perf_event_open(2) on the probe itself (perf bugs, side channels)", perfEventOpen},
		{"userfaultfd", "userfaultfd(2): stall kernel copies to win races", userfaultfd},
		{"io_uring.setup", "io_uring_setup(2): io_uring's kernel surface", ioUringSetup},
		{"socket.packet", "socket(AF_PACKET, SOCK_RAW): sniff and inject frames", socketPacket},
		{"socket.raw", "socket(AF_INET, SOCK_RAW): craft IP packets (spoofing)", socketRaw},
		{"socket.alg", "socket(AF_ALG): the kernel crypto API", socketAlg},
		{"socket.vsock", "socket(AF_VSOCK): talk to the hypervisor", socketVsock},
		{"handle.open_by_handle_at", "open_by_handle_at(2): open host files by handle (shocker)", openByHandleAt},
		{"module.init", "init_module(2) reachable (load kernel code)", initModule},
		{"module.finit", "finit_module(2) reachable (load kernel code)", finitModule},
		{"mknod.block", "mknod(2) of a block device for the host's disk", mknodBlock},
		{"ptrace.attach", "ptrace(PTRACE_ATTACH) of another process", ptraceAttach},
		{"ptrace.vm_readv", "process_vm_readv(2): read another process's memory", processVMReadv},
		{"syslog.read", "syslog(2): read the host kernel log", syslogRead},
		{"write.proc_sys", "open /proc/sys/kernel/core_pattern for writing (core_pattern escape)", writeProcSys},
		{"write.sysrq", "open /proc/sysrq-trigger for writing (crash or reboot the host)", writeSysrq},
		{"write.sys_kernel", "open a /sys/kernel file for writing (uevent_helper escape, kernel knobs)", writeSysKernel},
		{"write.sys_module", "open a kernel module parameter in /sys/module for writing", writeSysModule},
		{"read.kcore", "read /proc/kcore (kernel memory)", readKcore},
		{"read.keys", "read /proc/keys (host keyring descriptions)", readKeys},
		{"read.timer_list", "read /proc/timer_list (host timers and process names)", readTimerList},
		{"read.sched_debug", "read /proc/sched_debug (host scheduler state and process names)", readSchedDebug},
		{"dev.kmsg_mem", "open /dev/kmsg, /dev/mem, /dev/kmem or /dev/port", devKmsgMem},
		{"dev.host", "host device nodes visible in /dev", devHost},
		{"cgroup.release_agent", "open a cgroup v1 release_agent for writing (CVE-2022-0492 escape)", cgroupReleaseAgent},
		{"cgroup.writable", "open the container's own cgroup limits for writing (lift its limits)", cgroupWritable},
		{"engine.socket", "connect to a container engine socket (docker, containerd, CRI-O, podman)", engineSocket},
		{"pidns.host", "host processes visible (host pid namespace)", pidnsHost},
		{"nnp.off", "no_new_privileges is off: setuid binaries and file capabilities raise privileges", nnpOff},
		{"seccomp.off", "no seccomp filter on the process", seccompOff},
		{"uid.root", "the process runs as uid 0", uidRoot},
		{"rootfs.writable", "the root filesystem is writable (replace binaries, persist)", rootfsWritable},
		{"caps.beyond_restricted", "capabilities beyond Pod Security restricted (NET_BIND_SERVICE only)", capsBeyondRestricted},
		{"limit.pids", "no pids limit on the container's cgroup", limitPids},
		{"limit.memory", "no memory limit below the host's memory", limitMemory},
		{"fork.bomb", "a fork bomb: fork past the pids limit (run only under a limit <= 10000)", forkBomb},
	}
}
