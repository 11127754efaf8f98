package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Limits on what a runtime sends with the notification fd.
const (
	// maxStateSize bounds the ContainerProcessState JSON. runc sends the
	// container's OCI state with its annotations, a few KiB at most.
	maxStateSize = 1 << 20
	// maxFds is how many fds one message may carry; runc and crun send one.
	maxFds = 16
)

// receive reads what a runtime sends to a seccomp listenerPath: one
// sendmsg with the JSON of a specs.ContainerProcessState and, as
// SCM_RIGHTS, the fds its Fds field names, then EOF. It returns the state
// and the fd named specs.SeccompFdName ("seccompFd"); every other fd
// received is closed, and on error all of them are.
//
// This is the protocol of runc's libcontainer/process_linux.go
// (sendContainerProcessState) and of its example agent,
// tests/cmd/seccompagent. crun sends the same message.
func receive(conn *net.UnixConn) (specs.ContainerProcessState, int, error) {
	var st specs.ContainerProcessState
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	// Go's net package receives with MSG_CMSG_CLOEXEC: the fds do not
	// leak into processes hardenctl starts.
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return st, -1, fmt.Errorf("receive: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return st, -1, err
	}
	closeAll := func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeAll()
		return st, -1, fmt.Errorf("receive: more than %d fds in one message", maxFds)
	}
	// The rest of the JSON, if the first read did not hold it all; the
	// runtime closes the connection after the one message.
	rest, err := io.ReadAll(io.LimitReader(conn, int64(maxStateSize-n+1)))
	if err != nil {
		closeAll()
		return st, -1, fmt.Errorf("receive: %w", err)
	}
	msg := append(buf[:n:n], rest...)
	if len(msg) > maxStateSize {
		closeAll()
		return st, -1, fmt.Errorf("receive: container state larger than %d bytes", maxStateSize)
	}
	if err := json.Unmarshal(msg, &st); err != nil {
		closeAll()
		return st, -1, fmt.Errorf("receive: container state: %w", err)
	}
	idx := -1
	for i, name := range st.Fds {
		if name != specs.SeccompFdName {
			continue
		}
		if idx != -1 {
			closeAll()
			return st, -1, fmt.Errorf("receive: %q named twice in fds %q", specs.SeccompFdName, st.Fds)
		}
		idx = i
	}
	switch {
	case idx == -1:
		closeAll()
		return st, -1, fmt.Errorf("receive: no %q in fds %q", specs.SeccompFdName, st.Fds)
	case idx >= len(fds):
		closeAll()
		return st, -1, fmt.Errorf("receive: fds %q name %d fds, the message carried %d", st.Fds, len(st.Fds), len(fds))
	}
	for i, fd := range fds {
		if i != idx {
			_ = unix.Close(fd)
		}
	}
	return st, fds[idx], nil
}

// parseRights returns the fds of every SCM_RIGHTS message in oob.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("receive: control message: %w", err)
	}
	var fds []int
	var errs []error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fds = append(fds, got...)
	}
	if len(errs) > 0 {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, fmt.Errorf("receive: SCM_RIGHTS: %w", errors.Join(errs...))
	}
	return fds, nil
}
