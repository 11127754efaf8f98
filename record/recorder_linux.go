package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Recorder serves the listener socket of a recording filter
// (RecordingProfile): it accepts the notification fds runtimes send, and
// for each one notes every syscall the kernel reports and lets it run.
type Recorder struct {
	ln       *net.UnixListener
	metadata string
	wake     int // eventfd that ends every watcher's poll (Abort)
	accepted chan struct{}
	watchers sync.WaitGroup

	mu       sync.Mutex
	conn     *net.UnixConn // the connection being read, closed by Stop
	stopping bool
	calls    map[string]*Syscall
	sessions []*Session
	rejected []string
	aborted  bool
}

// Syscall is one recorded syscall name.
type Syscall struct {
	// Name is libseccomp's name for it, or unknown-NR when libseccomp has
	// none (only named syscalls are notified, so this does not happen in
	// practice; such a name is never put in a profile).
	Name string `json:"name"`
	// Count is how many times the kernel reported it.
	Count uint64 `json:"count"`
	// Arches are the architectures (ABIs) it was made with.
	Arches []specs.Arch `json:"arches"`
	// Runtime: made by the runtime's init process after it installed the
	// filter and before the workload's execve (runc's init finishing its
	// work; execve itself).
	Runtime bool `json:"runtime"`
	// Workload: made after that execve, by the workload.
	Workload bool `json:"workload"`
}

// Session is one notification fd: one process the runtime started under
// the filter (the container's init, or an exec'd process) and its
// descendants.
type Session struct {
	ContainerID string `json:"containerID"`
	// Pid is the runtime's init process, in the runtime's pid namespace.
	Pid           int    `json:"pid"`
	Notifications uint64 `json:"notifications"`
	// Err is why the session ended early ("" when its processes exited).
	Err string `json:"error,omitempty"`

	exec bool // the first execve was seen: what follows is the workload
}

// Result is what a recording saw.
type Result struct {
	// Syscalls are sorted by name.
	Syscalls []Syscall `json:"syscalls"`
	Sessions []Session `json:"sessions"`
	// Rejected are connections that did not carry a notification fd for
	// this recording, and why.
	Rejected []string `json:"rejected,omitempty"`
}

// Names returns the recorded syscall names a profile can allow, sorted.
func (r Result) Names() []string {
	out := make([]string, 0, len(r.Syscalls))
	for _, s := range r.Syscalls {
		if !strings.HasPrefix(s.Name, unknownPrefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

// unknownPrefix names a syscall number libseccomp cannot name.
const unknownPrefix = "unknown-"

// Arches returns the architectures the recorded syscalls were made with,
// in the order of the native family (Arches), others after.
func (r Result) Arches() []specs.Arch {
	seen := map[specs.Arch]bool{}
	for _, s := range r.Syscalls {
		for _, a := range s.Arches {
			seen[a] = true
		}
	}
	var out []specs.Arch
	fam, _ := Arches()
	for _, a := range fam {
		if seen[a] {
			out = append(out, a)
			delete(seen, a)
		}
	}
	var rest []specs.Arch
	for a := range seen {
		rest = append(rest, a)
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Notifications is the total number of syscalls reported.
func (r Result) Notifications() uint64 {
	var n uint64
	for _, s := range r.Sessions {
		n += s.Notifications
	}
	return n
}

// Listen creates the listener socket at path (its directory must exist and
// should be private: whoever can connect can hand the recorder an fd) and
// starts accepting. Only fds whose ContainerProcessState carries metadata
// (the filter's listenerMetadata) are served; others are closed, which
// makes their processes' notified syscalls fail with ENOSYS.
func Listen(path, metadata string) (*Recorder, error) {
	if api, err := libseccomp.GetAPI(); err != nil || api < 6 {
		return nil, fmt.Errorf("libseccomp API level %d: seccomp user notification with CONTINUE needs level 6 (libseccomp >= 2.5, Linux >= 5.5)", api)
	}
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("listener socket %s: path longer than %d bytes", path, len(unix.RawSockaddrUnix{}.Path)-1)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	r := &Recorder{ln: ln, metadata: metadata, wake: wake, accepted: make(chan struct{}), calls: map[string]*Syscall{}}
	go r.accept()
	return r, nil
}

// accept serves connections until the listener is closed.
func (r *Recorder) accept() {
	defer close(r.accepted)
	for {
		conn, err := r.ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			r.reject(fmt.Sprintf("accept: %v", err))
			time.Sleep(10 * time.Millisecond) // out of fds, say: do not spin
			continue
		}
		// The runtime sends one message and closes; a client that does
		// not must not stall the recording.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			conn.Close()
			continue
		}
		r.conn = conn
		r.mu.Unlock()
		st, fd, err := receive(conn)
		r.mu.Lock()
		r.conn = nil
		r.mu.Unlock()
		conn.Close()
		if err != nil {
			r.reject(err.Error())
			continue
		}
		if st.Metadata != r.metadata {
			_ = unix.Close(fd)
			r.reject(fmt.Sprintf("container %q (pid %d): listener metadata %q is not this recording's", st.State.ID, st.Pid, st.Metadata))
			continue
		}
		s := &Session{ContainerID: st.State.ID, Pid: st.Pid}
		r.mu.Lock()
		if r.aborted {
			r.mu.Unlock()
			_ = unix.Close(fd)
			continue
		}
		r.sessions = append(r.sessions, s)
		r.watchers.Add(1)
		r.mu.Unlock()
		go r.watch(s, fd)
	}
}

func (r *Recorder) reject(why string) {
	r.mu.Lock()
	r.rejected = append(r.rejected, why)
	r.mu.Unlock()
}

// maxReceiveErrors ends a session whose fd keeps failing, rather than
// spinning on it.
const maxReceiveErrors = 100

// watch serves one notification fd until no process uses the filter any
// more (the kernel reports POLLHUP) or Abort. Every notification is
// answered with CONTINUE: the kernel then runs the syscall unchanged.
//
// A notification whose process was killed before it was received, or
// before the answer, fails with ENOENT; that is normal at the end of a
// container and not an error.
func (r *Recorder) watch(s *Session, fd int) {
	defer r.watchers.Done()
	defer unix.Close(fd)
	pfds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(r.wake), Events: unix.POLLIN}}
	errs := 0
	fail := func(err error) {
		r.mu.Lock()
		s.Err = err.Error()
		r.mu.Unlock()
	}
	for {
		pfds[0].Revents, pfds[1].Revents = 0, 0
		if _, err := unix.Poll(pfds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			fail(fmt.Errorf("poll: %w", err))
			return
		}
		if pfds[1].Revents != 0 {
			return // Abort
		}
		ev := pfds[0].Revents
		if ev&unix.POLLIN == 0 {
			if ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				return // the filter has no process left
			}
			continue
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if errs++; errs >= maxReceiveErrors {
				fail(fmt.Errorf("receive notification: %w", err))
				return
			}
			continue
		}
		errs = 0
		r.note(s, req)
		resp := &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue}
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), resp); err != nil && !errors.Is(err, unix.ENOENT) {
			fail(fmt.Errorf("answer notification: %w", err))
			return
		}
	}
}

// note records one notification.
func (r *Recorder) note(s *Session, req *libseccomp.ScmpNotifReq) {
	name, err := req.Data.Syscall.GetNameByArch(req.Data.Arch)
	if err != nil || name == "" {
		// Only syscalls libseccomp names are notified; keep the number.
		name = fmt.Sprintf("%s%d", unknownPrefix, int32(req.Data.Syscall))
	}
	arch, ok := ociArch(req.Data.Arch)
	if !ok {
		arch = specs.Arch(req.Data.Arch.String())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Notifications++
	c := r.calls[name]
	if c == nil {
		c = &Syscall{Name: name}
		r.calls[name] = c
	}
	c.Count++
	if !slices.Contains(c.Arches, arch) {
		c.Arches = append(c.Arches, arch)
	}
	// Until the first execve the process is the runtime's init: the
	// filter is installed shortly before it execs the workload. (A
	// startContainer hook would exec earlier; runc runs those rarely.)
	if s.exec {
		c.Workload = true
		return
	}
	c.Runtime = true
	if name == "execve" || name == "execveat" {
		s.exec = true
	}
}

// Stop stops accepting fds and waits up to grace for every process under
// the filter to end (the runtime deleted the container), then aborts the
// sessions still open. It reports whether all had ended by themselves. It
// is safe to call more than once.
func (r *Recorder) Stop(grace time.Duration) bool {
	_ = r.ln.Close() // removes the socket file
	r.mu.Lock()
	r.stopping = true
	if r.conn != nil {
		_ = r.conn.Close()
	}
	r.mu.Unlock()
	<-r.accepted
	done := make(chan struct{})
	go func() {
		r.watchers.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.abort()
		return true
	case <-time.After(grace):
	}
	r.abort()
	<-done
	return false
}

// abort ends every session: the fds are closed, and a process still under
// the filter gets ENOSYS from its next notified syscall.
func (r *Recorder) abort() {
	r.mu.Lock()
	if r.aborted {
		r.mu.Unlock()
		return
	}
	r.aborted = true
	r.mu.Unlock()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1) // never read: stays readable for every watcher's poll
	_, _ = unix.Write(r.wake, one[:])
	r.watchers.Wait()
	_ = unix.Close(r.wake)
}

// Result returns what was recorded so far.
func (r *Recorder) Result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var res Result
	for _, c := range r.calls {
		cc := *c
		cc.Arches = slices.Clone(c.Arches)
		slices.Sort(cc.Arches)
		res.Syscalls = append(res.Syscalls, cc)
	}
	slices.SortFunc(res.Syscalls, func(a, b Syscall) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	for _, s := range r.sessions {
		res.Sessions = append(res.Sessions, *s)
	}
	res.Rejected = slices.Clone(r.rejected)
	return res
}
