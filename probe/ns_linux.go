package probe

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// scratchDir returns an empty directory to mount on or create files in,
// and a function that removes it. It prefers a new directory in a writable
// place; when there is none (read-only rootfs, non-root user), an existing
// directory, which a mount only covers for the moment the vector runs.
func scratchDir() (string, func(), error) {
	for _, parent := range []string{"/tmp", "/dev/shm", "/run", "/var/tmp", "/dev", "/"} {
		if d, err := os.MkdirTemp(parent, ".harden-probe-"); err == nil {
			return d, func() { _ = os.Remove(d) }, nil
		}
	}
	for _, d := range []string{"/mnt", "/tmp", "/srv", "/opt", "/home"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d, func() {}, nil
		}
	}
	return "", nil, errors.New("no directory to work in")
}

// tryMount mounts, and on success unmounts again at once.
func tryMount(source, fstype string, flags uintptr, data string) outcome {
	dir, cleanup, err := scratchDir()
	if err != nil {
		return probeError(err)
	}
	defer cleanup()
	if err := unix.Mount(source, dir, fstype, flags, data); err != nil {
		return blocked("mount %s on %s: %s", describeMount(source, fstype), dir, errnoName(err))
	}
	uerr := unix.Unmount(dir, unix.MNT_DETACH)
	if uerr != nil {
		return open("mounted %s on %s (unmount failed: %s)", describeMount(source, fstype), dir, errnoName(uerr))
	}
	return open("mounted %s on %s, then unmounted it", describeMount(source, fstype), dir)
}

func describeMount(source, fstype string) string {
	if fstype == "" {
		return "bind of " + source
	}
	return fstype
}

// mountTmpfs: mount(2) itself. A container that can mount can remount /proc
// or /sys read-write, mount cgroupfs for release_agent (CVE-2022-0492), or
// mount filesystems whose kernel parsers have had bugs (CVE-2022-0185).
func mountTmpfs() outcome {
	return tryMount("harden-probe", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k")
}

// mountBind: a bind mount re-exposes paths: a writable copy of a read-only
// path, or the content under a masked path.
func mountBind() outcome {
	return tryMount("/", "", unix.MS_BIND, "")
}

// mountProc: a new procfs instance has none of the runtime's masks and
// read-only overmounts, so /proc/sys and /proc/sysrq-trigger would be
// writable again. The kernel refuses it when the existing /proc has locked
// overmounts (mnt_already_visible), which is a second barrier.
func mountProc() outcome {
	return tryMount("proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// unshareIn runs unshare(flag) in a forked child.
func unshareIn(flag uintptr, name string) outcome {
	r, err := inChild(rawCall{trap: unix.SYS_UNSHARE, a1: flag})
	if err != nil {
		return probeError(err)
	}
	if r.ok() {
		return open("unshare(%s) succeeded in a child", name)
	}
	return blocked("unshare(%s): %s", name, r)
}

// unshareUser: a new user namespace gives its creator every capability
// inside it, and with them kernel code that is otherwise out of reach:
// netfilter (CVE-2021-22555), fs_context (CVE-2022-0185), cgroup v1
// mounts (CVE-2022-0492). It is the first step of many kernel exploits.
func unshareUser() outcome { return unshareIn(unix.CLONE_NEWUSER, "CLONE_NEWUSER") }

// unshareMnt: a private mount namespace is where mount-based tricks are
// staged without disturbing the container's own view.
func unshareMnt() outcome { return unshareIn(unix.CLONE_NEWNS, "CLONE_NEWNS") }

// unshareNet: a new network namespace exposes netfilter and the other
// per-namespace network code to a process that owns it.
func unshareNet() outcome { return unshareIn(unix.CLONE_NEWNET, "CLONE_NEWNET") }

// cloneWith creates a child with clone(flags); the child exits at once.
func cloneWith(flags uintptr, name string) outcome {
	pid, e := rawClone(flags, newChild())
	if e != 0 {
		return blocked("clone(%s): %s", name, errnoName(e))
	}
	r, err := reap(pid)
	if err != nil {
		return probeError(err)
	}
	return open("clone(%s) created child %d (%s)", name, pid, r)
}

// cloneUser: as unshareUser, through clone(2), which seccomp profiles
// filter by flag separately from unshare(2).
func cloneUser() outcome { return cloneWith(unix.CLONE_NEWUSER, "CLONE_NEWUSER") }

// cloneMnt: a child in a private mount namespace, through clone(2): where
// mount tricks are staged; seccomp filters clone's flags separately.
func cloneMnt() outcome { return cloneWith(unix.CLONE_NEWNS, "CLONE_NEWNS") }

// cloneNet: a child in a new network namespace, through clone(2): the
// owner of a network namespace reaches netfilter and other network code.
func cloneNet() outcome { return cloneWith(unix.CLONE_NEWNET, "CLONE_NEWNET") }

// clone3NS: clone3(2) passes its flags in memory, which a seccomp filter
// cannot inspect; a filter that allows clone3 cannot tell a thread from a
// new user namespace. Runtime-default profiles answer ENOSYS so libc falls
// back to clone(2), whose flags they can check.
func clone3NS() outcome {
	args := &cloneArgs{flags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET, exitSignal: uint64(unix.SIGCHLD)}
	pid, e := rawClone3(args, newChild())
	runtime.KeepAlive(args)
	if e != 0 {
		return blocked("clone3(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET): %s", errnoName(e))
	}
	r, err := reap(pid)
	if err != nil {
		return probeError(err)
	}
	return open("clone3(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWNET) created child %d (%s)", pid, r)
}

// setnsPid1: setns(2) into another process's namespaces is how nsenter
// works; with the host's pid 1 in view (host pid namespace) it is a full
// escape. Inside the container the only pid 1 is the container's own, so
// this measures whether setns is reachable at all (syscall filter and
// CAP_SYS_ADMIN); ENOENT and EPERM both count as blocked.
func setnsPid1() outcome {
	var opened, failed []string
	for _, ns := range []string{"mnt", "net", "pid", "ipc", "uts", "cgroup"} {
		p := "/proc/1/ns/" + ns
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: open: %s", ns, errnoName(err)))
			continue
		}
		r, err := inChild(rawCall{trap: unix.SYS_SETNS, a1: uintptr(fd)})
		_ = unix.Close(fd)
		if err != nil {
			return probeError(err)
		}
		if r.ok() {
			opened = append(opened, ns)
		} else {
			failed = append(failed, fmt.Sprintf("%s: %s", ns, r))
		}
	}
	who := "pid 1 is " + pid1Comm()
	if len(opened) > 0 {
		return open("setns into pid 1's %s namespace(s) succeeded in a child (%s; %s)", strings.Join(opened, ","), who, strings.Join(failed, "; "))
	}
	return blocked("%s (%s)", strings.Join(failed, "; "), who)
}

func pid1Comm() string {
	if os.Getpid() == 1 {
		return "the probe itself"
	}
	b, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return "unknown (" + errnoName(err) + ")"
	}
	return strings.TrimSpace(string(b))
}

// chrootVector: chroot(2) needs CAP_SYS_CHROOT; with it, and a directory
// file descriptor from outside the new root, a process walks back out of
// the chroot, and chroot is a step in several mount-namespace escapes.
func chrootVector() outcome {
	root, p := cstr("/")
	r, err := inChild(rawCall{trap: unix.SYS_CHROOT, a1: p})
	runtime.KeepAlive(root)
	if err != nil {
		return probeError(err)
	}
	if r.ok() {
		return open("chroot(\"/\") succeeded in a child")
	}
	return blocked("chroot: %s", r)
}

// addrNoRandomize is ADDR_NO_RANDOMIZE (linux/personality.h).
const addrNoRandomize = 0x0040000

// personalityASLR: ADDR_NO_RANDOMIZE turns address-space randomization off
// for the next exec, which makes memory-corruption exploits reliable.
// Runtime-default seccomp profiles allow only a few personality values.
func personalityASLR() outcome {
	r, err := inChild(rawCall{trap: unix.SYS_PERSONALITY, a1: addrNoRandomize})
	if err != nil {
		return probeError(err)
	}
	if r.ok() {
		return open("personality(ADDR_NO_RANDOMIZE) succeeded in a child")
	}
	return blocked("personality(ADDR_NO_RANDOMIZE): %s", r)
}
