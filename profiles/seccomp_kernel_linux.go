package profiles

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSeccomp is what libseccomp's system.c asks the kernel before it
// accepts an action; the same calls give the same answers here.
type kernelSeccomp struct {
	killProcess, log, notify bool
	tsync, tsyncESRCH        bool
}

var seccompKernel = sync.OnceValue(func() kernelSeccomp {
	call := func(op, flags uintptr, arg unsafe.Pointer) unix.Errno {
		_, _, e := unix.Syscall(unix.SYS_SECCOMP, op, flags, uintptr(arg))
		return e
	}
	// seccomp(2) exists when this invalid call fails with EINVAL rather
	// than ENOSYS (sys_chk_seccomp_syscall).
	if call(unix.SECCOMP_SET_MODE_STRICT, 1, nil) != unix.EINVAL {
		return kernelSeccomp{}
	}
	avail := func(act uint32) bool {
		return call(unix.SECCOMP_GET_ACTION_AVAIL, 0, unsafe.Pointer(&act)) == 0
	}
	// A filter flag is known when a NULL filter fails with EFAULT
	// (_sys_chk_flag_kernel).
	flag := func(f uintptr) bool {
		return call(unix.SECCOMP_SET_MODE_FILTER, f, nil) == unix.EFAULT
	}
	var sizes struct{ notif, resp, data uint16 } // struct seccomp_notif_sizes
	return kernelSeccomp{
		killProcess: avail(scmpActKillProcess),
		log:         avail(scmpActLog),
		notify:      call(unix.SECCOMP_GET_NOTIF_SIZES, 0, unsafe.Pointer(&sizes)) == 0,
		tsync:       flag(unix.SECCOMP_FILTER_FLAG_TSYNC),
		tsyncESRCH:  flag(unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH),
	}
})
