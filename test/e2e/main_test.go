// Package e2e runs harden's shim (containerd-shim-harden-v2, runtime type
// io.containerd.harden.v2) inside a private containerd 2.4 and drives it the
// way people do: `ctr run`, `ctr task exec`, and the CRI through crictl. Each
// test asserts what the kernel reports for the container (/proc/self/status,
// mountinfo, cgroup files on the host) or what the engine prints, and reads
// harden's decision log.
//
// TestMain starts one containerd (test/env/containerd.sh) in a temporary
// directory with the harden runtime registered for CRI, and always stops it:
// at the end of the run, and through a watchdog process if the test binary
// dies (panic, timeout, signal). Afterwards no process, mount or container of
// the run may remain; the run fails if one does.
//
// Prerequisites come from `make deps` ($HARDEN_CACHE/env.sh) and `make build`
// (bin/containerd-shim-harden-v2). When one is missing the tests skip with the
// reason, or fail when CI is set.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/test/testenv"
)

// env holds the tool paths from $HARDEN_CACHE/env.sh.
var env = map[string]string{}

// setupErr is why the suite cannot run (a missing prerequisite, a daemon that
// did not start); every test reports it through requireSuite.
var setupErr error

// buildMissing is set when bin/containerd-shim-harden-v2 does not exist:
// the tests fail then, CI or not.
var buildMissing bool

// inst is the running containerd and harden's files for this run.
var inst *instance

// instance is the layout of one run:
//
//	BASE/c          containerd.sh instance (config, sockets, root, state, runc root)
//	BASE/h          harden's node config, policies, decision logs, state dir
//	BASE/watchdog   the watchdog's log
type instance struct {
	base, dir, hdir string
	containerdSh    string // test/env/containerd.sh
	envv            []string
	image, pause    string // the busybox and sandbox (pause) images
	token           string // argument of every long-running container's sleep, to find leftovers
	watchdog        *os.Process
}

// Files under BASE/h.
func (in *instance) path(name string) string { return filepath.Join(in.hdir, name) }

// sock is containerd's gRPC socket.
func (in *instance) sock() string { return filepath.Join(in.dir, "containerd.sock") }

// taskDir is where containerd keeps the shim bundles of namespace ns.
func (in *instance) taskDir(ns string) string {
	return filepath.Join(in.dir, "state", "io.containerd.runtime.v2.task", ns)
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	if err := setUp(); err != nil {
		setupErr = err
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		if inst == nil {
			return m.Run() // every test skips (or fails in CI) with the reason
		}
	}
	defer func() {
		// A panic in TestMain's goroutine still tears down; a panic in a
		// test's goroutine kills the process and the watchdog does it.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "e2e: panic: %v\n", r)
			code = 2
		}
		if err := tearDown(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: TEARDOWN FAILED: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	return m.Run()
}

// requireSuite stops a test that cannot run: skip with the reason, or fail
// in CI (CI installs every prerequisite, so nothing may pass by skipping).
func requireSuite(t *testing.T) *instance {
	t.Helper()
	if buildMissing {
		t.Fatal(setupErr)
	}
	if setupErr != nil || inst == nil {
		missing(t, fmt.Sprintf("e2e environment not available: %v", setupErr))
	}
	return inst
}

func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// need returns an env.sh variable naming an existing file, or skips/fails.
func need(t *testing.T, name string) string {
	t.Helper()
	v := env[name]
	if v == "" {
		v = os.Getenv(name)
	}
	if v != "" {
		if _, err := os.Stat(v); err == nil {
			return v
		}
	}
	missing(t, fmt.Sprintf("%s is not installed (%q); run `make deps`", name, v))
	return ""
}

func setUp() error {
	cache := os.Getenv("HARDEN_CACHE")
	if cache == "" {
		cache = "/var/cache/harden"
	}
	if err := testenv.ReadEnv(filepath.Join(cache, "env.sh"), env); err != nil {
		return fmt.Errorf("%w (run `make deps` first)", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("the end-to-end tests run containers and must run as root")
	}
	for _, k := range []string{"HARDEN_CONTAINERD", "HARDEN_CTR", "HARDEN_RUNC", "HARDEN_CRICTL", "HARDEN_IMAGES"} {
		if _, err := os.Stat(env[k]); env[k] == "" || err != nil {
			return fmt.Errorf("%s is missing (%q); run `make deps`", k, env[k])
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	shim := filepath.Join(repo, "bin", "containerd-shim-harden-v2")
	fi, err := os.Stat(shim)
	if err != nil || fi.Mode()&0o111 == 0 {
		// Not an external prerequisite: the suite tests this binary.
		buildMissing = true
		return fmt.Errorf("%s not found: run make build", shim)
	}
	if newer := newestSource(repo, fi.ModTime()); newer != "" {
		fmt.Fprintf(os.Stderr, "e2e: WARNING: %s is newer than %s: the suite tests an old build (run make build, or make e2e)\n", newer, shim)
	}
	image, err := testenv.ReadName(filepath.Join(env["HARDEN_IMAGES"], "busybox.name"), env["HARDEN_BUSYBOX_IMAGE"])
	if err != nil {
		return err
	}
	pause, err := testenv.ReadName(filepath.Join(env["HARDEN_IMAGES"], "pause.name"), env["HARDEN_PAUSE_IMAGE"])
	if err != nil {
		return err
	}
	// Short: containerd.sh keeps shim sockets in DIR/s only while that path
	// is at most 42 bytes, and unix socket paths are limited.
	base, err := os.MkdirTemp("/tmp", "he.")
	if err != nil {
		return err
	}
	in := &instance{
		base: base, dir: filepath.Join(base, "c"), hdir: filepath.Join(base, "h"),
		containerdSh: filepath.Join(repo, "test", "env", "containerd.sh"),
		image:        image, pause: pause, token: fmt.Sprintf("%d", 700000+os.Getpid()%100000),
	}
	if err := os.MkdirAll(in.hdir, 0o755); err != nil {
		return err
	}
	if err := in.writeFiles(); err != nil {
		_ = os.RemoveAll(base)
		return err
	}
	in.envv = append(os.Environ(),
		"HARDEN_CONFIG="+in.path("config.toml"),
		"HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"),
		"HARDEN_CACHE="+cache,
	)
	inst = in
	if err := in.startWatchdog(); err != nil {
		return err
	}
	start := time.Now()
	out, err := in.containerdScript("start", in.dir, in.path("containerd-extra.toml"))
	if err != nil {
		return fmt.Errorf("start containerd: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "e2e: containerd ready in %s (%s)\n", time.Since(start).Round(time.Millisecond), in.base)
	return nil
}

// newestSource returns a Go source file of the shim (or go.mod/go.sum)
// modified after t, or "".
func newestSource(repo string, t time.Time) string {
	found := ""
	for _, dir := range []string{"cmd", "shim", "node", "spec", "profiles"} {
		_ = filepath.WalkDir(filepath.Join(repo, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || found != "" || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if i, err := d.Info(); err == nil && i.ModTime().After(t) {
				found = p
			}
			return nil
		})
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if i, err := os.Stat(filepath.Join(repo, f)); found == "" && err == nil && i.ModTime().After(t) {
			found = filepath.Join(repo, f)
		}
	}
	return found
}

func (in *instance) containerdScript(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.containerdSh, args...)
	cmd.Env = in.envv
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startWatchdog starts a process, outside the test binary's session, that
// stops containerd and removes BASE once the test binary is gone, unless
// tearDown ends it first. It covers what a deferred call cannot: a panic in
// a test goroutine, the -timeout panic, SIGINT and SIGKILL.
func (in *instance) startWatchdog() error {
	script := fmt.Sprintf(`exec </dev/null >>%[1]s/watchdog.log 2>&1
while kill -0 %[2]d 2>/dev/null; do sleep 0.5; done
echo "test binary %[2]d is gone; stopping containerd"
%[5]s
if [ -d %[3]s ]; then %[4]s stop %[3]s; fi
rm -rf --one-file-system %[1]s
`, in.base, os.Getpid(), in.dir, in.containerdSh, in.runscCleanupScript())
	cmd := exec.Command("/bin/bash", "-c", script)
	cmd.Env = in.envv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	in.watchdog = cmd.Process
	// Reap it when it ends, so it never lingers as a zombie child.
	go func() { _ = cmd.Wait() }()
	return nil
}

// runscCleanupScript force-deletes, with runsc, every container that still
// has a bundle (runsc answers "not found" for the ones it does not run).
func (in *instance) runscCleanupScript() string {
	rs := env["HARDEN_RUNSC"]
	if rs == "" {
		return ":"
	}
	return fmt.Sprintf(`for b in %[1]s/*/*; do
  [ -d "$b" ] || continue
  id=${b##*/}; ns=${b%%/*}; ns=${ns##*/}
  %[2]s --root %[3]s/$ns delete --force "$id" >/dev/null 2>&1 || true
done`, filepath.Join(in.dir, "state", "io.containerd.runtime.v2.task"), rs, filepath.Join(in.dir, "runc"))
}

// tearDown checks that the tests removed what they created, stops
// containerd, then checks that nothing of the run is left: no process, no
// mount, no directory.
func tearDown() error {
	in := inst
	var problems []string
	if setupErr == nil {
		problems = append(problems, in.leftoverContainers()...)
	}
	if in.watchdog != nil {
		_ = in.watchdog.Signal(syscall.SIGKILL)
	}
	if len(problems) > 0 {
		// containerd.sh stop deletes leftover containers with runc, which
		// does not know runsc's state: delete those with runsc first.
		_, _ = runCmd(time.Minute, nil, "/bin/bash", "-c", in.runscCleanupScript())
	}
	if _, err := os.Stat(in.dir); err == nil {
		if out, err := in.containerdScript("stop", in.dir); err != nil {
			problems = append(problems, fmt.Sprintf("containerd.sh stop: %v\n%s", err, out))
		}
	}
	// Processes can take a moment to be reaped after SIGKILL.
	var left []string
	for i := 0; i < 30; i++ {
		left = in.leftoverProcesses()
		if len(left) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	problems = append(problems, left...)
	for _, m := range testenv.MountsUnder(in.base) {
		problems = append(problems, "mount left: "+m)
	}
	if len(testenv.MountsUnder(in.base)) == 0 {
		if err := os.RemoveAll(in.base); err != nil {
			problems = append(problems, fmt.Sprintf("remove %s: %v", in.base, err))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(os.Stderr, "e2e: containerd stopped; no process, mount or container of %s left\n", in.base)
	return nil
}

// leftoverContainers lists containers and pods the tests did not remove
// (containerd.sh stop would force-delete them and hide a broken cleanup).
func (in *instance) leftoverContainers() []string {
	var out []string
	for _, ns := range []string{"default", "k8s.io"} {
		o, err := runCmd(30*time.Second, nil, env["HARDEN_CTR"], "--address", in.sock(), "-n", ns, "containers", "ls", "-q")
		if err != nil {
			out = append(out, fmt.Sprintf("ctr -n %s containers ls: %v", ns, err))
			continue
		}
		for _, id := range strings.Fields(o.stdout) {
			out = append(out, fmt.Sprintf("container left in namespace %s: %s", ns, id))
		}
	}
	return out
}

// leftoverProcesses lists live processes of this run: anything naming BASE
// (containerd, shims, runc, runsc, the watchdog) and container processes
// (they sleep with the run's token).
func (in *instance) leftoverProcesses() []string {
	var out []string
	for _, p := range testenv.Processes() {
		if p.PID == os.Getpid() {
			continue
		}
		if strings.Contains(p.Cmdline, in.base) || strings.Contains(p.Cmdline, "sleep "+in.token) {
			out = append(out, fmt.Sprintf("process left: pid %d: %.160s", p.PID, p.Cmdline))
		}
	}
	idSeq.Lock()
	ids := append([]string(nil), idSeq.ids...)
	idSeq.Unlock()
	for _, id := range ids {
		for _, p := range testenv.ProcessesInCgroupOf(id) {
			out = append(out, fmt.Sprintf("process left in the cgroup of %s: %s", id, p))
		}
	}
	return out
}
