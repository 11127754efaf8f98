// Package security runs the escape and posture probe (cmd/harden-probe,
// vectors in package probe) inside
// real containers under every configuration that matters and checks what
// harden's profiles claim to stop: the engines' own defaults (`ctr run` on
// the runc shim, CRI through crictl without the kubelet's defaults, Docker
// 29), and harden's baseline, restricted and strict profiles on runc, crun
// and runsc, through `ctr run` and through CRI runtime handlers.
//
// TestMain builds harden-probe (static, CGO_ENABLED=0) and starts one private
// containerd (test/env/containerd.sh) with harden's shim on its PATH, a node
// configuration (HARDEN_CONFIG) and a CRI runtime handler per profile. The
// probe's directory is bind-mounted read-only at /probe into every container; the
// images stay untouched. Everything runs on private sockets under one
// temporary directory, and at the end no process, mount, container or
// directory of the run may remain (a watchdog process tears down if the
// test binary dies).
//
// With HARDEN_UPDATE_SECURITY_TABLE=1 the suite writes the results table
// into test/security/results.md and into docs/security.md.
//
// Prerequisites come from `make deps` ($HARDEN_CACHE/env.sh) and `make build`
// (bin/containerd-shim-harden-v2). When one is missing the tests skip with the
// reason, or fail when CI is set.
package security

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/probe"

	"github.com/harden-dev/harden/test/testenv"
)

// env holds the tool paths from $HARDEN_CACHE/env.sh.
var env = map[string]string{}

// setupErr is why the suite cannot run; every test reports it.
var setupErr error

// buildMissing is set when the shim has not been built: the suite fails
// then, CI or not, because it tests that binary.
var buildMissing bool

// inst is this run's containerd and files.
var inst *instance

// instance is the layout of one run:
//
//	BASE/c         containerd.sh instance (config, sockets, root, state, runc root)
//	BASE/h         harden's node configuration, policies, decision log, state
//	BASE/p/harden-probe  the probe binary; BASE/p is bind-mounted read-only at /probe
//	BASE/d         the private Docker engine, when it runs
//	BASE/watchdog.log
type instance struct {
	base, dir, hdir, probeDir string
	repo                      string
	containerdSh              string
	envv                      []string
	image, pause              string
	vectors                   []probe.Vector
	watchdog                  *os.Process
}

func (in *instance) path(name string) string { return filepath.Join(in.hdir, name) }
func (in *instance) sock() string            { return filepath.Join(in.dir, "containerd.sock") }

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) (code int) {
	if err := setUp(); err != nil {
		setupErr = err
		fmt.Fprintf(os.Stderr, "security: %v\n", err)
		if inst == nil {
			return m.Run()
		}
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "security: panic: %v\n", r)
			code = 2
		}
		if err := tearDown(); err != nil {
			fmt.Fprintf(os.Stderr, "security: TEARDOWN FAILED: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	return m.Run()
}

// requireSuite stops a test that cannot run: skip with the reason, or fail
// in CI, where every prerequisite is installed.
func requireSuite(t *testing.T) *instance {
	t.Helper()
	if buildMissing {
		t.Fatal(setupErr)
	}
	if setupErr != nil || inst == nil {
		missing(t, fmt.Sprintf("security environment not available: %v", setupErr))
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

// have reports whether an env.sh tool exists.
func have(name string) bool {
	v := env[name]
	if v == "" {
		return false
	}
	_, err := os.Stat(v)
	return err == nil
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
		return errors.New("the security suite runs containers and must run as root")
	}
	for _, k := range []string{"HARDEN_CONTAINERD", "HARDEN_CTR", "HARDEN_RUNC", "HARDEN_CRICTL", "HARDEN_IMAGES"} {
		if !have(k) {
			return fmt.Errorf("%s is missing (%q); run `make deps`", k, env[k])
		}
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	shim := filepath.Join(repo, "bin", "containerd-shim-harden-v2")
	if fi, err := os.Stat(shim); err != nil || fi.Mode()&0o111 == 0 {
		buildMissing = true
		return fmt.Errorf("%s not found: run make build", shim)
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
	// is at most 42 bytes.
	base, err := os.MkdirTemp("/tmp", "hs.")
	if err != nil {
		return err
	}
	// MkdirTemp makes BASE 0700; non-root containers need to reach nothing
	// below it but the probe directory, which is bind-mounted on its own.
	in := &instance{
		base: base, dir: filepath.Join(base, "c"), hdir: filepath.Join(base, "h"), probeDir: filepath.Join(base, "p"),
		repo: repo, containerdSh: filepath.Join(repo, "test", "env", "containerd.sh"),
		image: image, pause: pause,
	}
	inst = in
	in.envv = append(os.Environ(),
		"HARDEN_CONFIG="+in.path("config.toml"),
		"HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"),
		"HARDEN_CACHE="+cache,
	)
	if err := in.startWatchdog(); err != nil {
		return err
	}
	for _, d := range []string{in.hdir, in.probeDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := in.buildProbe(); err != nil {
		return err
	}
	if err := in.writeFiles(); err != nil {
		return err
	}
	out, err := in.containerdScript("start", in.dir, in.path("containerd-extra.toml"))
	if err != nil {
		return fmt.Errorf("start containerd: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "security: probe built and containerd ready in %s (%s)\n", time.Since(start).Round(time.Millisecond), in.base)
	return nil
}

// buildProbe builds cmd/harden-probe statically (as `make build` does)
// into BASE/p, and checks that its -list names the vectors of package
// probe, which the assertions use.
func (in *instance) buildProbe() error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	bin := filepath.Join(in.probeDir, "harden-probe")
	cmd := exec.Command(gobin, "build", "-trimpath", "-tags", "netgo,osusergo", "-o", bin, "./cmd/harden-probe")
	cmd.Dir = in.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the probe: %v\n%s", err, out)
	}
	in.vectors = probe.Vectors()
	out, err := exec.Command(bin, "-list").Output()
	if err != nil {
		return fmt.Errorf("harden-probe -list: %w", err)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ids = append(ids, strings.Fields(l)[0])
	}
	if want := vectorIDs(in.vectors); strings.Join(ids, " ") != strings.Join(want, " ") {
		return fmt.Errorf("harden-probe -list names %v, package probe %v", ids, want)
	}
	return nil
}

// vectorIDs lists the vectors' ids in order.
func vectorIDs(vs []probe.Vector) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func (in *instance) containerdScript(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.containerdSh, args...)
	cmd.Env = in.envv
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startWatchdog starts a process outside the test binary's session that
// tears the run down once the test binary is gone, unless tearDown ends it
// first: a panic in a test goroutine, the -timeout panic, SIGINT, SIGKILL.
func (in *instance) startWatchdog() error {
	script := fmt.Sprintf(`exec </dev/null >>%[1]s/watchdog.log 2>&1
while kill -0 %[2]d 2>/dev/null; do sleep 0.5; done
echo "test binary %[2]d is gone; tearing down"
if [ -d %[1]s/d ]; then %[6]s stop %[1]s/d; fi
%[5]s
if [ -d %[3]s ]; then %[4]s stop %[3]s; fi
rm -rf --one-file-system %[1]s
`, in.base, os.Getpid(), in.dir, in.containerdSh, in.runscCleanupScript(), filepath.Join(in.repo, "test", "env", "dockerd.sh"))
	cmd := exec.Command("/bin/bash", "-c", script)
	cmd.Env = in.envv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start watchdog: %w", err)
	}
	in.watchdog = cmd.Process
	go func() { _ = cmd.Wait() }()
	return nil
}

// runscCleanupScript force-deletes, with runsc, every container that still
// has a bundle: containerd.sh stop knows only runc's state.
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

// tearDown checks the tests removed their containers, stops containerd, and
// checks nothing of the run is left: no process, mount or directory.
func tearDown() error {
	in := inst
	var problems []string
	if setupErr == nil {
		problems = append(problems, in.leftoverContainers()...)
	}
	if in.watchdog != nil {
		_ = in.watchdog.Signal(syscall.SIGKILL)
	}
	if _, err := os.Stat(filepath.Join(in.base, "d")); err == nil {
		problems = append(problems, "the Docker engine was not stopped by its test")
		_, _ = runCmd(3*time.Minute, in.envv, filepath.Join(in.repo, "test", "env", "dockerd.sh"), "stop", filepath.Join(in.base, "d"))
	}
	if len(problems) > 0 {
		_, _ = runCmd(time.Minute, nil, "/bin/bash", "-c", in.runscCleanupScript())
	}
	if _, err := os.Stat(in.dir); err == nil {
		if out, err := in.containerdScript("stop", in.dir); err != nil {
			problems = append(problems, fmt.Sprintf("containerd.sh stop: %v\n%s", err, out))
		}
	}
	var left []string
	for i := 0; i < 30; i++ {
		if left = in.leftoverProcesses(); len(left) == 0 {
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
	fmt.Fprintf(os.Stderr, "security: containerd stopped; no process, mount or container of %s left\n", in.base)
	return nil
}

// leftoverContainers lists containers the tests did not remove.
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
// (containerd, shims, runtimes, the watchdog, dockerd) and anything in the
// cgroup of one of the run's containers.
func (in *instance) leftoverProcesses() []string {
	var out []string
	for _, p := range testenv.Processes() {
		if p.PID == os.Getpid() {
			continue
		}
		if strings.Contains(p.Cmdline, in.base) {
			out = append(out, fmt.Sprintf("process left: pid %d: %.160s", p.PID, p.Cmdline))
		}
	}
	for _, id := range ids.list() {
		for _, p := range testenv.ProcessesInCgroupOf(id) {
			out = append(out, fmt.Sprintf("process left in the cgroup of %s: %s", id, p))
		}
	}
	return out
}
