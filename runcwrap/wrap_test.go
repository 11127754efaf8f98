package runcwrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/node"
)

// fakeRuntime records what harden-runc would run; no container runs.
type fakeRuntime struct {
	path string
	argv []string
	runs [][]string
	code int
}

func newTestWrapper(env map[string]string) (*Wrapper, *fakeRuntime, *bytes.Buffer) {
	rt := &fakeRuntime{}
	var stderr bytes.Buffer
	w := &Wrapper{
		Stdin: strings.NewReader(""), Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
		Now:    time.Now,
		Exec: func(path string, argv, _ []string) error {
			rt.path, rt.argv = path, argv
			return errors.New("fake exec")
		},
		Run: func(path string, argv []string) (int, error) {
			rt.runs = append(rt.runs, append([]string{path}, argv[1:]...))
			return rt.code, nil
		},
	}
	return w, rt, &stderr
}

// testNode writes a node configuration whose runc is /bin/true.
func testNode(t *testing.T) (dir, config string) {
	t.Helper()
	dir = t.TempDir()
	config = filepath.Join(dir, "config.toml")
	body := "BinaryName = \"/bin/true\"\nCrunPath = \"/bin/false\"\nStateDir = \"" + dir + "/state\"\nDecisionLog = \"" + dir + "/decisions.log\"\nPolicyPath = \"" + dir + "/policy.yaml\"\n"
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, config
}

func writeBundle(t *testing.T, config string) string {
	t.Helper()
	b := t.TempDir()
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

const plainSpec = `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_KILL"]}},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"mount"},{"type":"network"}],"maskedPaths":["/proc/kcore"]}}`

const privilegedSpec = `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"mount"},{"type":"network"}],"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`

func TestMainCreate(t *testing.T) {
	dir, config := testNode(t)
	bundle := writeBundle(t, plainSpec)
	w, rt, stderr := newTestWrapper(nil)
	root := filepath.Join(dir, "root")
	argv := []string{"harden-runc", "--harden-config", config, "--root", root, "--log", filepath.Join(dir, "log.json"), "--log-format", "json",
		"create", "--bundle", bundle, "--pid-file", "init.pid", "c1"}
	if code := w.Main(argv); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if rt.path != "/bin/true" {
		t.Fatalf("runtime %q, want the configured runc", rt.path)
	}
	want := []string{"harden-runc", "--root", root, "--log", filepath.Join(dir, "log.json"), "--log-format", "json", "create", "--bundle", bundle, "--pid-file", "init.pid", "c1"}
	if strings.Join(rt.argv, " ") != strings.Join(want, " ") {
		t.Fatalf("argv = %q\nwant   %q", rt.argv, want)
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if !strings.Contains(string(b), `"noNewPrivileges":true`) || strings.Contains(string(b), "CAP_SYS_ADMIN") {
		t.Fatalf("bundle not hardened: %s", b)
	}
	rc := &node.Recorder{StateDir: filepath.Join(dir, "state")}
	rec, ok, err := rc.FindState("c1", root)
	if err != nil || !ok {
		t.Fatalf("no state record: %v; stderr %s", err, stderr)
	}
	cwd, _ := os.Getwd()
	if rec.Runtime != "/bin/true" || rec.PidFile != filepath.Join(cwd, "init.pid") || rec.Result != node.ResultHardened || rec.Entry != Entry || rec.Bundle != bundle {
		t.Fatalf("record = %+v", rec)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
	if !strings.Contains(string(log), `"event":"create"`) {
		t.Fatalf("decision log: %s", log)
	}

	// state goes to the recorded runtime without the policy.
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("not a policy"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, rt, stderr = newTestWrapper(map[string]string{ConfigEnv: config})
	w.Main([]string{"harden-runc", "--root", root, "state", "c1"})
	// The only output is the fake exec's failure: nothing about the
	// (broken) policy, which state never loads.
	if rt.path != "/bin/true" || strings.Join(rt.argv[1:], " ") != "--root "+root+" state c1" || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "fake exec") {
		t.Fatalf("state: %q %q; stderr %s", rt.path, rt.argv, stderr)
	}

	// delete runs the runtime, then forgets the container.
	w, rt, _ = newTestWrapper(map[string]string{ConfigEnv: config})
	rt.code = 1
	if code := w.Main([]string{"harden-runc", "--root", root, "delete", "c1"}); code != 1 {
		t.Fatalf("delete exit %d", code)
	}
	if _, ok, _ := rc.FindState("c1", root); !ok {
		t.Fatal("a failed delete removed the record")
	}
	rt.code = 0
	if code := w.Main([]string{"harden-runc", "--root", root, "delete", "--force", "c1"}); code != 0 {
		t.Fatalf("delete exit %d", code)
	}
	if _, ok, _ := rc.FindState("c1", root); ok {
		t.Fatal("delete kept the record")
	}
	if len(rt.runs) != 2 || rt.runs[1][0] != "/bin/true" {
		t.Fatalf("runs = %q", rt.runs)
	}
}

func TestMainRefusesPrivileged(t *testing.T) {
	dir, config := testNode(t)
	bundle := writeBundle(t, privilegedSpec)
	w, rt, stderr := newTestWrapper(nil)
	logFile := filepath.Join(dir, "log.json")
	code := w.Main([]string{"harden-runc", "--harden-config=" + config, "--log", logFile, "--log-format=json", "run", "-b", bundle, "c2"})
	if code != 1 || rt.path != "" {
		t.Fatalf("exit %d, ran %q", code, rt.path)
	}
	b, _ := os.ReadFile(logFile)
	var line struct{ Level, Msg, Time string }
	if err := json.Unmarshal(b, &line); err != nil || line.Level != "error" || !strings.Contains(line.Msg, "privileged.deny") || line.Time == "" {
		t.Fatalf("log = %s (%v)", b, err)
	}
	if !strings.Contains(stderr.String(), "privileged.deny") {
		t.Fatalf("stderr = %q", stderr)
	}
	after, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if string(after) != privilegedSpec {
		t.Fatal("refused bundle was changed")
	}
	decisions, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
	if !strings.Contains(string(decisions), `"result":"refused"`) {
		t.Fatalf("decision log: %s", decisions)
	}
}

func TestMainFailurePolicy(t *testing.T) {
	dir, config := testNode(t)
	bundle := writeBundle(t, plainSpec)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("kind: Nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, rt, _ := newTestWrapper(nil)
	if code := w.Main([]string{"x", "--harden-config", config, "create", "-b", bundle, "c1"}); code != 1 || rt.path != "" {
		t.Fatalf("deny: exit %d, ran %q", code, rt.path)
	}
	f, _ := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("FailurePolicy = \"allow\"\n")
	f.Close()
	w, rt, stderr := newTestWrapper(nil)
	w.Main([]string{"x", "--harden-config", config, "create", "-b", bundle, "c1"})
	if rt.path != "/bin/true" || !strings.Contains(stderr.String(), "UNHARDENED") {
		t.Fatalf("allow: ran %q; stderr %s", rt.path, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if string(b) != plainSpec {
		t.Fatal("unhardened bundle was changed")
	}
}

func TestMainPassthrough(t *testing.T) {
	_, config := testNode(t)
	for _, tc := range []struct {
		argv, runtime string
	}{
		{"--version", "/bin/true"},
		{"features", "/bin/true"},
		{"--harden-runtime crun list", "/bin/false"},
		{"--harden-runtime=/bin/echo kill c1 KILL", "/bin/echo"},
		{"create --help", "/bin/true"},
		{"frobnicate", "/bin/true"},
	} {
		t.Run(tc.argv, func(t *testing.T) {
			w, rt, _ := newTestWrapper(map[string]string{ConfigEnv: config})
			w.Main(append([]string{"harden-runc"}, split(tc.argv)...))
			if rt.path != tc.runtime || strings.Contains(strings.Join(rt.argv[1:], " "), "harden-") {
				t.Fatalf("ran %q %q, want %s", rt.path, rt.argv, tc.runtime)
			}
			// The runtime names itself as the caller named harden-runc.
			if rt.argv[0] != "harden-runc" {
				t.Fatalf("runtime argv[0] = %q, want harden-runc", rt.argv[0])
			}
		})
	}
	// A broken configuration does not stop state or kill.
	w, rt, _ := newTestWrapper(map[string]string{ConfigEnv: "/nonexistent/dir/../config.toml"})
	w.Main([]string{"harden-runc", "state", "c1"})
	if rt.path == "" {
		t.Fatal("state did not run")
	}
	// It does stop create.
	w, rt, stderr := newTestWrapper(nil)
	if code := w.Main([]string{"harden-runc", "--harden-config", "/nonexistent.toml", "create", "c1"}); code != 1 || rt.path != "" || !strings.Contains(stderr.String(), "harden config") {
		t.Fatalf("create with a missing explicit config: exit %d, ran %q, stderr %s", code, rt.path, stderr)
	}
	// And so do command lines harden cannot read unambiguously.
	w, rt, _ = newTestWrapper(map[string]string{ConfigEnv: config})
	if code := w.Main([]string{"harden-runc", "--x", "state", "create", "c1"}); code != 1 || rt.path != "" {
		t.Fatalf("ambiguous: exit %d, ran %q", code, rt.path)
	}
	w, rt, _ = newTestWrapper(map[string]string{ConfigEnv: config})
	if code := w.Main([]string{"harden-runc", "create", "--config", "other.json", "c1"}); code != 1 || rt.path != "" {
		t.Fatalf("crun's --config: exit %d, ran %q", code, rt.path)
	}
}

// TestExecFailureCode: an exec that cannot run exits 255 with "exec
// failed", as runc's does, so that callers can tell it from the exit code
// of the process; a missing container ID is runc's usage error.
func TestExecFailureCode(t *testing.T) {
	_, config := testNode(t)
	for _, tc := range []struct {
		argv    string
		code    int
		handed  bool
		message string
	}{
		{"exec no_such_container true", execFailed, false, "exec failed: container no_such_container"},
		{"exec no_such_container", execFailed, false, "exec failed: container no_such_container: exec args cannot be empty"},
		{"exec", 1, false, "requires a minimum of 1 argument"}, // runc: exit 1 too
	} {
		t.Run(tc.argv, func(t *testing.T) {
			w, rt, stderr := newTestWrapper(map[string]string{ConfigEnv: config})
			code := w.Main(append([]string{"harden-runc"}, split(tc.argv)...))
			if code != tc.code || (rt.path != "") != tc.handed || !strings.Contains(stderr.String(), tc.message) {
				t.Fatalf("exit %d, ran %q, stderr %s; want exit %d, handed over %v, %q", code, rt.path, stderr, tc.code, tc.handed, tc.message)
			}
		})
	}
}

func TestRuntimeArgv0(t *testing.T) {
	w := &Wrapper{argv0: "/usr/local/bin/harden-runc"}
	for runtime, want := range map[string]string{
		"/usr/sbin/runc":  "/usr/local/bin/harden-runc",
		"/usr/bin/crun":   "/usr/local/bin/harden-runc",
		"/usr/bin/krun":   "/usr/bin/krun", // its name selects libkrun
		"/opt/x/runc.bin": "/usr/local/bin/harden-runc",
	} {
		if got := w.runtimeArgv(&plan{runtime: runtime, args: []string{"state", "c1"}}); got[0] != want || got[1] != "state" {
			t.Errorf("%s: argv %q, want argv[0] %q", runtime, got, want)
		}
	}
}
