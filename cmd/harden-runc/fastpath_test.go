package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/harden-dev/harden/runcwrap"
)

// fakeRuntime is a runtime that writes its argv (argv[0] included) and the
// environment variable HARDEN_TEST_MARK to $HARDEN_TEST_OUT, one argument
// per line, and exits with $HARDEN_TEST_EXIT.
const fakeRuntime = `package main

import (
	"os"
	"strconv"
	"strings"
)

func main() {
	out := strings.Join(os.Args, "\n") + "\nmark=" + os.Getenv("HARDEN_TEST_MARK") + "\n"
	if err := os.WriteFile(os.Getenv("HARDEN_TEST_OUT"), []byte(out), 0o600); err != nil {
		os.Exit(99)
	}
	code, _ := strconv.Atoi(os.Getenv("HARDEN_TEST_EXIT"))
	os.Exit(code)
}
`

type fastEnv struct {
	t                                            *testing.T
	dir, bin, runtime, config, bundle, root, log string
}

func newFastEnv(t *testing.T) *fastEnv {
	if testing.Short() {
		t.Skip("builds harden-runc")
	}
	dir := t.TempDir()
	e := &fastEnv{t: t, dir: dir, bin: filepath.Join(dir, "harden-runc"), runtime: filepath.Join(dir, "fake-runc"),
		config: filepath.Join(dir, "config.toml"), bundle: filepath.Join(dir, "bundle"), root: filepath.Join(dir, "root")}
	e.log = filepath.Join(e.bundle, "log.json")
	if b, err := exec.Command("go", "build", "-o", e.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build harden-runc: %v\n%s", err, b)
	}
	src := filepath.Join(dir, "fake")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"main.go": fakeRuntime, "go.mod": "module fake\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", e.runtime, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fake runtime: %v\n%s", err, b)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, mode: audit}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := "BinaryName = \"" + e.runtime + "\"\nStateDir = \"" + dir + "/state\"\nDecisionLog = \"" + dir + "/decisions.log\"\nPolicyPath = \"" + policy + "\"\n"
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	spec := `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}}`
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// ran is one harden-runc invocation as the runtime saw it.
type ran struct {
	argv   string // the runtime's argv and mark, "" when it did not run
	code   int
	fast   bool // the fast path handed over (HARDEN_RUNC_FASTPATH_TRACE)
	stderr string
}

// run invokes harden-runc (as argv0) with args; slow turns the fast path off.
func (e *fastEnv) run(slow bool, exit string, argv0 string, args ...string) ran {
	e.t.Helper()
	out := filepath.Join(e.dir, "runtime.out")
	os.Remove(out)
	cmd := exec.Command(e.bin, args...)
	cmd.Args[0] = argv0
	cmd.Env = append(os.Environ(), "HARDEN_CONFIG="+e.config, "HARDEN_TEST_OUT="+out, "HARDEN_TEST_EXIT="+exit,
		"HARDEN_TEST_MARK=kept", "HARDEN_RUNC_FASTPATH_TRACE=1")
	if slow {
		cmd.Env = append(cmd.Env, runcwrap.NoFastPathEnv+"=1")
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	r := ran{stderr: stderr.String(), fast: strings.Contains(stderr.String(), "harden-runc: fast path:")}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run harden-runc: %v", err)
	}
	if b, err := os.ReadFile(out); err == nil {
		r.argv = string(b)
	}
	return r
}

func (e *fastEnv) global() []string {
	return []string{"--root", e.root, "--log", e.log, "--log-format", "json"}
}

func (e *fastEnv) create(id string) {
	e.t.Helper()
	r := e.run(false, "0", "runc", append(e.global(), "create", "--bundle", e.bundle, "--pid-file", filepath.Join(e.bundle, "init.pid"), id)...)
	if r.code != 0 || r.fast || !strings.Contains(r.argv, "\ncreate\n") {
		e.t.Fatalf("create %s: %+v", id, r)
	}
}

func (e *fastEnv) stateRecord(id string) string {
	return filepath.Join(e.dir, "state", "containers", "_", id+".json")
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestFastPath runs each command through the fast path and the Go path
// and checks that the runtime saw the same command line, environment and
// exit code, and that the fast path handed over exactly when it should.
func TestFastPath(t *testing.T) {
	e := newFastEnv(t)
	e.create("c1")
	fast := filepath.Join(e.bundle, runcwrap.FastFile)
	b, err := os.ReadFile(fast)
	if err != nil {
		t.Fatalf("create wrote no fast-path file: %v", err)
	}
	pidFile := filepath.Join(e.bundle, "init.pid")
	want := "harden-runc fast path v1\nid=c1\nroot=" + e.root + "\nruntime=" + e.runtime + "\nstate=" + e.stateRecord("c1") +
		"\npidfile=" + pidFile + "\n"
	if string(b) != want {
		t.Fatalf("fast-path file:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(fast); st.Mode().Perm() != 0o600 {
		t.Fatalf("fast-path file mode %v", st.Mode())
	}

	g := e.global()
	cases := []struct {
		name string
		args []string
		fast bool
	}{
		{"start", append(g, "start", "c1"), true},
		{"state", append(g, "state", "c1"), true},
		{"kill --all SIG", append(g, "kill", "--all", "c1", "9"), true},
		{"kill -a", append(g, "kill", "-a", "c1"), true},
		{"--flag=value", []string{"--root=" + e.root, "--log=" + e.log, "--systemd-cgroup", "start", "c1"}, true},
		{"another container", append(g, "start", "c2"), false},
		{"another root", []string{"--root", e.root + "2", "--log", e.log, "start", "c1"}, false},
		{"root not clean", []string{"--root", e.root + "/", "--log", e.log, "start", "c1"}, false},
		{"no --log", []string{"--root", e.root, "start", "c1"}, false},
		{"harden's flag", append([]string{"--harden-runtime", e.runtime}, append(g, "start", "c1")...), false},
		{"unknown global flag", append([]string{"--debug", "--criu", "x"}, append(g, "start", "c1")...), false},
		{"exec", append(g, "exec", "c1", "true"), false},
		{"ps", append(g, "ps", "c1"), false},
		{"extra argument", append(g, "start", "c1", "x"), false},
		{"flag after the ID", append(g, "kill", "c1", "9", "--all"), false},
		{"help", append(g, "start", "--help"), false},
	}
	for _, c := range cases {
		for _, argv0 := range []string{"runc", "/usr/bin/harden-runc"} {
			f := e.run(false, "3", argv0, c.args...)
			s := e.run(true, "3", argv0, c.args...)
			if f.fast != c.fast || s.fast {
				t.Errorf("%s: fast path taken %v (Go path: %v), want %v\n%s", c.name, f.fast, s.fast, c.fast, f.stderr)
			}
			if c.name == "exec" || c.name == "ps" {
				continue // the Go path's business; compared elsewhere
			}
			if f.argv != s.argv || f.code != s.code {
				t.Errorf("%s (argv0 %s): fast path and Go path differ:\nfast: %q exit %d\nGo:   %q exit %d", c.name, argv0, f.argv, f.code, s.argv, s.code)
			}
			if c.fast && (f.code != 3 || !strings.HasPrefix(f.argv, argv0+"\n") || !strings.HasSuffix(f.argv, "\nmark=kept\n")) {
				t.Errorf("%s: the runtime got %q, exit %d", c.name, f.argv, f.code)
			}
		}
	}

	// A fast-path file someone else could have written is not trusted.
	for _, mode := range []os.FileMode{0o666, 0o620} {
		if err := os.Chmod(fast, mode); err != nil {
			t.Fatal(err)
		}
		if r := e.run(false, "0", "runc", append(g, "start", "c1")...); r.fast {
			t.Errorf("fast path taken with the file at mode %v", mode)
		}
	}
	if err := os.Chmod(fast, 0o600); err != nil {
		t.Fatal(err)
	}
	// Nor a symbolic link to one.
	link := filepath.Join(e.dir, "elsewhere")
	if err := os.Rename(fast, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(link, fast); err != nil {
		t.Fatal(err)
	}
	if r := e.run(false, "0", "runc", append(g, "start", "c1")...); r.fast {
		t.Error("fast path taken through a symbolic link")
	}
	if err := os.Remove(fast); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, fast); err != nil {
		t.Fatal(err)
	}
	// Nor one naming another runtime file format.
	if err := os.WriteFile(fast, []byte(strings.Replace(want, "v1", "v2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run(false, "0", "runc", append(g, "start", "c1")...); r.fast {
		t.Error("fast path taken with an unknown header")
	}
	if err := os.WriteFile(fast, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}

	// delete: a failed delete keeps harden's record...
	r := e.run(false, "1", "runc", append(g, "delete", "c1")...)
	if !r.fast || r.code != 1 || !exists(e.stateRecord("c1")) || !exists(fast) {
		t.Fatalf("failed delete: %+v; record kept %v, fast-path file kept %v", r, exists(e.stateRecord("c1")), exists(fast))
	}
	// ...a successful one removes it, and says what the runtime said.
	r = e.run(false, "0", "runc", append(g, "delete", "--force", "c1")...)
	if !r.fast || r.code != 0 || exists(e.stateRecord("c1")) || !strings.Contains(r.argv, "\ndelete\n--force\nc1\n") {
		t.Fatalf("delete: %+v; record left %v", r, exists(e.stateRecord("c1")))
	}
	// The engine's second delete goes straight to the runtime, as the Go
	// path does for a container without a record.
	f := e.run(false, "1", "runc", append(g, "delete", "--force", "c1")...)
	s := e.run(true, "1", "runc", append(g, "delete", "--force", "c1")...)
	if !f.fast || f.code != 1 || f.argv == "" || f.argv != s.argv || f.code != s.code {
		t.Errorf("second delete: fast %+v, Go %+v", f, s)
	}

	// The Go path's delete removes the record as well.
	e.create("c3")
	if r := e.run(true, "0", "runc", append(g, "delete", "c3")...); r.code != 0 || exists(e.stateRecord("c3")) {
		t.Errorf("Go path delete: %+v; record left %v", r, exists(e.stateRecord("c3")))
	}
	// With the init process gone, delete forgets the record before the
	// runtime runs and execs it (no child): the record is gone even when
	// the runtime fails. While the init may still run, or the pid file is
	// not one to trust, delete waits for the runtime as above.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := strconv.Itoa(dead.Process.Pid)
	for _, c := range []struct {
		name, pid string
		mode      os.FileMode
		link      bool
		forget    bool
	}{
		{"init gone", deadPid, 0o644, false, true},
		{"init gone, pid file with a newline", deadPid + "\n", 0o644, false, true},
		{"init alive", strconv.Itoa(os.Getpid()), 0o644, false, false},
		{"pid file writable by others", deadPid, 0o666, false, false},
		{"pid file through a link", deadPid, 0o644, true, false},
		{"not a pid", "x" + deadPid, 0o644, false, false},
		{"pid 0", "0", 0o644, false, false},
	} {
		e.create("c6")
		os.Remove(pidFile)
		target := pidFile
		if c.link {
			target = filepath.Join(e.dir, "pid-elsewhere")
			if err := os.Symlink(target, pidFile); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(target, []byte(c.pid), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(target, c.mode); err != nil {
			t.Fatal(err)
		}
		r := e.run(false, "1", "runc", append(g, "delete", "c6")...)
		if !r.fast || r.code != 1 || !strings.Contains(r.argv, "\ndelete\nc6\n") {
			t.Errorf("%s: delete %+v", c.name, r)
		}
		if forgot := !exists(e.stateRecord("c6")); forgot != c.forget {
			t.Errorf("%s: record forgotten by a failed delete: %v, want %v", c.name, forgot, c.forget)
		}
		os.Remove(pidFile)
		os.Remove(filepath.Join(e.dir, "pid-elsewhere"))
	}

	// A create that is refused leaves no file of an earlier container.
	e.create("c4")
	if err := os.WriteFile(e.config, []byte("BinaryName = \"/nonexistent/runc\"\nStateDir = \""+e.dir+"/state\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.run(false, "0", "runc", append(g, "create", "--bundle", e.bundle, "c5")...); r.code == 0 || exists(fast) {
		t.Errorf("failed create: %+v; fast-path file left %v", r, exists(fast))
	}
}
