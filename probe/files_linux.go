package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// openForWrite opens path O_WRONLY and closes it without writing a byte:
// for files in /proc and /sys a successful open is the evidence, and a write
// could change the host.
func openForWrite(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// writeVector reports whether a file can be opened for writing.
func writeVector(path string) outcome {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return na("%s does not exist here", path)
	}
	if err := openForWrite(path); err != nil {
		return blocked("open %s O_WRONLY: %s", path, errnoName(err))
	}
	return open("opened %s for writing (nothing written)%s", path, mountNote(path))
}

// mountNote says how the mount holding path is mounted, for details.
func mountNote(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return ""
	}
	if st.Flags&unix.ST_RDONLY != 0 {
		return "; mounted read-only"
	}
	return "; mounted read-write"
}

// writeProcSys: /proc/sys/kernel/core_pattern is not namespaced: writing
// "|/path/in/container" makes the host kernel run that program as root on
// the next crash, anywhere on the node.
func writeProcSys() outcome { return writeVector("/proc/sys/kernel/core_pattern") }

// writeSysrq: one byte written to /proc/sysrq-trigger crashes ('c') or
// reboots ('b') the host. The probe only opens it.
func writeSysrq() outcome { return writeVector("/proc/sysrq-trigger") }

// writeSysKernel: /sys/kernel/uevent_helper names a program the host kernel
// runs as root on every device event (an escape like core_pattern); other
// /sys/kernel files are host-wide kernel knobs. The first that exists is
// opened.
func writeSysKernel() outcome {
	for _, p := range []string{"/sys/kernel/uevent_helper", "/sys/kernel/profiling", "/sys/kernel/rcu_expedited", "/sys/kernel/mm/transparent_hugepage/enabled"} {
		if _, err := os.Lstat(p); err == nil {
			return writeVector(p)
		}
	}
	return na("none of the /sys/kernel files tried exists here")
}

// writeSysModule: kernel module (and built-in driver) parameters in
// /sys/module/*/parameters change kernel behaviour host-wide. The first
// parameter whose mode allows writing is opened.
func writeSysModule() outcome {
	files, _ := filepath.Glob("/sys/module/*/parameters/*")
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&0o222 == 0 {
			continue
		}
		return writeVector(p)
	}
	if len(files) == 0 {
		return blocked("no /sys/module parameters visible")
	}
	return blocked("no writable-mode parameter among %d in /sys/module", len(files))
}

// isDevNull reports whether fd is the /dev/null character device: runtimes
// mask a file by bind-mounting /dev/null over it.
func isDevNull(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3
}

// readVector reads the start of a /proc file: n/a if the host kernel does
// not have it, blocked if it is masked or unreadable, open if it yields
// content (or is readable and unmasked but empty for this process).
func readVector(path, absent string) outcome {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return na("%s does not exist in the container: %s", path, absent)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return blocked("open %s: %s", path, errnoName(err))
	}
	defer unix.Close(fd)
	if isDevNull(fd) {
		return blocked("%s is masked (/dev/null mounted over it)", path)
	}
	buf := make([]byte, 256)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return blocked("read %s: %s", path, errnoName(err))
	}
	if n == 0 {
		return open("%s is readable and not masked (empty for this process)", path)
	}
	// The content is host information: say how much, never what.
	if strings.HasPrefix(string(buf[:n]), "\x7fELF") {
		return open("read %d bytes of %s: an ELF header (kernel memory)", n, path)
	}
	return open("read %d bytes of %s (content not shown)", n, path)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// readKcore: /proc/kcore is an ELF image of the kernel's memory (needs
// CAP_SYS_RAWIO besides being unmasked).
func readKcore() outcome {
	return readVector("/proc/kcore", "the host kernel is built without CONFIG_PROC_KCORE")
}

// readKeys: /proc/keys lists the keys visible to the caller across the
// host, keyring descriptions included.
func readKeys() outcome {
	return readVector("/proc/keys", "the host kernel is built without CONFIG_KEYS /proc/keys")
}

// readTimerList: /proc/timer_list shows every CPU's timers with the host
// processes' names and pids: information for side channels and targeting.
func readTimerList() outcome {
	return readVector("/proc/timer_list", "the host kernel is built without it")
}

// readSchedDebug: /proc/sched_debug shows the scheduler state of every host
// process. Since Linux 5.13 it lives in debugfs, so recent kernels do not
// have it in /proc.
func readSchedDebug() outcome {
	return readVector("/proc/sched_debug", "moved to debugfs in Linux 5.13")
}

// devKmsgMem: /dev/kmsg reads (and writes) the host kernel log; /dev/mem,
// /dev/kmem and /dev/port are physical memory, kernel memory and I/O ports.
// Each that exists is opened read-only, nothing read.
func devKmsgMem() outcome {
	var opened, failed []string
	for _, p := range []string{"/dev/kmsg", "/dev/mem", "/dev/kmem", "/dev/port"} {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != nil {
			failed = append(failed, p+": "+errnoName(err))
			continue
		}
		_ = unix.Close(fd)
		opened = append(opened, p)
	}
	switch {
	case len(opened) > 0:
		return open("opened %s read-only (nothing read)", strings.Join(opened, ", "))
	case len(failed) > 0:
		return blocked("%s", strings.Join(failed, "; "))
	}
	return blocked("none of /dev/kmsg, /dev/mem, /dev/kmem, /dev/port exists in the container")
}

// standardDevice reports whether a device node is one runtimes create in
// every container (null, zero, full, random, urandom, tty, console, ptmx,
// pseudo-terminals).
func standardDevice(major, minor uint32) bool {
	switch major {
	case 1:
		return minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9
	case 5:
		return minor <= 2
	case 136: // /dev/pts/N
		return true
	}
	return false
}

// devHost: a host device passed into the container (a disk, /dev/fuse, a
// GPU, a privileged container's whole /dev) is direct hardware access.
func devHost() outcome {
	var extra []string
	_ = filepath.WalkDir("/dev", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && p != "/dev" && (p == "/dev/shm" || p == "/dev/mqueue" || strings.Count(p, "/") > 3) {
			return filepath.SkipDir
		}
		if d.Type()&(os.ModeDevice|os.ModeCharDevice) == 0 {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil {
			return nil
		}
		if !standardDevice(unix.Major(st.Rdev), unix.Minor(st.Rdev)) {
			extra = append(extra, fmt.Sprintf("%s (%d:%d)", p, unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		}
		return nil
	})
	if len(extra) > 0 {
		sort.Strings(extra)
		return open("device nodes beyond the standard set: %s", truncate(strings.Join(extra, ", "), 300))
	}
	return blocked("only the standard device nodes in /dev")
}

// cgroupMounts returns the mount points of cgroup filesystems in our view,
// with their options.
func cgroupMounts() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 6 || len(sf) < 1 || (sf[0] != "cgroup" && sf[0] != "cgroup2") {
			continue
		}
		out[pf[4]] = pf[5]
	}
	return out
}

// cgroupReleaseAgent: in cgroup v1 the hierarchy's release_agent is a
// program the host kernel runs as root when a cgroup empties. A container
// that can write it (a writable cgroupfs, or one it mounts itself after
// unsharing namespaces, CVE-2022-0492) runs code on the host. The probe
// opens every release_agent it can see, and if it can mount cgroupfs, the
// one of a fresh mount, for writing only.
func cgroupReleaseAgent() outcome {
	var evidence []string
	agents, _ := filepath.Glob("/sys/fs/cgroup/*/release_agent")
	if a, _ := filepath.Glob("/sys/fs/cgroup/release_agent"); len(a) > 0 {
		agents = append(agents, a...)
	}
	for _, p := range agents {
		if err := openForWrite(p); err == nil {
			return open("opened %s for writing (nothing written)", p)
		} else {
			evidence = append(evidence, fmt.Sprintf("%s: %s", p, errnoName(err)))
		}
	}
	if len(agents) == 0 {
		evidence = append(evidence, "no release_agent visible")
	}
	// Mount a cgroup v1 hierarchy of our own.
	if dir, cleanup, err := scratchDir(); err == nil {
		defer cleanup()
		merr := unix.Mount("cgroup", dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "memory")
		if merr != nil {
			evidence = append(evidence, "mount cgroup (memory): "+errnoName(merr))
		} else {
			p := dir + "/release_agent"
			werr := openForWrite(p)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			if werr == nil {
				return open("mounted cgroupfs (memory) and opened its release_agent for writing (nothing written; unmounted)")
			}
			evidence = append(evidence, "mounted cgroupfs (memory), then unmounted; its release_agent: "+errnoName(werr))
		}
	}
	var rw []string
	for mp, opts := range cgroupMounts() {
		if !strings.Contains(","+opts+",", ",ro,") {
			rw = append(rw, mp)
		}
	}
	if len(rw) > 0 {
		sort.Strings(rw)
		evidence = append(evidence, "cgroupfs mounted read-write at "+strings.Join(rw, ","))
	}
	return blocked("%s", truncate(strings.Join(evidence, "; "), 400))
}

// cgroupWritable: a container that can write its own cgroup files can
// raise its own pids and memory limits (cgroup v1 without a cgroup
// namespace shows its own cgroup directory at /sys/fs/cgroup/CONTROLLER).
func cgroupWritable() outcome {
	var tried []string
	for _, p := range []string{"/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/memory.max"} {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := openForWrite(p); err == nil {
			return open("opened %s for writing (nothing written)", p)
		} else {
			tried = append(tried, fmt.Sprintf("%s: %s", p, errnoName(err)))
		}
	}
	if len(tried) == 0 {
		return blocked("no cgroup limit file visible")
	}
	return blocked("%s", strings.Join(tried, "; "))
}

// engineSockets are where engines listen; a container that can connect to
// one starts a privileged container with the host's / mounted.
var engineSockets = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock",
	"/run/crio/crio.sock", "/var/run/crio/crio.sock",
	"/run/podman/podman.sock", "/var/run/podman/podman.sock",
	"/run/k3s/containerd/containerd.sock", "/var/snap/microk8s/common/run/containerd.sock",
}

// engineSocket: a mounted engine socket (docker.sock, containerd.sock,
// crio.sock) is full control of the node. The known paths, and any *.sock
// one or two levels below /run, /var/run and /, are tried with connect(2).
func engineSocket() outcome {
	cands := append([]string(nil), engineSockets...)
	for _, g := range []string{"/run/*.sock", "/run/*/*.sock", "/var/run/*.sock", "/var/run/*/*.sock", "/*.sock", "/*/*.sock"} {
		m, _ := filepath.Glob(g)
		cands = append(cands, m...)
	}
	seen := map[string]bool{}
	var found []string
	for _, p := range cands {
		if seen[p] {
			continue
		}
		seen[p] = true
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			found = append(found, fmt.Sprintf("%s: socket: %s", p, errnoName(err)))
			continue
		}
		cerr := unix.Connect(fd, &unix.SockaddrUnix{Name: p})
		_ = unix.Close(fd)
		if cerr == nil {
			return open("connected to %s", p)
		}
		found = append(found, fmt.Sprintf("%s: connect: %s", p, errnoName(cerr)))
	}
	if len(found) == 0 {
		return blocked("no engine socket in the container")
	}
	return blocked("%s", strings.Join(found, "; "))
}

// hostDaemons are process names that only exist in a host's (or node's)
// pid namespace.
var hostDaemons = map[string]bool{
	"containerd": true, "dockerd": true, "kubelet": true, "crio": true, "systemd": true,
	"systemd-journal": true, "sshd": true, "init": true, "containerd-shim": true, "containerd-shim-runc-v2": true,
	"containerd-shim-harden-v2": true, "kthreadd": true,
}

// pidnsHost: in the host's pid namespace every host process is visible:
// its environment and command line (secrets), and with ptrace or setns a
// way out.
func pidnsHost() outcome {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var hits []string
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/comm")
		if err != nil {
			continue
		}
		if c := strings.TrimSpace(string(b)); hostDaemons[c] {
			hits = append(hits, fmt.Sprintf("%s (pid %s)", c, filepath.Base(d)))
		}
	}
	if len(hits) > 0 {
		sort.Strings(hits)
		return open("%d processes visible, host processes among them: %s", len(dirs), truncate(strings.Join(hits, ", "), 200))
	}
	return blocked("%d processes visible, none of them a host daemon; pid 1 is %s", len(dirs), pid1Comm())
}
