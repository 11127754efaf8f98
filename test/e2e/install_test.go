package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHardenctlInstallContainerd: `hardenctl install containerd` applied to
// a real containerd configuration (the private instance's) gives a
// containerd whose CRI runs a hardened pod with the installed handler.
func TestHardenctlInstallContainerd(t *testing.T) {
	requireSuite(t)
	repo, _ := filepath.Abs("../..")
	hardenctl := filepath.Join(repo, "bin", "hardenctl")
	dir, err := os.MkdirTemp("", "hi.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Node-wide settings (log, state, runc root) come from the node file;
	// the installed handler names only itself.
	cfg := filepath.Join(dir, "harden.toml")
	decisions := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("DecisionLog = %q\nStateDir = %q\nRoot = %q\nBinaryName = %q\n",
		decisions, filepath.Join(dir, "hstate"), filepath.Join(dir, "c", "runc"), env["HARDEN_RUNC"])), 0o644); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg, "HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"),
		"HARDEN_CONFIG_EDIT="+hardenctl+" install containerd --handler hardened --config")
	script := filepath.Join(repo, "test", "env", "containerd.sh")
	if r, err := runCmd(3*time.Minute, envv, script, "start", c); err != nil {
		t.Fatalf("start containerd with the installed config: %v\n%s", err, r)
	}
	t.Cleanup(func() { _, _ = runCmd(3*time.Minute, envv, script, "stop", c) })
	b, _ := os.ReadFile(filepath.Join(c, "config.toml"))
	if !strings.Contains(string(b), `runtimes."hardened"`) {
		t.Fatalf("the config has no harden handler:\n%s", b)
	}
	sock := "unix://" + filepath.Join(c, "containerd.sock")
	crictl := func(args ...string) (result, error) {
		return runCmd(2*time.Minute, nil, env["HARDEN_CRICTL"], append([]string{"--runtime-endpoint", sock, "--image-endpoint", sock, "--timeout", "60s"}, args...)...)
	}
	logs := filepath.Join(dir, "logs")
	_ = os.MkdirAll(logs, 0o755)
	pod := filepath.Join(dir, "pod.json")
	_ = os.WriteFile(pod, []byte(fmt.Sprintf(`{"metadata":{"name":"inst","namespace":"default","uid":"inst-1"},"log_directory":%q,"linux":{}}`, logs)), 0o644)
	ctrCfg := filepath.Join(dir, "ctr.json")
	_ = os.WriteFile(ctrCfg, []byte(fmt.Sprintf(`{"metadata":{"name":"probe"},"image":{"image":%q},"command":["sh","-c",%q],"log_path":"probe.log","linux":{}}`, inst.image, probeScript)), 0o644)
	r, err := crictl("runp", "--runtime", "hardened", pod)
	if err != nil {
		t.Fatalf("crictl runp --runtime hardened: %v\n%s", err, r)
	}
	podID := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { _, _ = crictl("stopp", podID); _, _ = crictl("rmp", "-f", podID) })
	r, err = crictl("create", podID, ctrCfg, pod)
	if err != nil {
		t.Fatalf("crictl create: %v\n%s", err, r)
	}
	cid := strings.TrimSpace(r.stdout)
	if r, err := crictl("start", cid); err != nil {
		t.Fatalf("crictl start: %v\n%s", err, r)
	}
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if r, _ := crictl("logs", cid); strings.Contains(r.stdout, "done=1") {
			out = r.stdout
			break
		}
	}
	assertHardened(t, "pod container under the installed handler", parseProbe(t, out), baselineCaps, true)
	rec := findRecord(t, decisions, "installed handler", func(r record) bool { return r.Event == "create" && r.Identity.RuntimeHandler == "hardened" })
	if rec.Result != "hardened" {
		t.Errorf("record %s", rec)
	}
}
