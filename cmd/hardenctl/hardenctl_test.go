package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gopkg.in/yaml.v3"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// binary is hardenctl, built once for the whole run: the tests run it as an
// operator would and look only at its output and exit status.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hardenctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hardenctl")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hardenctl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// hardenctl runs the binary with stdin and returns what it printed.
func hardenctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run hardenctl %v: %v", args, err)
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: code}
	for _, s := range []string{r.stdout, r.stderr} {
		if strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") || strings.Contains(s, "internal error") {
			t.Fatalf("hardenctl %v crashed:\n%s%s", args, r.stdout, r.stderr)
		}
	}
	return r
}

func (r result) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func (r result) has(t *testing.T, stream string, subs ...string) {
	t.Helper()
	s := r.stdout
	if stream == "stderr" {
		s = r.stderr
	}
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", stream, sub, s)
		}
	}
}

// policy copies a testdata policy where profiles.Load trusts it: a file
// writable by group or others is refused, and a checkout may have 0664.
func policy(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "policy", name))
	if err != nil {
		t.Fatal(err)
	}
	return writePolicy(t, name, data)
}

// defaultPolicy is the embedded default as a file, so that tests do not
// depend on whether this machine has /etc/harden/policy.yaml.
func defaultPolicy(t *testing.T) string {
	return writePolicy(t, "default.yaml", profiles.DefaultPolicyYAML())
}

func writePolicy(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

func specFile(name string) string { return filepath.Join("testdata", "spec", name) }

// bundle makes a bundle directory whose config.json is a testdata spec.
func bundle(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(specFile(name))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeReport parses diff or apply --json output and checks its stable
// top-level field names.
func decodeReport(t *testing.T, out string) *report {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	for _, k := range []string{"policy", "spec", "target", "identity", "decision", "changes", "allowed"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("--json output lacks %q", k)
		}
	}
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not decode: %v", err)
	}
	if r.Outcome == nil {
		t.Fatal("--json output has no outcome")
	}
	return &r
}

// findChange returns the first change at path with op.
func findChange(cs []spec.Change, path string, op spec.Op) *spec.Change {
	for i := range cs {
		if cs[i].Path == path && cs[i].Op == op {
			return &cs[i]
		}
	}
	return nil
}

func TestPolicyValidate(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	tests := []struct {
		name    string
		file    string
		code    int
		stdout  []string
		stderr  []string
		notWant string
	}{
		{name: "good", file: policy(t, "good.yaml"), stdout: []string{"good.yaml: ok (2 rules, 1 profile)"}},
		{name: "default", file: defaultPolicy(t), stdout: []string{"default.yaml: ok (0 rules, 0 profiles)"}},
		{
			name: "unknown field", file: policy(t, "unknown-field.yaml"), code: 1,
			stderr: []string{"hardenctl: load policy ", "unknown-field.yaml", "line 6", "colour"},
		},
		{
			name: "unknown capability", file: policy(t, "unknown-capability.yaml"), code: 1,
			stderr: []string{"unknown-capability.yaml", `unknown capability "CAP_FLY"`, `profile "flying"`},
		},
		{
			name: "unknown syscall in seccomp deny", file: policy(t, "unknown-syscall.yaml"), code: 1,
			stderr: []string{"unknown-syscall.yaml", "seccomp.deny", `unknown syscall "not_a_syscall"`},
		},
		{name: "missing file", file: missing, code: 1, stderr: []string{"hardenctl: load policy", missing, "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := hardenctl(t, "", "policy", "validate", tc.file)
			r.want(t, tc.code)
			r.has(t, "stdout", tc.stdout...)
			r.has(t, "stderr", tc.stderr...)
			if tc.code != 0 && strings.Contains(r.stdout, ": ok") {
				t.Errorf("a failing file is reported ok:\n%s", r.stdout)
			}
		})
	}

	t.Run("one bad file fails the run, the good one is still reported", func(t *testing.T) {
		r := hardenctl(t, "", "policy", "validate", policy(t, "good.yaml"), policy(t, "unknown-field.yaml"))
		r.want(t, 1)
		r.has(t, "stdout", "good.yaml: ok")
		r.has(t, "stderr", "line 6")
	})
	t.Run("stdin", func(t *testing.T) {
		r := hardenctl(t, string(readFile(t, "testdata/policy/good.yaml")), "policy", "validate", "-")
		r.want(t, 0)
		r.has(t, "stdout", "<stdin>: ok (2 rules, 1 profile)")
		r = hardenctl(t, "apiVersion: harden.dev/v1alpha1\nkind: Policy\nbogus: 1\n", "policy", "validate", "-")
		r.want(t, 1)
		r.has(t, "stderr", "line 3", "bogus")
	})
	t.Run("json", func(t *testing.T) {
		r := hardenctl(t, "", "policy", "validate", "--json", policy(t, "good.yaml"), policy(t, "unknown-field.yaml"))
		r.want(t, 1)
		var vs []validation
		if err := json.Unmarshal([]byte(r.stdout), &vs); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
		}
		if len(vs) != 2 || !vs[0].OK || vs[0].Rules != 2 || vs[0].Profiles != 1 || vs[1].OK || !strings.Contains(vs[1].Error, "line 6") {
			t.Errorf("unexpected results: %+v", vs)
		}
	})
}

func TestDiffDropsNetRaw(t *testing.T) {
	pol := defaultPolicy(t)
	r := hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol)
	r.want(t, 0)
	r.has(t, "stdout",
		"policy     "+pol,
		"decision   rule defaults, profile baseline, mode enforce, backend runc",
		"caps.drop", "- CAP_NET_RAW", "process.capabilities.{bounding,effective,permitted}",
		"process.no-new-privileges", "process.noNewPrivileges", "false -> true",
		"Enforcement on runc", "OK: the container would start")
	if strings.Contains(r.stdout, "REFUSED") {
		t.Errorf("netraw.json is reported refused:\n%s", r.stdout)
	}

	r = hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol, "--json")
	r.want(t, 0)
	rep := decodeReport(t, r.stdout)
	if !rep.Allowed || rep.Target != "container" || rep.Decision.Profile != profiles.Baseline {
		t.Errorf("allowed %v target %q profile %q", rep.Allowed, rep.Target, rep.Decision.Profile)
	}
	for _, set := range []string{"bounding", "effective", "permitted"} {
		ch := findChange(rep.Changes, "process.capabilities."+set, spec.OpRemove)
		if ch == nil || !strings.Contains(fmt.Sprint(ch.Before), "CAP_NET_RAW") || ch.Rule != profiles.RuleCaps {
			t.Errorf("no caps.drop of CAP_NET_RAW from %s: %+v", set, ch)
		}
	}
	if ch := findChange(rep.Changes, "process.noNewPrivileges", spec.OpSet); ch == nil || ch.After != true {
		t.Errorf("noNewPrivileges not set: %+v", ch)
	}
	if len(rep.Enforcement) != len(spec.AllControls) {
		t.Errorf("enforcement lists %d controls, want %d", len(rep.Enforcement), len(spec.AllControls))
	}
}

func TestDiffRefusesPrivileged(t *testing.T) {
	pol := defaultPolicy(t)
	r := hardenctl(t, "", "diff", "--spec", specFile("privileged.json"), "--policy", pol)
	r.want(t, 1)
	r.has(t, "stdout", "Refusals: 1", "privileged.deny", "linux.resources.devices[0]",
		"REFUSED: the container would not start", "harden: policy violation: rule privileged.deny")
	r.has(t, "stderr", "hardenctl: harden container ", "privileged.deny")
	if !strings.HasPrefix(r.stderr, "hardenctl: ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("stderr is not one hardenctl: line:\n%s", r.stderr)
	}

	r = hardenctl(t, "", "diff", "--spec", specFile("privileged.json"), "--policy", pol, "--json")
	r.want(t, 1)
	rep := decodeReport(t, r.stdout)
	if rep.Allowed || len(rep.Violations) != 1 || rep.Violations[0].Rule != profiles.RulePrivileged ||
		!strings.Contains(rep.Refusal, "privileged.deny") {
		t.Errorf("allowed %v violations %+v refusal %q", rep.Allowed, rep.Violations, rep.Refusal)
	}
}

func TestDiffUnified(t *testing.T) {
	pol := defaultPolicy(t)
	r := hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol, "--unified")
	r.want(t, 0)
	r.has(t, "stdout", "--- testdata/spec/netraw.json\n", "+++ testdata/spec/netraw.json (hardened)\n",
		"\n-        \"CAP_NET_RAW\"\n", "\n+    \"noNewPrivileges\": true\n", "\n+    \"maskedPaths\": [\n",
		"more lines (hardenctl diff --output=patch prints them)")

	r = hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol, "--output=patch")
	r.want(t, 0)
	if !strings.HasPrefix(r.stdout, "--- ") || strings.Contains(r.stdout, "more lines") {
		t.Errorf("--output=patch is not the whole patch:\n%.400s", r.stdout)
	}
	r.has(t, "stdout", "\n+    \"seccomp\": {\n", "\n+            \"accept4\",\n")

	// The patch of an audit policy shows what enforce would write.
	r = hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", policy(t, "audit.yaml"), "--unified")
	r.want(t, 0)
	r.has(t, "stdout", "\n+    \"noNewPrivileges\": true\n", "note: audit mode")
}

func TestDiffWritesNothing(t *testing.T) {
	dir := bundle(t, "netraw.json")
	before := readFile(t, filepath.Join(dir, "config.json"))
	r := hardenctl(t, "", "diff", "--bundle", dir, "--policy", defaultPolicy(t), "--unified")
	r.want(t, 0)
	if !bytes.Equal(before, readFile(t, filepath.Join(dir, "config.json"))) {
		t.Error("diff changed config.json")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("diff left files in the bundle: %v", entries)
	}
}

func TestDiffExecAndUpdate(t *testing.T) {
	pol := defaultPolicy(t)
	r := hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol,
		"--exec-process", specFile("exec-process.json"), "--json")
	r.want(t, 0)
	rep := decodeReport(t, r.stdout)
	if rep.Target != "exec" {
		t.Errorf("target %q", rep.Target)
	}
	if ch := findChange(rep.Changes, "process.capabilities.bounding", spec.OpRemove); ch == nil || !strings.Contains(fmt.Sprint(ch.Before), "CAP_SYS_ADMIN") {
		t.Errorf("exec keeps CAP_SYS_ADMIN: %+v", rep.Changes)
	}
	if findChange(rep.Changes, "process.noNewPrivileges", spec.OpSet) == nil {
		t.Errorf("exec does not get noNewPrivileges: %+v", rep.Changes)
	}

	r = hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", pol, "--update", specFile("update-pids.json"))
	r.want(t, 0)
	r.has(t, "stdout", "resources.ceiling", "linux.resources.pids.limit", "100000 -> 4096", "OK: the update would be applied")

	// Exec and update are decided with the container's full identity, so
	// an identity flag picks the same rule for them as for the container.
	nsPol := writePolicy(t, "ns.yaml", []byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, mode: audit}\nrules:\n- {name: moby, profile: baseline, match: {engineNamespaces: [moby]}}\n"))
	r = hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", nsPol, "--update", specFile("update-pids.json"), "--namespace", "moby")
	r.want(t, 0)
	r.has(t, "stdout", "rule moby", "mode enforce")
}

func TestApply(t *testing.T) {
	pol := defaultPolicy(t)
	dir := bundle(t, "netraw.json")
	cfg := filepath.Join(dir, "config.json")
	orig := readFile(t, cfg)
	inode := func() uint64 {
		fi, err := os.Stat(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	ino := inode()

	r := hardenctl(t, "", "apply", "--bundle", dir, "--policy", pol, "--json")
	r.want(t, 0)
	rep := decodeReport(t, r.stdout)
	if rep.Written == nil || !*rep.Written || changeCount(rep.Changes) == 0 {
		t.Fatalf("first apply: written %v, %d changes", rep.Written, len(rep.Changes))
	}
	hardened := readFile(t, cfg)
	if bytes.Equal(orig, hardened) {
		t.Fatal("config.json unchanged")
	}
	var s specs.Spec
	if err := json.Unmarshal(hardened, &s); err != nil {
		t.Fatalf("hardened config.json does not parse: %v", err)
	}
	if !s.Process.NoNewPrivileges || slices.Contains(s.Process.Capabilities.Bounding, "CAP_NET_RAW") || s.Linux.Seccomp == nil {
		t.Errorf("config.json is not hardened: nnp %v bounding %v seccomp %v", s.Process.NoNewPrivileges, s.Process.Capabilities.Bounding, s.Linux.Seccomp != nil)
	}
	// Atomic replacement: a new inode renamed over the old file, the mode
	// kept, no temporary file left behind.
	if inode() == ino {
		t.Error("config.json was rewritten in place, not replaced by rename")
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("apply left files in the bundle: %v", entries)
	}

	// Idempotent: a second apply changes nothing and writes nothing.
	r = hardenctl(t, "", "apply", "--bundle", dir, "--policy", pol, "--json")
	r.want(t, 0)
	rep = decodeReport(t, r.stdout)
	if len(rep.Changes) != 0 || rep.Written == nil || *rep.Written {
		t.Errorf("second apply: written %v, changes %+v", rep.Written, rep.Changes)
	}
	if !bytes.Equal(hardened, readFile(t, cfg)) {
		t.Error("second apply changed config.json")
	}
	r = hardenctl(t, "", "apply", "--bundle", dir, "--policy", pol)
	r.want(t, 0)
	r.has(t, "stdout", "Changes: 0", "OK: nothing to change")
}

func TestApplyAuditWritesNothing(t *testing.T) {
	dir := bundle(t, "netraw.json")
	cfg := filepath.Join(dir, "config.json")
	orig := readFile(t, cfg)
	r := hardenctl(t, "", "apply", "--bundle", dir, "--policy", policy(t, "audit.yaml"), "--json")
	r.want(t, 0)
	rep := decodeReport(t, r.stdout)
	if rep.Decision.Mode != spec.Audit || rep.Written == nil || *rep.Written || changeCount(rep.Changes) == 0 {
		t.Errorf("audit apply: mode %s written %v changes %d", rep.Decision.Mode, rep.Written, len(rep.Changes))
	}
	if !bytes.Equal(orig, readFile(t, cfg)) {
		t.Error("audit mode changed config.json")
	}
	r = hardenctl(t, "", "apply", "--bundle", dir, "--policy", policy(t, "audit.yaml"))
	r.want(t, 0)
	r.has(t, "stdout", "AUDIT:", "Nothing was written")
	if !bytes.Equal(orig, readFile(t, cfg)) {
		t.Error("audit mode changed config.json")
	}
}

func TestApplyRefusedLeavesFile(t *testing.T) {
	dir := bundle(t, "privileged.json")
	cfg := filepath.Join(dir, "config.json")
	orig := readFile(t, cfg)
	r := hardenctl(t, "", "apply", "--bundle", dir, "--policy", defaultPolicy(t))
	r.want(t, 1)
	r.has(t, "stdout", "REFUSED", "was left untouched")
	r.has(t, "stderr", "privileged.deny")
	if !bytes.Equal(orig, readFile(t, cfg)) {
		t.Error("a refused apply changed config.json")
	}
}

func TestApplyKeepsUnknownFields(t *testing.T) {
	dir := bundle(t, "future-fields.json")
	r := hardenctl(t, "", "apply", "--bundle", dir, "--policy", defaultPolicy(t))
	r.want(t, 0)
	var doc struct {
		Future  map[string]string `json:"zFutureField"`
		Process struct {
			IOPrio map[string]string `json:"ioPriorityFromTheFuture"`
			NNP    bool              `json:"noNewPrivileges"`
		} `json:"process"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "config.json")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Future["keep"] != "me" || doc.Process.IOPrio["class"] != "idle" || !doc.Process.NNP {
		t.Errorf("unknown fields lost or spec not hardened: %+v", doc)
	}
}

func TestExplain(t *testing.T) {
	pol := policy(t, "good.yaml")
	r := hardenctl(t, "", "explain", "--spec", specFile("future-fields.json"), "--policy", pol, "--image", "registry.example/web/app:1")
	r.want(t, 0)
	r.has(t, "stdout",
		`rule "system" does not match`, `rule "web" matches`,
		"rule web -> profile web, mode enforce, backend runc",
		"Profile web (extends chain: web -> restricted -> baseline)",
		"CAP_NET_BIND_SERVICE", "memory <= 8Gi, pids <= 1024", "runtime-default", "yes (uid 0 is refused)")

	r = hardenctl(t, "", "explain", "--spec", specFile("netraw.json"), "--policy", pol, "--json")
	r.want(t, 0)
	var ex explanation
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil {
		t.Fatalf("--json output does not parse: %v", err)
	}
	if ex.Decision.Rule != "defaults" || len(ex.Profiles) != 1 || ex.Profiles[0].Name != profiles.Baseline || len(ex.Enforcement) == 0 {
		t.Errorf("unexpected explanation: %+v", ex)
	}
}

func TestPolicyShow(t *testing.T) {
	r := hardenctl(t, "", "policy", "show", "--default")
	r.want(t, 0)
	if !strings.Contains(r.stdout, string(profiles.DefaultPolicyYAML())) {
		t.Errorf("--default does not print the embedded policy:\n%s", r.stdout)
	}

	r = hardenctl(t, "", "policy", "show", "--resolved", "--policy", policy(t, "good.yaml"))
	r.want(t, 0)
	r.has(t, "stdout", "# profile strict, resolved (extends chain: strict -> restricted -> baseline)",
		"# profile web, resolved (extends chain: web -> restricted -> baseline)", "allowHostNamespaces: []")
	// Every document is a complete profile that decodes strictly.
	dec := yaml.NewDecoder(strings.NewReader(r.stdout))
	dec.KnownFields(true)
	byName := map[string]profiles.Profile{}
	for {
		var p profiles.Profile
		if err := dec.Decode(&p); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("resolved profile does not decode: %v", err)
		}
		byName[p.Name] = p
	}
	web, ok := byName["web"]
	if !ok || len(byName) != 4 {
		t.Fatalf("resolved profiles: %v", slices.Sorted(maps.Keys(byName)))
	}
	if web.Resources == nil || web.Resources.Memory != "8Gi" || web.RunAsNonRoot == nil || !*web.RunAsNonRoot ||
		web.Capabilities == nil || !slices.Equal(web.Capabilities.Allow, []string{"CAP_NET_BIND_SERVICE"}) || web.Seccomp == nil {
		t.Errorf("web is not resolved through restricted and baseline: %+v", web)
	}

	r = hardenctl(t, "", "policy", "show", "--resolved", "--default", "--json")
	r.want(t, 0)
	var out struct {
		Profiles []resolvedProfile `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Profiles) != 3 {
		t.Errorf("--json: %v, %d profiles", err, len(out.Profiles))
	}
}

func TestAppArmor(t *testing.T) {
	r := hardenctl(t, "", "apparmor", "show")
	r.want(t, 0)
	r.has(t, "stdout", "profile harden-default flags=")
	r = hardenctl(t, "", "apparmor", "show", "bad name")
	r.want(t, 1)
	r.has(t, "stderr", "invalid AppArmor profile name")

	if profiles.DetectHost().AppArmor {
		t.Skip("this host has AppArmor: not loading a profile into it from a test")
	}
	r = hardenctl(t, "", "apparmor", "load")
	r.want(t, 1)
	r.has(t, "stderr", "hardenctl: load apparmor profile harden-default: ", "no AppArmor", "nothing was loaded")
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"policy"},
		{"policy", "frob"},
		{"policy", "validate"},
		{"diff"},
		{"diff", "--spec", "a.json", "--bundle", "b"},
		{"diff", "--spec", "a.json", "--no-such-flag"},
		{"diff", "--spec", "a.json", "--output", "yaml"},
		{"diff", "--spec", "a.json", "extra"},
		{"apply", "--spec", "a.json"},
		{"apparmor", "show", "a", "b"},
		{"help", "frobnicate"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := hardenctl(t, "", args...)
			r.want(t, 2)
			if !strings.HasPrefix(r.stderr, "hardenctl: ") && !strings.Contains(r.stderr, "\nhardenctl: ") {
				t.Errorf("stderr has no hardenctl: error:\n%s", r.stderr)
			}
		})
	}
}

func TestBadSpecsFailCleanly(t *testing.T) {
	pol := defaultPolicy(t)
	for name, body := range map[string]string{
		"empty":      "",
		"not json":   "root:x:0:0:root:/root:/bin/bash\n",
		"array":      "[1, 2, 3]",
		"truncated":  `{"process": {"capabilities": {"bounding": ["CAP_`,
		"wrong type": `{"process": {"capabilities": {"bounding": "CAP_SYS_ADMIN"}}}`,
		"binary":     "\x00\x01\x02\xff",
	} {
		t.Run(name, func(t *testing.T) {
			r := hardenctl(t, body, "diff", "--spec", "-", "--policy", pol)
			r.want(t, 1)
			r.has(t, "stderr", "hardenctl: read spec")
		})
	}
	t.Run("no process", func(t *testing.T) {
		// A spec with nothing in it is valid JSON: it is hardened or
		// refused, never a crash.
		r := hardenctl(t, "{}", "diff", "--spec", "-", "--policy", pol)
		if r.code != 0 && r.code != 1 {
			t.Errorf("exit status %d", r.code)
		}
	})
	t.Run("missing bundle", func(t *testing.T) {
		r := hardenctl(t, "", "diff", "--bundle", filepath.Join(t.TempDir(), "nope"), "--policy", pol)
		r.want(t, 1)
		r.has(t, "stderr", "hardenctl: read bundle config")
	})
	t.Run("bad policy", func(t *testing.T) {
		r := hardenctl(t, "", "diff", "--spec", specFile("netraw.json"), "--policy", policy(t, "unknown-field.yaml"))
		r.want(t, 1)
		r.has(t, "stderr", "hardenctl: load policy", "line 6")
	})
}

func TestHelp(t *testing.T) {
	r := hardenctl(t, "", "help")
	r.want(t, 0)
	for _, cmd := range commands {
		r.has(t, "stdout", "  "+cmd.name+"  ")
		if cmd.name == "help" {
			continue
		}
		for _, args := range [][]string{append(strings.Fields(cmd.name), "-h"), append([]string{"help"}, strings.Fields(cmd.name)...)} {
			r := hardenctl(t, "", args...)
			r.want(t, 0)
			r.has(t, "stdout", "Usage: hardenctl "+cmd.name, "\nExamples:\n  ", "hardenctl "+cmd.name)
		}
	}
}

func TestJSONEverywhere(t *testing.T) {
	pol := defaultPolicy(t)
	for _, args := range [][]string{
		{"policy", "validate", "--json", pol},
		{"policy", "show", "--json", "--policy", pol},
		{"policy", "show", "--json", "--resolved", "--policy", pol},
		{"diff", "--json", "--spec", specFile("netraw.json"), "--policy", pol, "--unified"},
		{"explain", "--json", "--spec", specFile("netraw.json"), "--policy", pol},
		{"apparmor", "show", "--json"},
		{"version", "--json"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			r := hardenctl(t, "", args...)
			r.want(t, 0)
			if !json.Valid([]byte(r.stdout)) {
				t.Errorf("not JSON:\n%s", r.stdout)
			}
		})
	}
}

// engineExpect is what the default policy does to engine specs whose
// outcome is known: "" for allowed, else the rule that refuses them. Specs
// not listed only have to be hardened or refused cleanly.
var engineExpect = map[string]string{
	"ctr-run-default.json":          "",
	"cri-sandbox.json":              "",
	"cri-container.json":            "",
	"docker20-default.json":         "",
	"docker29-default.json":         "",
	"cri-container-privileged.json": profiles.RulePrivileged,
	"docker29-privileged.json":      profiles.RulePrivileged,
	"cri-sandbox-hostpid.json":      profiles.RuleHostNamespaces,
	"docker29-hostpid.json":         profiles.RuleHostNamespaces,
	"docker29-hostnet.json":         profiles.RuleHostNamespaces,
}

// TestEngineSpecs diffs every real engine spec captured under
// spec/testdata/engines (see its README): each container spec is hardened
// or refused, never a crash; each exec process and resources update is
// checked against the container spec of the engine that produced it.
func TestEngineSpecs(t *testing.T) {
	root := filepath.Join("..", "..", "spec", "testdata", "engines")
	files, err := filepath.Glob(filepath.Join(root, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no engine specs under %s yet", root)
	}
	pol := defaultPolicy(t)
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			args := []string{"diff", "--policy", pol}
			target := "container"
			for _, kind := range []struct{ prefix, flag, target string }{
				{"exec-process-", "--exec-process", "exec"},
				{"update-resources-", "--update", "update"},
			} {
				engine, ok := strings.CutPrefix(strings.TrimSuffix(name, ".json"), kind.prefix)
				if !ok {
					continue
				}
				container := engineContainer(root, engine)
				if container == "" {
					t.Skipf("no container spec of engine %q to check %s against", engine, name)
				}
				args = append(args, "--spec", container, kind.flag, f)
				target = kind.target
			}
			if target == "container" {
				args = append(args, "--spec", f)
			}
			r := hardenctl(t, "", append(args, "--unified")...)
			want, known := engineExpect[name]
			switch {
			case known && want == "":
				r.want(t, 0)
			case known:
				r.want(t, 1)
				r.has(t, "stdout", "REFUSED", "rule "+want)
				r.has(t, "stderr", "policy violation: rule "+want)
			case r.code == 1:
				r.has(t, "stderr", "policy violation")
			default:
				r.want(t, 0)
			}
			if r.code == 0 {
				r.has(t, "stdout", "OK: "+targets[target].noun+" "+targets[target].starts)
			}
			r = hardenctl(t, "", append(args, "--json")...)
			if rep := decodeReport(t, r.stdout); rep.Target != target {
				t.Errorf("target %q, want %q", rep.Target, target)
			}
		})
	}
}

// engineContainer finds the container spec captured from the same engine
// as an exec process or update ("cri" -> cri-container.json).
func engineContainer(root, engine string) string {
	for _, suffix := range []string{"-container.json", "-default.json", "-run-default.json"} {
		p := filepath.Join(root, engine+suffix)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// TestPsInspect points a container record at a live process (a sleep this
// test starts) and checks that ps and inspect show the decision and what
// the kernel reports for that process.
func TestPsInspect(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("StateDir = %q\nDecisionLog = \"off\"\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	pidFile := filepath.Join(dir, "init.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprint(sleep.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_NET_RAW", "CAP_KILL"}}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "network"}, {Type: "mount"}}}}
	out, err := c.Harden(s, spec.Identity{ID: "web-1"}, spec.Host{})
	if err != nil {
		t.Fatal(err)
	}
	rc := &node.Recorder{StateDir: dir}
	if err := rc.SaveState(node.Record{ID: "web-1", Namespace: "default", Event: node.EventCreate, Result: node.ResultHardened, PidFile: pidFile, Outcome: out}); err != nil {
		t.Fatal(err)
	}

	r := hardenctl(t, "", "ps", "--config", cfg)
	r.want(t, 0)
	r.has(t, "stdout", "web-1", fmt.Sprint(sleep.Process.Pid), "hardened", "baseline")

	// The sleep runs on the host without seccomp or no_new_privileges: the
	// kernel view disagrees with the decision, and inspect says so.
	r = hardenctl(t, "", "inspect", "web-1", "--config", cfg)
	r.want(t, 0)
	r.has(t, "stdout", "What the kernel reports", "Seccomp", "off", "MISMATCH: seccomp mode is 0")

	r = hardenctl(t, "", "inspect", "web-1", "--config", cfg, "--json")
	r.want(t, 0)
	var e struct {
		Running bool `json:"running"`
		Posture struct {
			Pid int `json:"pid"`
		} `json:"posture"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || !e.Running || e.Posture.Pid != sleep.Process.Pid {
		t.Fatalf("inspect --json: %v %+v", err, e)
	}
	hardenctl(t, "", "inspect", "nope", "--config", cfg).want(t, 1)
}
