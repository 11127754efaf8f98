package probe

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procStatus returns the fields of /proc/self/status.
func procStatus() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// nnpOff: without no_new_privileges, executing a setuid-root binary in the
// image (su, sudo, pkexec: CVE-2021-4034) or one with file capabilities
// raises the process's privileges. NoNewPrivs in /proc/self/status and
// prctl(PR_GET_NO_NEW_PRIVS) must agree.
func nnpOff() outcome {
	st := procStatus()["NoNewPrivs"]
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		if st == "" {
			return probeError(fmt.Errorf("prctl(PR_GET_NO_NEW_PRIVS): %w, and no NoNewPrivs in /proc/self/status", err))
		}
		v, _ = strconv.Atoi(st)
	}
	detail := fmt.Sprintf("prctl(PR_GET_NO_NEW_PRIVS) = %d", v)
	if st != "" {
		detail += ", status NoNewPrivs: " + st
	} else {
		detail += ", no NoNewPrivs line in /proc/self/status"
	}
	if v == 1 {
		return blocked("%s", detail)
	}
	return open("%s: a setuid binary would run with its owner's privileges", detail)
}

// seccompOff: without a seccomp filter every system call the kernel has is
// reachable; the filter is what stops most vectors above when capabilities
// alone do not.
func seccompOff() outcome {
	st := procStatus()["Seccomp"]
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	if st == "" && err != nil {
		return probeError(fmt.Errorf("no Seccomp line in /proc/self/status and prctl(PR_GET_SECCOMP): %w", err))
	}
	if st == "" {
		st = strconv.Itoa(mode)
	}
	filters := procStatus()["Seccomp_filters"]
	switch st {
	case "0":
		return open("Seccomp: 0 (no filter)")
	case "2":
		if filters != "" {
			return blocked("Seccomp: 2 (filter mode, %s filter(s))", filters)
		}
		return blocked("Seccomp: 2 (filter mode)")
	}
	return blocked("Seccomp: %s", st)
}

// uidRoot: root in the container owns every root-owned file on writable
// mounts and is one kernel or runtime bug away from root on the host (the
// runc /proc/self/exe overwrite, CVE-2019-5736, needs it).
func uidRoot() outcome {
	uid, euid, gid := unix.Getuid(), unix.Geteuid(), unix.Getgid()
	d := fmt.Sprintf("uid %d, euid %d, gid %d", uid, euid, gid)
	if uid == 0 || euid == 0 {
		return open("%s", d)
	}
	return blocked("%s", d)
}

// rootfsWritable: a writable root filesystem lets a compromised process
// replace binaries and libraries (to hide, or hijack the next exec) and
// persist. Open when / is mounted read-write; the detail says whether this
// user could create a file in / itself.
func rootfsWritable() outcome {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return probeError(fmt.Errorf("statfs /: %w", err))
	}
	p := fmt.Sprintf("/.harden-probe-%d", os.Getpid())
	create := "created a file in /, then removed it"
	if fd, err := unix.Open(p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600); err != nil {
		create = "creating a file in /: " + errnoName(err)
	} else {
		_ = unix.Close(fd)
		_ = unix.Unlink(p)
	}
	opts := rootMountOptions()
	how := fmt.Sprintf("statfs ST_RDONLY %v, mountinfo %q", st.Flags&unix.ST_RDONLY != 0, opts)
	if st.Flags&unix.ST_RDONLY != 0 || strings.Contains(","+opts+",", ",ro,") {
		return blocked("/ is mounted read-only (%s); %s", how, create)
	}
	return open("/ is mounted read-write (%s); %s", how, create)
}

// rootMountOptions returns the per-mount options of the topmost mount on
// "/" in /proc/self/mountinfo ("" if unknown): a second opinion next to
// statfs, for runtimes that emulate one of them (gVisor).
func rootMountOptions() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	opts := ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[4] == "/" {
			opts = f[5]
		}
	}
	return opts
}

// capNames are the capability names by number (linux/capability.h).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

// capList names the bits set in mask.
func capList(mask uint64) string {
	var names []string
	for i := 0; i < 64; i++ {
		if mask&(1<<i) == 0 {
			continue
		}
		if i < len(capNames) {
			names = append(names, capNames[i])
		} else {
			names = append(names, fmt.Sprintf("cap%d", i))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// restrictedCaps is Pod Security restricted's only allowed capability.
const restrictedCaps = uint64(1) << unix.CAP_NET_BIND_SERVICE

// capsBeyondRestricted: every capability but NET_BIND_SERVICE widens what
// a compromised process can do (SETUID/SETGID switch users, DAC_OVERRIDE
// ignores file permissions on volumes, NET_RAW forges packets, MKNOD makes
// devices, SYS_ADMIN is almost root). The bounding set is what any process
// in the container could ever hold; the effective set is what this one has.
func capsBeyondRestricted() outcome {
	st := procStatus()
	bnd, err1 := strconv.ParseUint(st["CapBnd"], 16, 64)
	eff, err2 := strconv.ParseUint(st["CapEff"], 16, 64)
	if err1 != nil || err2 != nil {
		return probeError(fmt.Errorf("CapBnd %q / CapEff %q in /proc/self/status", st["CapBnd"], st["CapEff"]))
	}
	xb, xe := bnd&^restrictedCaps, eff&^restrictedCaps
	d := fmt.Sprintf("beyond NET_BIND_SERVICE: bounding %s; effective %s", capList(xb), capList(xe))
	if xb != 0 || xe != 0 {
		return open("%s", d)
	}
	return blocked("%s", d)
}

// cgroupValue reads a file of the container's own cgroup: the v1
// controller's mount (runc mounts the container's cgroup directory there,
// or a cgroup namespace shows it as the root), then the path from
// /proc/self/cgroup below it, then cgroup v2.
func cgroupValue(controller, file string) (path, value string, err error) {
	var cands []string
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			parts := strings.SplitN(l, ":", 3)
			if len(parts) != 3 {
				continue
			}
			for _, c := range strings.Split(parts[1], ",") {
				if c == controller {
					cands = append(cands, filepath.Join("/sys/fs/cgroup", parts[1], file), filepath.Join("/sys/fs/cgroup", parts[1], parts[2], file))
				}
			}
			if parts[1] == "" && parts[0] == "0" {
				cands = append(cands, filepath.Join("/sys/fs/cgroup", file), filepath.Join("/sys/fs/cgroup", parts[2], file))
			}
		}
	}
	cands = append(cands, filepath.Join("/sys/fs/cgroup", controller, file), filepath.Join("/sys/fs/cgroup", file))
	var errs []string
	for _, p := range cands {
		b, err := os.ReadFile(p)
		if err == nil {
			return p, strings.TrimSpace(string(b)), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Sprintf("%s: %s", p, errnoName(err)))
		}
	}
	if len(errs) == 0 {
		return "", "", fmt.Errorf("no %s file in the container", file)
	}
	return "", "", errors.New(strings.Join(errs, "; "))
}

// limitPids: without a pids limit, a fork bomb takes every pid on the node
// (kernel.pid_max is global): nothing else can fork, kubelet and sshd
// included.
func limitPids() outcome {
	p, v, err := cgroupValue("pids", "pids.max")
	if err != nil {
		return na("pids limit not readable: %v", err)
	}
	if v == "max" {
		return open("%s = max", p)
	}
	return blocked("%s = %s", p, v)
}

// memTotal is MemTotal of /proc/meminfo in bytes (0 if unknown).
func memTotal() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// limitMemory: a container without a memory limit below the host's memory
// can push the node into global OOM, where the kernel kills processes of
// every workload and daemons stall.
func limitMemory() outcome {
	p, v, err := cgroupValue("memory", "memory.limit_in_bytes")
	if err != nil {
		var err2 error
		p, v, err2 = cgroupValue("memory", "memory.max")
		if err2 != nil {
			return na("memory limit not readable: %v; %v", err, err2)
		}
	}
	total := memTotal()
	if v == "max" {
		return open("%s = max", p)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return probeError(fmt.Errorf("%s = %q", p, v))
	}
	if total > 0 && n >= total {
		return open("%s = %d, not below MemTotal %d", p, n, total)
	}
	return blocked("%s = %d (MemTotal %d)", p, n, total)
}

// forkBombCap is the largest pids limit under which the probe runs the fork
// bomb; it forks at most limit+forkBombExtra children.
const (
	forkBombCap   = 10000
	forkBombExtra = 50
)

// forkBomb: a fork bomb (`:(){ :|:& };:`) exhausts the pid space of the
// node. Safe by construction: it runs only when the container's cgroup
// shows a pids limit of at most 10000, forks at most limit+50 children,
// and every child only waits for the probe to release it (at most 10 s,
// also if the probe dies) and exits. Blocked when fork fails with EAGAIN
// before limit+50 children exist; without a limit it is not run and
// reported open, since nothing would stop it.
func forkBomb() outcome {
	p, v, err := cgroupValue("pids", "pids.max")
	if err != nil {
		return na("not run: pids limit not readable (%v)", err)
	}
	if v == "max" {
		return open("not run: %s = max, nothing but kernel.pid_max (%s here) would stop a fork bomb", p, sysctl("kernel.pid_max"))
	}
	limit, err := strconv.Atoi(v)
	if err != nil {
		return probeError(fmt.Errorf("%s = %q", p, v))
	}
	if limit > forkBombCap {
		return na("not run: %s = %d is above the %d the probe forks under", p, limit, forkBombCap)
	}
	before := "?"
	if _, c, err := cgroupValue("pids", "pids.current"); err == nil {
		before = c
	}
	n, e, err := forkMany(limit + forkBombExtra)
	if err != nil {
		return probeError(err)
	}
	switch {
	case e == unix.EAGAIN:
		return blocked("fork failed with EAGAIN after %d children: %s = %d (%s tasks before)", n, p, limit, before)
	case e != 0:
		return blocked("fork failed with %s after %d children: %s = %d (%s tasks before)", errnoName(e), n, p, limit, before)
	}
	return open("forked %d children, %d past %s = %d: the limit is not enforced", n, forkBombExtra, p, limit)
}

// forkMany forks up to max children that wait for a pipe to close (at most
// 10 s), then releases and reaps them. It returns how many it forked and
// the errno that stopped it (0 if it reached max).
//
// While the limit is exhausted the Go runtime could not start a thread, so
// the loop allocates nothing (the garbage collector is off and the pid
// slice preallocated) and makes only raw system calls, which never hand
// the processor to a new thread.
func forkMany(max int) (int, syscall.Errno, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return 0, 0, fmt.Errorf("pipe: %w", err)
	}
	w := newWaiter(fds[0], fds[1], 10)
	pids := make([]int, 0, max)
	gc := debug.SetGCPercent(-1)
	var stop syscall.Errno
	for len(pids) < max {
		pid, e := rawClone(0, w.prog)
		if e != 0 {
			stop = e
			break
		}
		pids = append(pids, pid)
	}
	// Release every child, then reap them with raw wait4.
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fds[1]), 0, 0)
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fds[0]), 0, 0)
	var status int32
	for _, pid := range pids {
		for {
			_, _, e := syscall.RawSyscall6(unix.SYS_WAIT4, uintptr(pid), uintptr(unsafe.Pointer(&status)), unix.WALL, 0, 0, 0)
			if e != unix.EINTR {
				break
			}
		}
	}
	debug.SetGCPercent(gc)
	runtime.KeepAlive(w)
	return len(pids), stop, nil
}
