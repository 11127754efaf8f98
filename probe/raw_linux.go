package probe

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Several vectors change the state of the process that tries them
// (unshare, setns, chroot, personality, a new session keyring). They run in
// a forked child so the probe itself stays as the container made it.
//
// A Go program cannot fork and keep running Go code in the child: the child
// has one thread, and any call into the runtime (allocation, stack growth,
// scheduling) may wait for locks held by threads that do not exist there.
// So the child runs a childProg: a fixed list of raw system calls, prepared
// with every argument (strings, structs) before the fork, executed by
// nosplit functions that never enter the runtime, then exit_group with the
// first failing call's errno (0 when all succeed). The syscall package's own
// fork+exec child works the same way (syscall/exec_linux.go).

// maxCalls is the longest childProg.
const maxCalls = 4

// rawCall is one system call and its arguments.
type rawCall struct {
	trap                   uintptr
	a1, a2, a3, a4, a5, a6 uintptr
}

// childProg is what a forked child runs. Build it with newChild.
type childProg struct {
	calls [maxCalls]rawCall
	n     int
}

// allSignals is the signal mask a child blocks first, so that no signal
// handler (Go's, inherited through the fork) runs in it.
var allSignals = ^uint64(0)

// newChild returns a program that blocks all signals, then makes the calls.
func newChild(calls ...rawCall) *childProg {
	p := &childProg{}
	p.calls[0] = rawCall{trap: unix.SYS_RT_SIGPROCMASK, a1: unix.SIG_SETMASK, a2: uintptr(unsafe.Pointer(&allSignals)), a4: 8}
	p.n = 1
	for _, c := range calls {
		if p.n == maxCalls {
			panic("childProg: too many calls")
		}
		p.calls[p.n] = c
		p.n++
	}
	return p
}

// runChild executes p in the forked child and never returns.
//
//go:nosplit
//go:norace
func runChild(p *childProg) {
	for i := 0; i < maxCalls; i++ {
		if i >= p.n {
			break
		}
		c := &p.calls[i]
		_, _, e := syscall.RawSyscall6(c.trap, c.a1, c.a2, c.a3, c.a4, c.a5, c.a6)
		if e != 0 {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(e), 0, 0)
		}
	}
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
}

// rawClone forks with clone(flags|SIGCHLD) and no new stack (fork
// semantics); the child runs p. It returns the child's pid, or the errno of
// clone itself.
//
//go:nosplit
//go:norace
func rawClone(flags uintptr, p *childProg) (int, syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, flags|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 == 0 {
		runChild(p)
	}
	return int(r1), 0
}

// cloneArgs is struct clone_args up to CLONE_ARGS_SIZE_VER0 (linux/sched.h).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls uint64
}

// rawClone3 is rawClone through clone3(2) with flags and exit signal
// SIGCHLD; no stack is given, so the child continues on a copy of ours.
//
//go:nosplit
//go:norace
func rawClone3(args *cloneArgs, p *childProg) (int, syscall.Errno) {
	r1, _, e := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	if e != 0 {
		return 0, e
	}
	if r1 == 0 {
		runChild(p)
	}
	return int(r1), 0
}

// waiter is a childProg that closes the write end of a pipe and waits, with
// ppoll, until the read end reports hang-up (every other write end closed:
// the probe released it or died) or the timeout passes. It is returned by
// pointer, so it lives on the heap and the addresses of pfd and ts in prog
// stay valid (the garbage collector does not move heap objects, and
// addresses held as uintptr do not keep objects alive: see runtime.KeepAlive).
type waiter struct {
	pfd  unix.PollFd
	ts   unix.Timespec
	prog *childProg
}

func newWaiter(rfd, wfd int, timeoutSec int64) *waiter {
	w := &waiter{pfd: unix.PollFd{Fd: int32(rfd), Events: unix.POLLIN}, ts: unix.Timespec{Sec: timeoutSec}}
	w.prog = newChild(
		rawCall{trap: unix.SYS_CLOSE, a1: uintptr(wfd)},
		rawCall{trap: unix.SYS_PPOLL, a1: uintptr(unsafe.Pointer(&w.pfd)), a2: 1, a3: uintptr(unsafe.Pointer(&w.ts))},
	)
	return w
}

// childResult is how a forked child ended.
type childResult struct {
	errno  syscall.Errno // the failing call's errno; 0 if all calls succeeded
	signal syscall.Signal
}

func (r childResult) ok() bool { return r.signal == 0 && r.errno == 0 }

func (r childResult) String() string {
	if r.signal != 0 {
		return "child killed by " + unix.SignalName(r.signal)
	}
	if r.errno == 0 {
		return "ok"
	}
	return errnoName(r.errno)
}

// reap waits for a child of rawClone and decodes its exit.
func reap(pid int) (childResult, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return childResult{}, fmt.Errorf("wait for child %d: %w", pid, err)
		}
		break
	}
	switch {
	case ws.Exited():
		return childResult{errno: syscall.Errno(ws.ExitStatus())}, nil
	case ws.Signaled():
		return childResult{signal: ws.Signal()}, nil
	}
	return childResult{}, fmt.Errorf("child %d: unexpected wait status %#x", pid, uint32(ws))
}

// inChild forks a plain child (no namespace flags) that runs calls, and
// returns how it ended. The clone itself failing is an error.
func inChild(calls ...rawCall) (childResult, error) {
	pid, e := rawClone(0, newChild(calls...))
	if e != 0 {
		return childResult{}, fmt.Errorf("fork: %s", errnoName(e))
	}
	return reap(pid)
}

// cstr returns a NUL-terminated copy of s and its address. The slice must
// stay referenced until the call that uses the address is done.
func cstr(s string) ([]byte, uintptr) {
	b := append([]byte(s), 0)
	return b, uintptr(unsafe.Pointer(&b[0]))
}

// errnoName is "EPERM" for unix.EPERM, the number for unknown values.
func errnoName(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(e))
	}
	return err.Error()
}

// isErrno reports whether err is one of the errnos.
func isErrno(err error, errnos ...syscall.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
