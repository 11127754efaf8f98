package record

import (
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// socketPair returns the two ends of a connected unix stream socket, as
// runc's net.Dial("unix", listenerPath) and the listener's Accept see them.
func socketPair(t *testing.T) (send, recv *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// openFds counts this process's open fds.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func sameFile(t *testing.T, a, b int) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// TestReceive sends what runc's sendContainerProcessState sends (one
// sendmsg: the state JSON, the fds as SCM_RIGHTS; then close) and variants
// a runtime or another client could send.
func TestReceive(t *testing.T) {
	const state = `{"ociVersion":"1.3.0","fds":[%s],"pid":4242,"metadata":"token","state":{"ociVersion":"1.3.0","id":"c1","status":"running","pid":4242,"bundle":"/b"}}`
	for _, tc := range []struct {
		name    string
		fdNames string // the state's fds list
		nfds    int    // fds sent
		big     bool   // pad the state past one read
		wantIdx int    // which sent fd comes back, -1 for an error
		wantErr string
	}{
		{"runc", `"seccompFd"`, 1, false, 0, ""},
		{"second of two", `"other","seccompFd"`, 2, false, 1, ""},
		{"large state", `"seccompFd"`, 1, true, 0, ""},
		{"no seccompFd name", `"other"`, 1, false, -1, "no \"seccompFd\""},
		{"named twice", `"seccompFd","seccompFd"`, 2, false, -1, "named twice"},
		{"name without fd", `"x","seccompFd"`, 1, false, -1, "the message carried 1"},
		{"no fd at all", `"seccompFd"`, 0, false, -1, "the message carried 0"},
		{"not json", "", 1, false, -1, "container state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := openFds(t)
			send, recv := socketPair(t)
			var sent []int
			for range tc.nfds {
				p := make([]int, 2)
				if err := unix.Pipe2(p, unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				unix.Close(p[1])
				sent = append(sent, p[0])
			}
			msg := strings.Replace(state, "%s", tc.fdNames, 1)
			if tc.name == "not json" {
				msg = "{not json"
			}
			if tc.big {
				msg = strings.Replace(msg, `"bundle":"/b"`, `"bundle":"/b","annotations":{"pad":"`+strings.Repeat("x", 200<<10)+`"}`, 1)
			}
			go func() {
				var oob []byte
				if len(sent) > 0 {
					oob = unix.UnixRights(sent...)
				}
				_, _, _ = send.WriteMsgUnix([]byte(msg), oob, nil)
				send.Close()
			}()
			st, fd, err := receive(recv)
			if tc.wantIdx < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want %q", err, tc.wantErr)
				}
				if fd != -1 {
					t.Errorf("fd %d returned with an error", fd)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if !sameFile(t, fd, sent[tc.wantIdx]) {
					t.Errorf("received fd is not sent fd %d", tc.wantIdx)
				}
				if st.Pid != 4242 || st.Metadata != "token" || st.State.ID != "c1" {
					t.Errorf("state = %+v", st)
				}
				if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
					t.Errorf("received fd is not close-on-exec (%d, %v)", flags, err)
				}
				unix.Close(fd)
			}
			for _, fd := range sent {
				unix.Close(fd)
			}
			send.Close()
			recv.Close()
			// Every fd received and not returned was closed.
			if after := openFds(t); after != before {
				t.Errorf("%d fds open before, %d after: receive leaks fds", before, after)
			}
		})
	}
}
