package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// These tests drive harden-runc, built from this tree, the way engines
// drive runc: real runc 1.4.0 (and crun) run the containers, and the kernel
// reports, from inside them, what harden-runc changed.

// statusProbe prints the process's capability masks, no_new_privileges and
// seccomp mode as key=value lines.
const statusProbe = `grep -E '^(CapBnd|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'; echo done=1`

// hardenRunc is a built harden-runc with its own node configuration,
// policy, decision log, state directory and runtime root.
type hardenRunc struct {
	t       *testing.T
	bin     string
	dir     string
	config  string
	root    string
	runtime string // the runc it hands containers to
}

// newHardenRunc builds harden-runc and writes a node configuration whose
// policy is policyYAML ("" for the embedded default).
func newHardenRunc(t *testing.T, policyYAML string) *hardenRunc {
	t.Helper()
	runc := need(t, "HARDEN_RUNC")
	dir := t.TempDir()
	h := &hardenRunc{t: t, bin: filepath.Join(dir, "harden-runc"), dir: dir, root: filepath.Join(dir, "root"), runtime: runc}
	build := exec.Command("go", "build", "-o", h.bin, "github.com/harden-dev/harden/cmd/harden-runc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build harden-runc: %v\n%s", err, out)
	}
	h.config = h.writeConfig("config.toml", policyYAML)
	return h
}

// writeConfig writes another node configuration with its own policy and
// the same state directory, so one container can be judged by two
// policies.
func (h *hardenRunc) writeConfig(name, policyYAML string) string {
	h.t.Helper()
	policy := filepath.Join(h.dir, name+".policy.yaml")
	if policyYAML != "" {
		if err := os.WriteFile(policy, []byte(policyYAML), 0o600); err != nil {
			h.t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf("PolicyPath = %q\nDecisionLog = %q\nStateDir = %q\nBinaryName = %q\n",
		policy, filepath.Join(h.dir, "decisions.log"), filepath.Join(h.dir, "state"), h.runtime)
	if crun := env["HARDEN_CRUN"]; crun != "" {
		cfg += fmt.Sprintf("CrunPath = %q\n", crun)
	}
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// result is one harden-runc run.
type runResult struct {
	stdout, stderr string
	err            error
}

func (r runResult) String() string {
	return fmt.Sprintf("err: %v\nstdout: %s\nstderr: %s", r.err, r.stdout, r.stderr)
}

// run runs `harden-runc --harden-config C --root R args...` to completion.
func (h *hardenRunc) run(config string, args ...string) runResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{"--harden-config", config, "--root", h.root}, args...)
	cmd := exec.CommandContext(ctx, h.bin, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return runResult{stdout.String(), stderr.String(), err}
}

// create runs `create` with files as stdio: the container's init keeps
// runc's stdout and stderr, and a pipe would never reach EOF.
func (h *hardenRunc) create(config, bundle, id string, extra ...string) runResult {
	h.t.Helper()
	out, err := os.CreateTemp(h.dir, "create-out-*")
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.CreateTemp(h.dir, "create-err-*")
	if err != nil {
		h.t.Fatal(err)
	}
	defer errf.Close()
	h.t.Cleanup(func() { h.forceDelete(id) })
	argv := append([]string{"--harden-config", config, "--root", h.root}, extra...)
	argv = append(argv, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "init.pid"), id)
	cmd := exec.Command(h.bin, argv...)
	cmd.Stdout, cmd.Stderr = out, errf
	rerr := cmd.Run()
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errf.Name())
	return runResult{string(o), string(e), rerr}
}

// forceDelete removes a container with the real runc, whatever state it is
// in, so no test leaves a process behind.
func (h *hardenRunc) forceDelete(id string) {
	_ = exec.Command(h.runtime, "--root", h.root, "delete", "--force", id).Run()
}

// keyValues parses probe output.
func keyValues(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			out[k] = v
		}
	}
	return out
}

// writeSpec writes a bundle for s.
func writeSpec(t *testing.T, s *specs.Spec) string {
	t.Helper()
	bundle := t.TempDir()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// sleeper is the engine-like spec running a process that waits.
func sleeper(t *testing.T, id string) *specs.Spec {
	s := engineLikeSpec(copyRootfs(t, need(t, "HARDEN_IMAGES")), id, 0)
	s.Process.Args = []string{"sleep", "600"}
	return s
}

func testID(t *testing.T, name string) string {
	return fmt.Sprintf("harden-runc-%s-%d", name, os.Getpid())
}

// TestRuncwrapRun: `harden-runc run` of an engine-like spec runs the
// container hardened by the default policy (baseline).
func TestRuncwrapRun(t *testing.T) {
	h := newHardenRunc(t, "")
	id := testID(t, "run")
	bundle := writeSpec(t, engineLikeSpec(copyRootfs(t, need(t, "HARDEN_IMAGES")), id, 0))
	t.Cleanup(func() { h.forceDelete(id) })
	r := h.run(h.config, "run", "--bundle", bundle, id)
	if r.err != nil {
		t.Fatalf("run: %v", r)
	}
	got := keyValues(r.stdout)
	if got["done"] != "1" {
		t.Fatalf("probe did not finish: %v", r)
	}
	if want := capMask(profiles.BaselineCapabilities); got["CapBnd"] != want || got["CapEff"] != want {
		t.Errorf("CapBnd %s CapEff %s, want %s", got["CapBnd"], got["CapEff"], want)
	}
	if got["NoNewPrivs"] != "1" || got["Seccomp"] != "2" || got["masked:/proc/keys"] != "yes" || got["pidsmax"] != "4096" {
		t.Errorf("not hardened: %v", got)
	}
	// The decision is on record, for hardenctl ps.
	rc := &node.Recorder{StateDir: filepath.Join(h.dir, "state")}
	rec, ok, err := rc.FindState(id, h.root)
	if err != nil || !ok || rec.Runtime != h.runtime || rec.Result != node.ResultHardened || rec.Entry != "harden-runc" {
		t.Fatalf("state record %+v (%v, %v)", rec, ok, err)
	}
}

// TestRuncwrapCreateExec: exec'd processes, from a --process file or from
// flags, get no capability the container lacks, and keep its
// no_new_privileges; state, kill and delete pass through unchanged.
func TestRuncwrapCreateExec(t *testing.T) {
	h := newHardenRunc(t, "")
	id := testID(t, "exec")
	bundle := writeSpec(t, sleeper(t, id))
	if r := h.create(h.config, bundle, id); r.err != nil || r.stdout != "" {
		t.Fatalf("create: %v", r)
	}
	if r := h.run(h.config, "start", id); r.err != nil || r.stdout != "" || r.stderr != "" {
		t.Fatalf("start: %v", r)
	}
	containerCaps := capMask(profiles.BaselineCapabilities)

	// exec --process with every capability, as `docker exec --privileged`
	// or an engine that builds the process from its unhardened spec.
	all := spec.AllCapabilities
	proc := specs.Process{
		Args: []string{"/bin/sh", "-c", statusProbe}, Cwd: "/", Env: []string{"PATH=/bin:/usr/bin"},
		Capabilities: &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all},
	}
	pj, _ := json.Marshal(proc)
	pfile := filepath.Join(h.dir, "process.json")
	if err := os.WriteFile(pfile, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run(h.config, "exec", "--process", pfile, id)
	got := keyValues(r.stdout)
	if r.err != nil || got["done"] != "1" {
		t.Fatalf("exec --process: %v", r)
	}
	if got["CapBnd"] != containerCaps || got["CapEff"] != containerCaps || got["NoNewPrivs"] != "1" || got["Seccomp"] != "2" {
		t.Errorf("exec --process with all capabilities: %v, want CapBnd=CapEff=%s NoNewPrivs=1 Seccomp=2", got, containerCaps)
	}
	if after, _ := os.ReadFile(pfile); !bytes.Equal(after, pj) {
		t.Error("the caller's process file was changed")
	}

	// exec with --cap CAP_SYS_ADMIN and --no-new-privs=false inline.
	r = h.run(h.config, "exec", "--cap", "CAP_SYS_ADMIN", "--cap=CAP_KILL", "--no-new-privs=false", id, "/bin/sh", "-c", statusProbe)
	got = keyValues(r.stdout)
	if r.err != nil || got["done"] != "1" {
		t.Fatalf("exec --cap: %v", r)
	}
	if got["CapBnd"] != containerCaps || got["NoNewPrivs"] != "1" {
		t.Errorf("exec --cap CAP_SYS_ADMIN: %v, want CapBnd=%s NoNewPrivs=1", got, containerCaps)
	}
	decisions, _ := os.ReadFile(filepath.Join(h.dir, "decisions.log"))
	if !strings.Contains(string(decisions), `"event":"exec"`) || !strings.Contains(string(decisions), `"CAP_SYS_ADMIN"`) {
		t.Errorf("the dropped capability is not on record:\n%s", decisions)
	}

	// state prints runc's JSON and nothing else; kill and delete pass.
	r = h.run(h.config, "state", id)
	var st struct{ Status, Bundle string }
	if r.err != nil || r.stderr != "" || json.Unmarshal([]byte(r.stdout), &st) != nil || st.Status != "running" || st.Bundle != bundle {
		t.Fatalf("state: %v", r)
	}
	if r := h.run(h.config, "kill", id, "KILL"); r.err != nil || r.stdout != "" {
		t.Fatalf("kill: %v", r)
	}
	waitStopped(t, h, id)
	if r := h.run(h.config, "delete", id); r.err != nil || r.stdout != "" {
		t.Fatalf("delete: %v", r)
	}
	if r := h.run(h.config, "state", id); r.err == nil {
		t.Fatalf("state after delete: %v", r)
	}
	rc := &node.Recorder{StateDir: filepath.Join(h.dir, "state")}
	if _, ok, _ := rc.FindState(id, h.root); ok {
		t.Error("delete left the container's record")
	}
}

func waitStopped(t *testing.T, h *hardenRunc, id string) {
	t.Helper()
	for range 100 {
		r := h.run(h.config, "state", id)
		var st struct{ Status string }
		if json.Unmarshal([]byte(r.stdout), &st) == nil && st.Status == "stopped" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s did not stop", id)
}

const cappedPolicy = `apiVersion: harden.dev/v1alpha1
kind: Policy
defaults: {profile: capped}
profiles:
- name: capped
  extends: baseline
  resources: {memory: 256Mi, onExceed: %s}
`

// TestRuncwrapUpdate: an update above the profile's memory ceiling is
// lowered (onExceed: lower) or refused (onExceed: refuse), as the
// container's cgroup shows.
func TestRuncwrapUpdate(t *testing.T) {
	h := newHardenRunc(t, fmt.Sprintf(cappedPolicy, "lower"))
	refuse := h.writeConfig("refuse.toml", fmt.Sprintf(cappedPolicy, "refuse"))
	id := testID(t, "update")
	s := sleeper(t, id)
	start := int64(64 << 20)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &start}
	bundle := writeSpec(t, s)
	if r := h.create(h.config, bundle, id); r.err != nil {
		t.Fatalf("create: %v", r)
	}
	limit := func() string {
		for _, p := range []string{"/sys/fs/cgroup/memory" + s.Linux.CgroupsPath + "/memory.limit_in_bytes", "/sys/fs/cgroup" + s.Linux.CgroupsPath + "/memory.max"} {
			if b, err := os.ReadFile(p); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		t.Fatalf("no memory cgroup for %s", s.Linux.CgroupsPath)
		return ""
	}
	if got := limit(); got != fmt.Sprint(start) {
		t.Fatalf("memory limit after create = %s, want %d", got, start)
	}

	res := filepath.Join(h.dir, "resources.json")
	if err := os.WriteFile(res, []byte(`{"memory":{"limit":1073741824}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := h.run(h.config, "update", "-r", res, id); r.err != nil {
		t.Fatalf("update -r: %v", r)
	}
	if got := limit(); got != fmt.Sprint(256<<20) {
		t.Fatalf("memory limit after update -r 1GiB = %s, want the 256MiB ceiling", got)
	}
	if r := h.run(h.config, "update", "--memory", "100m", id); r.err != nil {
		t.Fatalf("update --memory 100m: %v", r)
	}
	if got := limit(); got != fmt.Sprint(100<<20) {
		t.Fatalf("memory limit after update --memory 100m = %s, want %d", got, 100<<20)
	}
	if r := h.run(h.config, "update", "--memory=2g", id); r.err != nil {
		t.Fatalf("update --memory=2g: %v", r)
	}
	if got := limit(); got != fmt.Sprint(256<<20) {
		t.Fatalf("memory limit after update --memory=2g = %s, want the 256MiB ceiling", got)
	}

	// onExceed: refuse. The error reaches the caller as runc's would: a
	// JSON error line in --log, a non-zero exit, nothing on stdout.
	logFile := filepath.Join(h.dir, "log.json")
	r := h.run(refuse, "--log", logFile, "--log-format", "json", "update", "-r", res, id)
	if r.err == nil || r.stdout != "" {
		t.Fatalf("update above the ceiling under onExceed refuse: %v", r)
	}
	line := lastLogLine(t, logFile)
	if line.Level != "error" || !strings.Contains(line.Msg, profiles.RuleResources) {
		t.Fatalf("last --log line = %+v, want an error naming %s", line, profiles.RuleResources)
	}
	if got := limit(); got != fmt.Sprint(256<<20) {
		t.Fatalf("memory limit after a refused update = %s", got)
	}
}

type logLine struct{ Level, Msg, Time string }

func lastLogLine(t *testing.T, path string) logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("--log file: %v", err)
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			last = sc.Text()
		}
	}
	var l logLine
	if err := json.Unmarshal([]byte(last), &l); err != nil {
		t.Fatalf("last --log line %q: %v", last, err)
	}
	return l
}

// TestRuncwrapRefusesPrivileged: a privileged spec (every host device) is
// refused: create fails, the runc-style error names the rule, stdout stays
// empty and no container exists.
func TestRuncwrapRefusesPrivileged(t *testing.T) {
	h := newHardenRunc(t, "")
	id := testID(t, "privileged")
	s := sleeper(t, id)
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	bundle := writeSpec(t, s)
	before, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	logFile := filepath.Join(h.dir, "log.json")
	r := h.create(h.config, bundle, id, "--log", logFile, "--log-format", "json")
	if r.err == nil || r.stdout != "" || !strings.Contains(r.stderr, profiles.RulePrivileged) {
		t.Fatalf("create of a privileged spec: %v", r)
	}
	if line := lastLogLine(t, logFile); line.Level != "error" || !strings.Contains(line.Msg, profiles.RulePrivileged) || line.Time == "" {
		t.Fatalf("last --log line = %+v", line)
	}
	if after, _ := os.ReadFile(filepath.Join(bundle, "config.json")); !bytes.Equal(before, after) {
		t.Error("the refused bundle was changed")
	}
	if r := h.run(h.config, "state", id); r.err == nil {
		t.Fatalf("a refused container exists: %v", r)
	}
}

// TestRuncwrapVersion: --version is the runtime's, byte for byte (engines
// parse it).
func TestRuncwrapVersion(t *testing.T) {
	h := newHardenRunc(t, "")
	want, err := exec.Command(h.runtime, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if r := h.run(h.config, "--version"); r.err != nil || r.stdout != string(want) || r.stderr != "" {
		t.Fatalf("--version: %v\nwant %s", r, want)
	}
}

// TestRuncwrapCrunBackend: a rule with backend crun hands the container to
// crun, hardened, and exec --process (passed to crun as an inherited
// memfd) is hardened there too.
func TestRuncwrapCrunBackend(t *testing.T) {
	crun := need(t, "HARDEN_CRUN")
	h := newHardenRunc(t, "apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, backend: crun}\n")
	h.runtime = crun // for forceDelete
	id := testID(t, "crun")
	bundle := writeSpec(t, sleeper(t, id))
	if r := h.create(h.config, bundle, id); r.err != nil {
		t.Fatalf("create: %v", r)
	}
	rc := &node.Recorder{StateDir: filepath.Join(h.dir, "state")}
	if rec, ok, _ := rc.FindState(id, h.root); !ok || rec.Runtime != crun {
		t.Fatalf("record %+v, want runtime %s", rec, crun)
	}
	if r := h.run(h.config, "start", id); r.err != nil {
		t.Fatalf("start: %v", r)
	}
	all := spec.AllCapabilities
	pj, _ := json.Marshal(specs.Process{Args: []string{"/bin/sh", "-c", statusProbe}, Cwd: "/", Env: []string{"PATH=/bin"},
		Capabilities: &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}})
	pfile := filepath.Join(h.dir, "process.json")
	if err := os.WriteFile(pfile, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	r := h.run(h.config, "exec", "--process", pfile, id)
	got := keyValues(r.stdout)
	if want := capMask(profiles.BaselineCapabilities); r.err != nil || got["CapBnd"] != want || got["CapEff"] != want || got["NoNewPrivs"] != "1" || got["Seccomp"] != "2" {
		t.Fatalf("crun exec --process: %v\nprobe %v, want CapBnd=CapEff=%s", r, got, want)
	}
	if r := h.run(h.config, "delete", "--force", id); r.err != nil {
		t.Fatalf("delete --force: %v", r)
	}
}
