package probe

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysctl reads a /proc/sys value for details ("" if unreadable).
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// withSysctl appends "name=value" when the sysctl is readable: several
// kernel knobs block a vector on their own, whatever the container's policy.
func withSysctl(detail, name string) string {
	if v := sysctl(name); v != "" {
		return fmt.Sprintf("%s (%s=%s)", detail, name, v)
	}
	return detail
}

// keyctlSession: the kernel keyring is not namespaced: keys are shared by
// every container of the same uid, and keyctl has had use-after-free bugs
// (CVE-2016-0728). Joining a new anonymous session keyring happens in a
// child; the keyring goes away with it.
func keyctlSession() outcome {
	r, err := inChild(rawCall{trap: unix.SYS_KEYCTL, a1: unix.KEYCTL_JOIN_SESSION_KEYRING})
	if err != nil {
		return probeError(err)
	}
	if r.ok() {
		return open("keyctl(KEYCTL_JOIN_SESSION_KEYRING) created a session keyring in a child")
	}
	return blocked("keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s", r)
}

// keySpecProcessKeyring is KEY_SPEC_PROCESS_KEYRING (-2) as a register value.
var keySpecProcessKeyring int64 = unix.KEY_SPEC_PROCESS_KEYRING

// addKey: add_key(2) stores data in the shared kernel keyring. The key goes
// into the child's process keyring, which the kernel frees when it exits.
func addKey() outcome {
	typ, pt := cstr("user")
	desc, pd := cstr("harden-probe")
	payload, pp := cstr("x")
	r, err := inChild(rawCall{trap: unix.SYS_ADD_KEY, a1: pt, a2: pd, a3: pp, a4: 1, a5: uintptr(keySpecProcessKeyring)})
	runtime.KeepAlive(typ)
	runtime.KeepAlive(desc)
	runtime.KeepAlive(payload)
	if err != nil {
		return probeError(err)
	}
	if r.ok() {
		return open("add_key(\"user\") into the process keyring succeeded in a child")
	}
	return blocked("add_key: %s", r)
}

// bpfMapCreate: the bpf(2) syscall exposes the eBPF verifier and JIT, a
// steady source of kernel privilege escalations (CVE-2021-3490,
// CVE-2022-23222). A one-entry array map is created and closed.
func bpfMapCreate() outcome {
	var attr [128]byte
	*(*uint32)(unsafe.Pointer(&attr[0])) = unix.BPF_MAP_TYPE_ARRAY
	*(*uint32)(unsafe.Pointer(&attr[4])) = 4  // key_size
	*(*uint32)(unsafe.Pointer(&attr[8])) = 4  // value_size
	*(*uint32)(unsafe.Pointer(&attr[12])) = 1 // max_entries
	fd, _, e := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&attr[0])), unsafe.Sizeof(attr))
	if e != 0 {
		return blocked("%s", withSysctl("bpf(BPF_MAP_CREATE): "+errnoName(e), "kernel.unprivileged_bpf_disabled"))
	}
	_ = unix.Close(int(fd))
	return open("bpf(BPF_MAP_CREATE) returned a map fd (closed)")
}

// perfEventOpen: perf_event_open(2) has had many privilege escalations
// (CVE-2013-2094, CVE-2023-2235) and gives timing side channels. A
// disabled software counter on the probe itself is opened and closed.
func perfEventOpen() outcome {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_DUMMY,
		Bits:   unix.PerfBitDisabled | unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv,
	}
	attr.Size = uint32(unsafe.Sizeof(attr))
	fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return blocked("%s", withSysctl("perf_event_open: "+errnoName(err), "kernel.perf_event_paranoid"))
	}
	_ = unix.Close(fd)
	return open("%s", withSysctl("perf_event_open returned a software counter fd (closed)", "kernel.perf_event_paranoid"))
}

// uffdUserModeOnly is UFFD_USER_MODE_ONLY (linux/userfaultfd.h): handle
// faults from user space only, which vm.unprivileged_userfaultfd=0 allows.
const uffdUserModeOnly = 1

// userfaultfd: userfaultfd(2) lets a process pause the kernel in the middle
// of a copy from user memory, which turns narrow kernel races into reliable
// exploits. Tried for kernel faults, then user-mode-only.
func userfaultfd() outcome {
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK, 0, 0)
	if e == 0 {
		_ = unix.Close(int(fd))
		return open("userfaultfd returned an fd (closed)")
	}
	first := errnoName(e)
	fd, _, e = unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if e == 0 {
		_ = unix.Close(int(fd))
		return open("userfaultfd(UFFD_USER_MODE_ONLY) returned an fd (closed); without it: %s", first)
	}
	return blocked("%s", withSysctl(fmt.Sprintf("userfaultfd: %s; with UFFD_USER_MODE_ONLY: %s", first, errnoName(e)), "vm.unprivileged_userfaultfd"))
}

// ioUringSetup: io_uring has been the source of most kernel exploits
// submitted to Google's kCTF in 2022-2023, and its operations bypass
// per-syscall seccomp filtering. A one-entry ring is set up and closed
// (never mapped or used).
func ioUringSetup() outcome {
	var params [120]byte // struct io_uring_params
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&params[0])), 0)
	if e != 0 {
		return blocked("%s", withSysctl("io_uring_setup: "+errnoName(e), "kernel.io_uring_disabled"))
	}
	_ = unix.Close(int(fd))
	return open("io_uring_setup returned a ring fd (closed)")
}

// trySocket creates a socket and closes it at once.
func trySocket(name string, domain, typ, proto int) outcome {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		if isErrno(err, unix.EAFNOSUPPORT) {
			return na("socket(%s): EAFNOSUPPORT: the kernel has no such family (nothing filtered the call)", name)
		}
		return blocked("socket(%s): %s", name, errnoName(err))
	}
	_ = unix.Close(fd)
	return open("socket(%s) created (closed)", name)
}

// socketPacket: AF_PACKET sockets sniff and inject raw frames on the pod
// network (ARP spoofing) and have had memory corruption bugs
// (CVE-2020-14386, CVE-2017-7308). Needs CAP_NET_RAW.
func socketPacket() outcome {
	return trySocket("AF_PACKET, SOCK_RAW", unix.AF_PACKET, unix.SOCK_RAW, 0)
}

// socketRaw: raw IP sockets forge packets (spoofed sources, ICMP redirects,
// rogue IPv6 router advertisements, CVE-2020-10749). Needs CAP_NET_RAW.
func socketRaw() outcome {
	return trySocket("AF_INET, SOCK_RAW, IPPROTO_ICMP", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
}

// socketAlg: AF_ALG exposes the kernel crypto API to user space; it needs
// no capability and has had exploitable bugs (CVE-2015-8970, CVE-2019-8912).
func socketAlg() outcome {
	return trySocket("AF_ALG, SOCK_SEQPACKET", unix.AF_ALG, unix.SOCK_SEQPACKET, 0)
}

// socketVsock: AF_VSOCK is not network-namespaced: from a VM guest it
// reaches services of the hypervisor host, and from a host its guests.
func socketVsock() outcome {
	return trySocket("AF_VSOCK, SOCK_STREAM", unix.AF_VSOCK, unix.SOCK_STREAM, 0)
}

// openByHandleAt: the "shocker" escape (2014) brute-forced file handles to
// open host files outside the container's mount namespace. It needs
// CAP_DAC_READ_SEARCH, checked before the handle is decoded: EPERM means
// blocked, any other answer (ESTALE for a handle that names nothing here)
// means the call got past the capability check.
func openByHandleAt() outcome {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return probeError(fmt.Errorf("open /: %w", err))
	}
	defer unix.Close(root)
	how := "handle of / from name_to_handle_at"
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, "/", 0)
	if err != nil {
		// shocker's handle: ext4's root directory, inode 2, generation 0.
		how = fmt.Sprintf("crafted ext4 root handle (name_to_handle_at: %s)", errnoName(err))
		h = unix.NewFileHandle(1, []byte{2, 0, 0, 0, 0, 0, 0, 0})
	}
	fd, err := unix.OpenByHandleAt(root, h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err == nil {
		_ = unix.Close(fd)
		return open("open_by_handle_at opened a file (%s; closed)", how)
	}
	if isErrno(err, unix.EPERM, unix.EACCES, unix.ENOSYS) {
		return blocked("open_by_handle_at: %s (%s)", errnoName(err), how)
	}
	return open("open_by_handle_at passed the capability check: %s (%s)", errnoName(err), how)
}

// moduleResult reads a module-loading call made with invalid arguments:
// EPERM means the filter or the missing CAP_SYS_MODULE stopped it; EFAULT,
// EINVAL, ENOEXEC or EBADF mean the call got past both (nothing is loaded,
// the arguments are invalid on purpose); ENOSYS means the kernel has no
// module support, so only the filter could have answered otherwise.
func moduleResult(call string, e unix.Errno) outcome {
	switch e {
	case 0:
		return open("%s succeeded", call)
	case unix.EPERM, unix.EACCES:
		return blocked("%s: %s", call, errnoName(e))
	case unix.ENOSYS:
		return na("%s: ENOSYS: the kernel has no loadable module support (nothing filtered the call)", call)
	}
	return open("%s reached the module loader: %s (invalid arguments on purpose; nothing loaded)", call, errnoName(e))
}

// initModule: loading a kernel module (init_module) is running code in the
// kernel: a rootkit, or a vulnerable driver to exploit.
func initModule() outcome {
	params, p := cstr("")
	_, _, e := unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, p)
	runtime.KeepAlive(params)
	return moduleResult("init_module(NULL, 0, \"\")", e)
}

// finitModule: loading a kernel module from a file descriptor
// (finit_module), the call modprobe uses; as initModule, kernel code.
func finitModule() outcome {
	params, p := cstr("")
	_, _, e := unix.Syscall(unix.SYS_FINIT_MODULE, ^uintptr(0), p, 0)
	runtime.KeepAlive(params)
	return moduleResult("finit_module(-1, \"\", 0)", e)
}

// firstBlockDevice returns major:minor and name of the first device in
// /proc/partitions (the host's disks), or loop0.
func firstBlockDevice() (uint32, uint32, string) {
	b, err := os.ReadFile("/proc/partitions")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 4 {
				continue
			}
			ma, err1 := strconv.ParseUint(f[0], 10, 32)
			mi, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 == nil && err2 == nil {
				return uint32(ma), uint32(mi), f[3]
			}
		}
	}
	return 7, 0, "loop0"
}

// mknodBlock: a block device node for the host's disk gives raw access to
// every file on it when the device cgroup lets the open through. The node
// is created, opened read-only without reading (to report what the device
// cgroup does), and removed.
func mknodBlock() outcome {
	dir, cleanup, err := scratchDir()
	if err != nil {
		return probeError(err)
	}
	defer cleanup()
	ma, mi, name := firstBlockDevice()
	p := dir + "/blk"
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(ma, mi))); err != nil {
		return blocked("mknod b %d:%d (%s) in %s: %s", ma, mi, name, dir, errnoName(err))
	}
	defer os.Remove(p)
	what := "open: ok (closed, nothing read)"
	if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		what = "open: " + errnoName(err)
	} else {
		_ = unix.Close(fd)
	}
	return open("created block device %d:%d (%s) in %s, then removed it; %s", ma, mi, name, dir, what)
}
