package runcwrap

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// passFile hands data to the runtime as a file it can open by path, without
// a file on disk: a sealed memfd that the runtime inherits across
// syscall.Exec, named /proc/self/fd/N (opening that link in the runtime
// reopens the memfd from offset 0). Nothing is left to clean up: the memfd
// goes away with the last process holding it, and nobody can change its
// content after harden checked it.
//
// The descriptor is moved to minFD or above (at least 100), out of the
// range a caller's --preserve-fds and LISTEN_FDS hand to the container (3,
// 4, ...). runc and crun mark every other inherited descriptor
// close-on-exec before the container process starts.
func passFile(name string, data []byte, minFD int) (string, error) {
	fd, err := unix.MemfdCreate("harden-"+name, unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd_create: %w", err)
	}
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("write memfd: %w", err)
		}
		rest = rest[n:]
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("seal memfd: %w", err)
	}
	// F_DUPFD leaves close-on-exec off, which is what lets the runtime
	// inherit it.
	if high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD, max(minFD, 100)); err == nil {
		unix.Close(fd)
		fd = high
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), nil
}
