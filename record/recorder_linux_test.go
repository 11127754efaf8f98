package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Helper modes: the test binary re-executed as a process under a notify
// filter, standing in for "runc init" and the workload it execs.
const (
	helperEnv  = "HARDEN_RECORD_HELPER" // "runtime" or "workload"
	helperSock = "HARDEN_RECORD_SOCKET"
	helperMeta = "HARDEN_RECORD_METADATA"
	helperLoop = "HARDEN_RECORD_LOOP" // "1": make notified syscalls until one fails
)

// Exit statuses of the helper.
const (
	helperOK     = 0
	helperSetup  = 2 // could not install the filter or hand over the fd
	helperENOSYS = 3 // a notified syscall failed with ENOSYS: nobody serves the fd
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "runtime":
		os.Exit(helperRuntime())
	case "workload":
		os.Exit(helperWorkload())
	}
	os.Exit(m.Run())
}

// helperRuntime does what runc's init does with a notify filter: install
// it on its (locked) thread with no_new_privs, send the listener fd with
// the container state to the listener socket, make a syscall under the
// filter (uname), then execve the "workload", which inherits the filter.
func helperRuntime() int {
	runtime.LockOSThread()
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "helper: %s: %v\n", what, err)
		return helperSetup
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs", err)
	}
	fd, err := loadNotifyFilter("uname", "getcwd", "execve")
	if err != nil {
		return fail("filter", err)
	}
	conn, err := net.Dial("unix", os.Getenv(helperSock))
	if err != nil {
		return fail("dial", err)
	}
	st := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: os.Getpid(), Metadata: os.Getenv(helperMeta),
		State: specs.State{Version: specs.Version, ID: "helper", Status: specs.StateRunning, Pid: os.Getpid()},
	}
	b, _ := json.Marshal(st)
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix(b, unix.UnixRights(fd), nil); err != nil {
		return fail("send", err)
	}
	conn.Close()
	unix.Close(fd)
	var u unix.Utsname
	for {
		if err := unix.Uname(&u); errors.Is(err, unix.ENOSYS) {
			return helperENOSYS
		} else if err != nil {
			return fail("uname", err)
		}
		if os.Getenv(helperLoop) == "" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("executable", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, helperEnv+"=") })
	env = append(env, helperEnv+"=workload")
	err = unix.Exec(self, []string{self}, env)
	return fail("exec", err)
}

// loadNotifyFilter installs a filter that allows everything but names,
// which it notifies, and returns the listener fd.
func loadNotifyFilter(names ...string) (int, error) {
	filter, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return -1, err
	}
	defer filter.Release()
	for _, name := range names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			return -1, err
		}
		if err := filter.AddRule(nr, libseccomp.ActNotify); err != nil {
			return -1, err
		}
	}
	if err := filter.Load(); err != nil {
		return -1, err
	}
	fd, err := filter.GetNotifFd()
	return int(fd), err
}

// helperWorkload is the exec'd workload: one notified syscall, getcwd.
func helperWorkload() int {
	buf := make([]byte, 4096)
	if _, err := unix.Getcwd(buf); err != nil {
		fmt.Fprintf(os.Stderr, "helper: getcwd: %v\n", err)
		return helperSetup
	}
	return helperOK
}

func runHelper(t *testing.T, sock, metadata string) (int, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), helperEnv+"=runtime", helperSock+"="+sock, helperMeta+"="+metadata)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return 0, string(out)
}

func needNotify(t *testing.T) {
	t.Helper()
	if api, err := libseccomp.GetAPI(); err != nil || api < 6 {
		t.Skipf("libseccomp API level %d (%v): seccomp user notification needs 6", api, err)
	}
}

// TestRecorder runs a process under a real notify filter against a
// Recorder: the syscalls it makes are recorded, before and after its
// execve, it runs to completion (every notification answered with
// CONTINUE), and the session ends by itself when the process exits.
func TestRecorder(t *testing.T) {
	needNotify(t)
	sock := filepath.Join(t.TempDir(), "n.sock")
	r, err := Listen(sock, "token")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi.Mode(), err)
	}
	code, out := runHelper(t, sock, "token")
	if code != helperOK {
		t.Fatalf("helper exited %d:\n%s", code, out)
	}
	if !r.Stop(10 * time.Second) {
		t.Error("the session did not end by itself after the process exited")
	}
	res := r.Result()
	if len(res.Sessions) != 1 || res.Sessions[0].ContainerID != "helper" || res.Sessions[0].Err != "" {
		t.Fatalf("sessions = %+v, rejected %v", res.Sessions, res.Rejected)
	}
	if !slices.Equal(res.Names(), []string{"execve", "getcwd", "uname"}) {
		t.Errorf("recorded %v, want execve getcwd uname", res.Names())
	}
	native, _ := Arches()
	for _, s := range res.Syscalls {
		wantRuntime := s.Name != "getcwd"
		if s.Runtime != wantRuntime || s.Workload == wantRuntime || s.Count == 0 {
			t.Errorf("%s: runtime %v workload %v count %d", s.Name, s.Runtime, s.Workload, s.Count)
		}
		if !slices.Equal(s.Arches, native[:1]) {
			t.Errorf("%s: arches %v, want %v", s.Name, s.Arches, native[:1])
		}
	}
	if got := res.Arches(); !slices.Equal(got, native[:1]) {
		t.Errorf("Arches() = %v", got)
	}
	if res.Notifications() < 3 {
		t.Errorf("%d notifications", res.Notifications())
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Stop: %v", err)
	}
	r.Stop(0) // again: no panic, no double close
}

// TestRecorderRejectsOtherFds: an fd that does not carry the recording's
// metadata is closed, not served, so its process's notified syscalls fail
// with ENOSYS instead of running unrecorded or hanging.
func TestRecorderRejectsOtherFds(t *testing.T) {
	needNotify(t)
	sock := filepath.Join(t.TempDir(), "n.sock")
	r, err := Listen(sock, "token")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(0)
	code, out := runHelper(t, sock, "someone-else")
	if code != helperENOSYS {
		t.Errorf("helper exited %d, want %d (ENOSYS):\n%s", code, helperENOSYS, out)
	}
	r.Stop(5 * time.Second)
	res := r.Result()
	if len(res.Sessions) != 0 || len(res.Syscalls) != 0 {
		t.Errorf("served a foreign fd: %+v", res)
	}
	if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0], "someone-else") {
		t.Errorf("rejected = %q", res.Rejected)
	}
}

// TestRecorderAbort: Stop with a process still under the filter gives up
// after the grace period and closes the fd, which releases the process
// (its notified syscalls fail with ENOSYS); a client that connects and
// sends nothing does not hold Stop up.
func TestRecorderAbort(t *testing.T) {
	needNotify(t)
	sock := filepath.Join(t.TempDir(), "n.sock")
	r, err := Listen(sock, "token")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), helperEnv+"=runtime", helperSock+"="+sock, helperMeta+"=token", helperLoop+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for r.Result().Notifications() < 5 {
		select {
		case err := <-done:
			t.Fatalf("helper ended early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	if r.Stop(200 * time.Millisecond) {
		t.Error("Stop reported every session ended while the process runs")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Stop took %s", d)
	}
	var ee *exec.ExitError
	if err := <-done; !errors.As(err, &ee) || ee.ExitCode() != helperENOSYS {
		t.Errorf("helper: %v, want exit %d (ENOSYS once the fd is closed)", err, helperENOSYS)
	}
	if _, err := Listen(filepath.Join(t.TempDir(), strings.Repeat("x", 120)), "t"); err == nil {
		t.Error("a socket path longer than sun_path was accepted")
	}
}

func TestResultNames(t *testing.T) {
	native, _ := Arches()
	res := Result{
		Syscalls: []Syscall{
			{Name: "execve", Arches: []specs.Arch{native[0]}},
			{Name: unknownPrefix + "999", Arches: []specs.Arch{native[0]}},
			{Name: "read", Arches: []specs.Arch{"SCMP_ARCH_ZZZ", native[len(native)-1]}},
		},
		Sessions: []Session{{Notifications: 2}, {Notifications: 3}},
	}
	if got := res.Names(); !slices.Equal(got, []string{"execve", "read"}) {
		t.Errorf("Names() = %v: a name libseccomp does not know must not reach a profile", got)
	}
	want := []specs.Arch{native[0]}
	if len(native) > 1 {
		want = append(want, native[len(native)-1])
	}
	want = append(want, "SCMP_ARCH_ZZZ")
	if got := res.Arches(); !slices.Equal(got, want) {
		t.Errorf("Arches() = %v, want %v (native family order, then others)", got, want)
	}
	if res.Notifications() != 5 {
		t.Errorf("Notifications() = %d", res.Notifications())
	}
}
