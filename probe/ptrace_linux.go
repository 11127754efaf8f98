package probe

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// target is a forked child that waits (at most 5 s) for the probe to
// release it: the process the ptrace vectors act on.
//
// A process outside the container (the host's) is what an attacker wants;
// the container's pid namespace hides every such process, which is the
// real barrier and is reported by pidns.host. These vectors measure whether
// the calls themselves are reachable (syscall filter, CAP_SYS_PTRACE,
// Yama) against the nearest stand-in, a process of the container.
type target struct {
	pid int
	wfd int // closing it releases the child
	w   *waiter
}

// targetMarker is read from the target's copy of memory by
// processVMReadv; the probe changes its own copy after the fork.
var targetMarker uint64

func startTarget() (*target, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	w := newWaiter(fds[0], fds[1], 5)
	targetMarker = 0x68617264656e // "harden"
	pid, e := rawClone(0, w.prog)
	targetMarker = 0
	_ = unix.Close(fds[0])
	if e != 0 {
		_ = unix.Close(fds[1])
		return nil, fmt.Errorf("fork: %s", errnoName(e))
	}
	return &target{pid: pid, wfd: fds[1], w: w}, nil
}

// release lets the target exit and reaps it.
func (t *target) release() {
	_ = unix.Close(t.wfd)
	if _, err := reap(t.pid); err != nil {
		_ = unix.Kill(t.pid, unix.SIGKILL)
		_, _ = reap(t.pid)
	}
	runtime.KeepAlive(t.w)
}

// ptraceAttach: ptrace gives full control of the traced process: its
// memory, registers and system calls. Across a pid namespace boundary
// (host pid namespace, or a shared one) it reaches other workloads.
func ptraceAttach() outcome {
	t, err := startTarget()
	if err != nil {
		return probeError(err)
	}
	defer t.release()
	// The tracer is a thread: attach, wait and detach from the same one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(t.pid); err != nil {
		return blocked("ptrace(PTRACE_ATTACH, child %d): %s", t.pid, errnoName(err))
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(t.pid, &ws, unix.WALL, nil); err != nil || !ws.Stopped() {
		_ = unix.Kill(t.pid, unix.SIGKILL)
		return open("ptrace(PTRACE_ATTACH, child %d) succeeded; the stop did not arrive (%v), child killed", t.pid, err)
	}
	if err := unix.PtraceDetach(t.pid); err != nil {
		_ = unix.Kill(t.pid, unix.SIGKILL)
		return open("ptrace(PTRACE_ATTACH, child %d) succeeded; detach: %s, child killed", t.pid, errnoName(err))
	}
	return open("ptrace(PTRACE_ATTACH) of a child (pid %d) succeeded, then detached; host processes are not in view (see pidns.host)", t.pid)
}

// processVMReadv: process_vm_readv(2) reads another process's memory
// without stopping it (same permission check as ptrace).
func processVMReadv() outcome {
	t, err := startTarget()
	if err != nil {
		return probeError(err)
	}
	defer t.release()
	var got uint64
	local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&got)), Len: 8}}
	remote := []unix.RemoteIovec{{Base: uintptr(unsafe.Pointer(&targetMarker)), Len: 8}}
	n, err := unix.ProcessVMReadv(t.pid, local, remote, 0)
	if err != nil {
		return blocked("process_vm_readv(child %d): %s", t.pid, errnoName(err))
	}
	if n != 8 || got != 0x68617264656e {
		return open("process_vm_readv(child %d) read %d bytes (%#x)", t.pid, n, got)
	}
	return open("process_vm_readv read the memory of a child (pid %d): %#x", t.pid, got)
}

// syslogRead: the kernel log holds host information (addresses, devices,
// other containers' events) useful for targeting; syslog(2) reads it
// without /dev/kmsg. SYSLOG_ACTION_SIZE_BUFFER has the same permission
// check as a read and returns nothing sensitive.
func syslogRead() outcome {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		return blocked("%s", withSysctl("syslog(SYSLOG_ACTION_SIZE_BUFFER): "+errnoName(err), "kernel.dmesg_restrict"))
	}
	return open("syslog(SYSLOG_ACTION_SIZE_BUFFER) = %d: the kernel log is readable", n)
}
