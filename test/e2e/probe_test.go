package e2e

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/harden-dev/harden/probe"

	"github.com/harden-dev/harden/test/testenv"
)

// probeJSON is the part of `hardenctl probe --json` the tests read.
type probeJSON struct {
	Container string `json:"container"`
	Summary   struct {
		Total       int      `json:"total"`
		Open        int      `json:"open"`
		Missing     int      `json:"missing"`
		ProbeErrors int      `json:"probeErrors"`
		OpenVectors []string `json:"openVectors"`
	} `json:"summary"`
	Vectors []struct {
		Vector string   `json:"vector"`
		Result string   `json:"result"`
		Detail string   `json:"detail"`
		Rules  []string `json:"rules"`
	} `json:"vectors"`
}

func (p probeJSON) result(id string) string {
	for _, v := range p.Vectors {
		if v.Vector == id {
			return v.Result + " (" + v.Detail + ")"
		}
	}
	return "absent"
}

// baselineOpen is what harden's baseline profile leaves open on purpose
// (docs/security.md, section 3).
var baselineOpen = []string{"uid.root", "rootfs.writable", "caps.beyond_restricted", "limit.memory", "ptrace.attach", "ptrace.vm_readv"}

// probeRun is one `bin/hardenctl probe` run.
type probeRun struct {
	stdout, stderr string
	code           int
}

// hardenctlProbe runs bin/hardenctl probe with args against the suite's
// containerd. Staged copies go to a test directory (TMPDIR), which must be
// empty afterwards.
func hardenctlProbe(t *testing.T, args ...string) probeRun {
	t.Helper()
	cmd, out, errb, tmp := probeCommand(t, args...)
	err := cmd.Run()
	return finishProbe(t, cmd, err, out, errb, tmp)
}

func probeCommand(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, string) {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(repo, "bin", "hardenctl")
	for _, b := range []string{bin, filepath.Join(repo, "bin", "harden-probe")} {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s not found: run make build", b)
		}
	}
	tmp := t.TempDir()
	cmd := exec.Command(bin, append([]string{"probe", "--address", inst.sock()}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TMPDIR="+tmp)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb, tmp
}

func finishProbe(t *testing.T, cmd *exec.Cmd, err error, out, errb *bytes.Buffer, tmp string) probeRun {
	t.Helper()
	r := probeRun{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("hardenctl probe left files in TMPDIR: %v", left)
	}
	return r
}

// ctrProbeArgs are the flags of a probe through ctr on the suite's
// containerd: its ctr, and ctr run state inside the instance.
func ctrProbeArgs(runtime string) []string {
	a := []string{"--engine", "containerd", "--cli", env["HARDEN_CTR"], "--runtime", runtime}
	for _, f := range ctrRunFlags() {
		a = append(a, "--run-flag", f)
	}
	return a
}

// assertNoProbeContainer checks no container of hardenctl probe is left
// in namespace ns, and no process in the cgroup of the named one.
func assertNoProbeContainer(t *testing.T, ns, name string) {
	t.Helper()
	r := mustCtr(t, ns, "containers", "ls", "-q")
	for _, id := range strings.Fields(r.stdout) {
		if strings.HasPrefix(id, "harden-probe-") {
			t.Errorf("container %s left in namespace %s", id, ns)
			removeCtrContainer(t, ns, id)
		}
	}
	if name != "" {
		rememberID(name)
		if ps := testenv.ProcessesInCgroupOf(name); len(ps) > 0 {
			t.Errorf("processes left in the cgroup of %s: %v", name, ps)
		}
	}
}

// TestHardenctlProbe runs `hardenctl probe` as an operator would, through
// ctr and crictl against the suite's containerd, and checks what it reports
// under harden and under plain runc, and that the container is gone on
// every path: done, refused, timed out, interrupted.
func TestHardenctlProbe(t *testing.T) {
	in := requireSuite(t)

	t.Run("static", func(t *testing.T) {
		// The probe must run in any image: no interpreter, no libraries.
		f, err := elf.Open(filepath.Join("..", "..", "bin", "harden-probe"))
		if err != nil {
			t.Fatalf("bin/harden-probe: %v (run make build)", err)
		}
		defer f.Close()
		libs, _ := f.ImportedLibraries()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || len(libs) > 0 {
				t.Fatalf("bin/harden-probe is dynamically linked (libraries %v)", libs)
			}
		}
	})

	t.Run("harden", func(t *testing.T) {
		r := hardenctlProbe(t, append(ctrProbeArgs(hardenRuntime), "--json", "--fail-open", inst.image)...)
		var p probeJSON
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
			t.Fatalf("--json output: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
		}
		assertNoProbeContainer(t, "default", p.Container)
		if p.Summary.Total != len(probe.Vectors()) || len(p.Vectors) != p.Summary.Total || p.Summary.Missing != 0 || p.Summary.ProbeErrors != 0 {
			t.Errorf("summary %+v with %d rows, want all %d vectors measured", p.Summary, len(p.Vectors), len(probe.Vectors()))
		}
		for _, id := range []string{"mount.tmpfs", "seccomp.off", "nnp.off", "keyctl.session", "socket.raw", "limit.pids", "fork.bomb"} {
			if got := p.result(id); !strings.HasPrefix(got, "blocked") {
				t.Errorf("%s is %s under harden's default policy, want blocked", id, got)
			}
		}
		for _, id := range p.Summary.OpenVectors {
			if !slices.Contains(baselineOpen, id) {
				t.Errorf("%s is open under baseline, which does not allow it: %s", id, p.result(id))
			}
		}
		// Something is always open under baseline (root, a writable
		// rootfs), so --fail-open fails, after printing the table.
		if r.code != 1 || !strings.Contains(r.stderr, "open (--fail-open)") {
			t.Errorf("--fail-open with %d open: exit %d, stderr:\n%s", p.Summary.Open, r.code, r.stderr)
		}
		rec := createRecord(t, in.path("decisions.log"), p.Container)
		if rec.Result != "hardened" || rec.Decision.Profile != "baseline" {
			t.Errorf("decision record: result %q profile %q, want hardened baseline:\n%s", rec.Result, rec.Decision.Profile, rec)
		}
	})

	t.Run("runc", func(t *testing.T) {
		r := hardenctlProbe(t, append(ctrProbeArgs(runcRuntime), inst.image)...)
		assertNoProbeContainer(t, "default", "")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		// ctr's defaults: no seccomp filter, so the keyring and user
		// namespaces are reachable; no_new_privileges is set.
		rows := map[string][]string{}
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) >= 2 {
				rows[f[0]] = f[1:]
			}
		}
		for id, want := range map[string]string{"seccomp.off": "open", "keyctl.session": "open", "unshare.user": "open", "nnp.off": "blocked", "mount.tmpfs": "blocked"} {
			if got := rows[id]; len(got) == 0 || got[0] != want {
				t.Errorf("%s: row %q, want %s\n%s", id, got, want, r.stdout)
			}
		}
		for _, want := range []string{"VECTOR", "RESULT", "STOPPED BY", "DETAIL", "runtime    " + runcRuntime, "seccomp.profile: a filter on every process"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("table lacks %q:\n%s", want, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, " vectors open: ") {
			t.Errorf("no summary line:\n%s", r.stdout)
		}
	})

	t.Run("refused", func(t *testing.T) {
		r := hardenctlProbe(t, append(ctrProbeArgs(hardenRuntime), "--run-flag", "--privileged", inst.image)...)
		assertNoProbeContainer(t, "default", "")
		if r.code != 1 || r.stdout != "" {
			t.Errorf("a refused container: exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
		}
		if !strings.Contains(r.stderr, "ctr run: exit status 1:") || !strings.Contains(r.stderr, "privileged.deny") {
			t.Errorf("stderr does not show ctr's error naming the rule:\n%s", r.stderr)
		}
	})

	t.Run("cri", func(t *testing.T) {
		// The payments namespace gets the restricted profile (uid 0 refused).
		r := hardenctlProbe(t, "--engine", "cri", "--cli", env["HARDEN_CRICTL"], "--runtime-handler", criHandler,
			"--namespace", "payments", "--user", "1000:1000", "--json", inst.image)
		var p probeJSON
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || r.code != 0 {
			t.Fatalf("exit %d, --json output: %v\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
		}
		for _, id := range []string{"uid.root", "caps.beyond_restricted", "limit.memory", "seccomp.off", "nnp.off"} {
			if got := p.result(id); !strings.HasPrefix(got, "blocked") {
				t.Errorf("%s is %s under restricted, want blocked", id, got)
			}
		}
		if p.Summary.Missing != 0 || p.Summary.ProbeErrors != 0 {
			t.Errorf("summary %+v, want every vector measured", p.Summary)
		}
		if left := mustCrictl(t, "pods", "-q", "--name", "^harden-probe-"); strings.TrimSpace(left.stdout) != "" {
			t.Errorf("pods left: %s", left.stdout)
		}
		rec := findRecord(t, in.path("cri-decisions.log"), "probe container", func(r record) bool {
			return r.Event == "create" && r.Identity.Pod == p.Container && r.Identity.ContainerType == "container"
		})
		if rec.Decision.Profile != "restricted" || rec.Result != "hardened" {
			t.Errorf("decision record: profile %q result %q, want restricted hardened:\n%s", rec.Decision.Profile, rec.Result, rec)
		}
	})

	// A probe that never finishes: a static program that sleeps.
	sleeper := buildSleeper(t)

	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		r := hardenctlProbe(t, append(ctrProbeArgs(runcRuntime), "--probe", sleeper, "--timeout", "5s", inst.image)...)
		m := regexp.MustCompile(`probe: timed out after 5s \(--timeout\); container (harden-probe-[0-9a-f]+) removed`).FindStringSubmatch(r.stderr)
		if r.code != 1 || m == nil {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		name := ""
		if m != nil {
			name = m[1]
		}
		assertNoProbeContainer(t, "default", name)
		if d := time.Since(start); d > 90*time.Second {
			t.Errorf("took %s", d)
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		cmd, out, errb, tmp := probeCommand(t, append(ctrProbeArgs(hardenRuntime), "--probe", sleeper, inst.image)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		name := waitProbeTask(t)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		r := finishProbe(t, cmd, cmd.Wait(), out, errb, tmp)
		assertNoProbeContainer(t, "default", name)
		if r.code != 1 || !strings.Contains(r.stderr, "interrupted; removing container "+name) ||
			!strings.Contains(r.stderr, "probe: interrupted; container "+name+" removed") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

// waitProbeTask waits until hardenctl probe's container runs and returns
// its name.
func waitProbeTask(t *testing.T) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, err := ctr("default", "tasks", "ls")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) == 3 && strings.HasPrefix(f[0], "harden-probe-") && f[2] == "RUNNING" {
				return f[0]
			}
		}
	}
	t.Fatal("hardenctl probe's container did not start within 60s")
	return ""
}

// buildSleeper builds a static program that sleeps for ten minutes.
func buildSleeper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(10 * time.Minute) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sleeper")
	cmd := exec.Command("go", "build", "-o", bin, "main.go")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the sleeper: %v\n%s", err, out)
	}
	return bin
}

// TestHardenctlProbeDocker runs `hardenctl probe --engine docker` against a
// private Docker 29 engine (as TestDocker29), under harden's shim and under
// Docker's defaults, and checks no container is left.
func TestHardenctlProbeDocker(t *testing.T) {
	requireSuite(t)
	need(t, "HARDEN_DOCKERD29")
	docker := need(t, "HARDEN_DOCKER")
	d := startDocker29(t, "hp.")
	daemon, decisions := d.daemon, d.decisions
	sock := filepath.Join(daemon, "docker.sock")
	args := func(extra ...string) []string {
		// probeCommand's --address is the containerd socket; the last
		// --address given wins.
		return append([]string{"--engine", "docker", "--address", sock, "--cli", docker, "--json"}, extra...)
	}
	left := func(t *testing.T) {
		t.Helper()
		r, err := runCmd(time.Minute, append(os.Environ(), "DOCKER_HOST=unix://"+sock), docker, "ps", "-aq")
		if err != nil || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("docker ps -aq: %v: containers left: %s", err, r)
		}
	}

	for _, tc := range []struct {
		name    string
		runtime []string
		check   func(t *testing.T, p probeJSON)
	}{
		{"harden", []string{"--runtime", hardenRuntime}, func(t *testing.T, p probeJSON) {
			for _, id := range p.Summary.OpenVectors {
				if !slices.Contains(baselineOpen, id) {
					t.Errorf("%s is open under baseline, which does not allow it: %s", id, p.result(id))
				}
			}
			// The record has Docker's container id, not the name; this
			// daemon's log has no other container.
			rec := findRecord(t, decisions, "docker create", func(r record) bool { return r.Event == "create" && r.Namespace == "moby" })
			if rec.Result != "hardened" || rec.Identity.Engine != "docker" {
				t.Errorf("record: result %q engine %q, want hardened docker:\n%s", rec.Result, rec.Identity.Engine, rec)
			}
		}},
		// Docker's defaults: its seccomp profile, but no no_new_privileges
		// and no pids limit (docs/security.md).
		{"default", nil, func(t *testing.T, p probeJSON) {
			for id, want := range map[string]string{"seccomp.off": "blocked", "nnp.off": "open", "limit.pids": "open"} {
				if got := p.result(id); !strings.HasPrefix(got, want) {
					t.Errorf("%s is %s under Docker's defaults, want %s", id, got, want)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hardenctlProbe(t, args(append(tc.runtime, inst.image)...)...)
			left(t)
			var p probeJSON
			if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || r.code != 0 {
				t.Fatalf("exit %d, --json output: %v\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
			}
			if p.Summary.Total != len(probe.Vectors()) || p.Summary.Missing != 0 || p.Summary.ProbeErrors != 0 {
				t.Errorf("summary %+v, want all %d vectors measured", p.Summary, len(probe.Vectors()))
			}
			tc.check(t, p)
		})
	}
}
