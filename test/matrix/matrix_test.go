// Package matrix runs harden's shim under each maintained containerd
// release (1.7, 2.0-2.4) and checks, from inside containers started with
// ctr and through CRI, that it is hardened. The releases are built by
// test/env/matrix-deps.sh into $HARDEN_CACHE/matrix/<version>/bin;
// HARDEN_MATRIX_VERSIONS (space-separated) picks which to run.
package matrix

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var env = map[string]string{}

func TestMain(m *testing.M) {
	cache := os.Getenv("HARDEN_CACHE")
	if cache == "" {
		cache = "/var/cache/harden"
	}
	if f, err := os.Open(filepath.Join(cache, "env.sh")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
				env[k] = v
			}
		}
		f.Close()
	}
	env["HARDEN_CACHE"] = cache
	os.Exit(m.Run())
}

func fatalOrSkip(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// versions are the releases to check: HARDEN_MATRIX_VERSIONS, or every
// build in the cache, plus the pinned 2.4.2 ("pinned").
func versions(t *testing.T) []string {
	if v := os.Getenv("HARDEN_MATRIX_VERSIONS"); v != "" {
		return strings.Fields(v)
	}
	dirs, _ := filepath.Glob(filepath.Join(env["HARDEN_CACHE"], "matrix", "v*", "bin", "containerd"))
	vs := []string{"pinned"}
	for _, d := range dirs {
		vs = append(vs, filepath.Base(filepath.Dir(filepath.Dir(d))))
	}
	return vs
}

type result struct{ stdout, stderr string }

func run(timeout time.Duration, envv []string, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = envv
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return result{o.String(), e.String()}, err
}

// probe prints the kernel's view of the process.
const probe = `grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t'; echo done:1`

// baseline is CapBnd/CapEff of a root process under the baseline profile.
const baseline = "00000000000005fb"

func parse(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m
}

func hardened(t *testing.T, what, out string) {
	t.Helper()
	m := parse(out)
	if m["done"] != "1" {
		t.Fatalf("%s: probe did not run:\n%s", what, out)
	}
	if m["CapBnd"] != baseline || m["CapEff"] != baseline || m["NoNewPrivs"] != "1" || m["Seccomp"] != "2" {
		t.Errorf("%s not hardened: CapBnd=%s CapEff=%s NoNewPrivs=%s Seccomp=%s", what, m["CapBnd"], m["CapEff"], m["NoNewPrivs"], m["Seccomp"])
	}
}

func TestMatrix(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(repo, "bin", "containerd-shim-harden-v2")); err != nil {
		t.Fatal("bin/containerd-shim-harden-v2 is missing: run make build")
	}
	for _, v := range versions(t) {
		t.Run(v, func(t *testing.T) { checkVersion(t, repo, v) })
	}
}

func checkVersion(t *testing.T, repo, version string) {
	bin := env["HARDEN_BIN"]
	matrixBin := ""
	if version != "pinned" {
		matrixBin = filepath.Join(env["HARDEN_CACHE"], "matrix", version, "bin")
		bin = matrixBin
		if _, err := os.Stat(filepath.Join(matrixBin, "containerd")); err != nil {
			fatalOrSkip(t, fmt.Sprintf("containerd %s is not built: run test/env/matrix-deps.sh %s", version, version))
		}
	}
	ctrBin := filepath.Join(bin, "ctr")
	dir, err := os.MkdirTemp("", "hx.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "harden.toml")
	decisions := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("DecisionLog = %q\nStateDir = %q\nRoot = %q\nBinaryName = %q\n",
		decisions, filepath.Join(dir, "hstate"), filepath.Join(dir, "c", "runc"), env["HARDEN_RUNC"])), 0o644); err != nil {
		t.Fatal(err)
	}
	// The CRI handler: containerd 1.7 keeps CRI in one plugin.
	plugin := `io.containerd.cri.v1.runtime`
	out, _ := run(time.Minute, nil, filepath.Join(bin, "containerd"), "--version")
	if strings.Contains(out.stdout, " v1.") || strings.Contains(out.stdout, " 1.") {
		plugin = `io.containerd.grpc.v1.cri`
	}
	extra := filepath.Join(dir, "extra.toml")
	if err := os.WriteFile(extra, []byte(fmt.Sprintf(`
[plugins.%[1]q.containerd.runtimes.harden]
  runtime_type = "io.containerd.harden.v2"
  [plugins.%[1]q.containerd.runtimes.harden.options]
    Root = "@DIR@/runc"
    BinaryName = %[2]q
    DecisionLog = %[3]q
    StateDir = %[4]q
    RuntimeHandler = "harden"
`, plugin, env["HARDEN_RUNC"], decisions, filepath.Join(dir, "hstate"))), 0o644); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg, "HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"))
	if matrixBin != "" {
		envv = append(envv, "HARDEN_MATRIX_BIN="+matrixBin)
	}
	script := filepath.Join(repo, "test", "env", "containerd.sh")
	if r, err := run(3*time.Minute, envv, script, "start", c, extra); err != nil {
		t.Fatalf("start containerd %s: %v\n%s%s", version, err, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		if r, err := run(3*time.Minute, envv, script, "stop", c); err != nil {
			t.Errorf("stop containerd: %v\n%s%s", err, r.stdout, r.stderr)
		}
	})
	sock := filepath.Join(c, "containerd.sock")
	ctr := func(args ...string) (result, error) {
		return run(2*time.Minute, nil, ctrBin, append([]string{"--address", sock, "-n", "default"}, args...)...)
	}
	runFlags := []string{"--runc-root", filepath.Join(c, "runc"), "--fifo-dir", filepath.Join(c, "fifo"), "--runtime", "io.containerd.harden.v2"}
	image := env["HARDEN_BUSYBOX_IMAGE"]

	t.Run("ctr-run", func(t *testing.T) {
		r, err := ctr(append(append([]string{"run", "--rm"}, runFlags...), image, "m-run", "sh", "-c", probe)...)
		if err != nil {
			t.Fatalf("ctr run: %v\n%s%s", err, r.stdout, r.stderr)
		}
		hardened(t, "ctr run", r.stdout)
	})
	t.Run("ctr-exec", func(t *testing.T) {
		if r, err := ctr(append(append([]string{"run", "-d"}, runFlags...), image, "m-exec", "sleep", "300")...); err != nil {
			t.Fatalf("ctr run -d: %v\n%s%s", err, r.stdout, r.stderr)
		}
		defer func() {
			_, _ = ctr("task", "kill", "-s", "9", "m-exec")
			time.Sleep(500 * time.Millisecond)
			_, _ = ctr("task", "rm", "-f", "m-exec")
			_, _ = ctr("container", "rm", "m-exec")
		}()
		r, err := ctr("task", "exec", "--fifo-dir", filepath.Join(c, "fifo"), "--exec-id", "x1", "m-exec", "sh", "-c", probe)
		if err != nil {
			t.Fatalf("ctr task exec: %v\n%s%s", err, r.stdout, r.stderr)
		}
		hardened(t, "ctr task exec", r.stdout)
	})
	t.Run("ctr-privileged-refused", func(t *testing.T) {
		r, err := ctr(append(append([]string{"run", "--rm", "--privileged"}, runFlags...), image, "m-priv", "true")...)
		if err == nil || !strings.Contains(r.stderr, "privileged.deny") {
			t.Fatalf("privileged container not refused with the rule: %v\n%s%s", err, r.stdout, r.stderr)
		}
		_, _ = ctr("container", "rm", "m-priv")
	})
	t.Run("cri", func(t *testing.T) {
		crictl := func(args ...string) (result, error) {
			return run(2*time.Minute, nil, env["HARDEN_CRICTL"], append([]string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock, "--timeout", "60s"}, args...)...)
		}
		logs := filepath.Join(dir, "logs")
		_ = os.MkdirAll(logs, 0o755)
		pod := filepath.Join(dir, "pod.json")
		_ = os.WriteFile(pod, []byte(fmt.Sprintf(`{"metadata":{"name":"m","namespace":"default","uid":"m-1"},"log_directory":%q,"linux":{}}`, logs)), 0o644)
		ctrCfg := filepath.Join(dir, "ctr.json")
		_ = os.WriteFile(ctrCfg, []byte(fmt.Sprintf(`{"metadata":{"name":"probe"},"image":{"image":%q},"command":["sh","-c",%q],"log_path":"probe.log","linux":{}}`, image, probe)), 0o644)
		r, err := crictl("runp", "--runtime", "harden", pod)
		if err != nil {
			t.Fatalf("crictl runp: %v\n%s%s", err, r.stdout, r.stderr)
		}
		podID := strings.TrimSpace(r.stdout)
		defer func() {
			_, _ = crictl("stopp", podID)
			_, _ = crictl("rmp", "-f", podID)
		}()
		r, err = crictl("create", podID, ctrCfg, pod)
		if err != nil {
			t.Fatalf("crictl create: %v\n%s%s", err, r.stdout, r.stderr)
		}
		cid := strings.TrimSpace(r.stdout)
		if r, err := crictl("start", cid); err != nil {
			t.Fatalf("crictl start: %v\n%s%s", err, r.stdout, r.stderr)
		}
		var out string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			r, _ := crictl("logs", cid)
			if strings.Contains(r.stdout, "done:1") {
				out = r.stdout
				break
			}
		}
		hardened(t, "CRI container", out)
		b, _ := os.ReadFile(decisions)
		if !bytes.Contains(b, []byte(`"containerType":"sandbox"`)) {
			t.Errorf("no decision for the pod sandbox in %s", decisions)
		}
	})
}
