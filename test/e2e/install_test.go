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
// containerd whose CRI runs a hardened pod with the installed handler, in
// both of the forms it writes: harden's own runtime type, and
// --runc-type, which also runs a pod with a user namespace (hostUsers:
// false; containerd refuses those for any other runtime type).
func TestHardenctlInstallContainerd(t *testing.T) {
	requireSuite(t)
	repo, _ := filepath.Abs("../..")
	hardenctl := filepath.Join(repo, "bin", "hardenctl")
	dir, err := os.MkdirTemp("", "hi.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The user-namespace pod's root (uid 200000 on the host) must reach its
	// rootfs under containerd's state dir, which is in here.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// Node-wide settings (log, state, runc root) come from the node file;
	// the installed handler names only itself. The runc-type handler gets
	// everything from the node file, its runtime handler name included.
	cfg := filepath.Join(dir, "harden.toml")
	decisions := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("DecisionLog = %q\nStateDir = %q\nRoot = %q\nBinaryName = %q\nRuntimeHandler = \"node-file\"\n",
		decisions, filepath.Join(dir, "hstate"), filepath.Join(dir, "c", "runc"), env["HARDEN_RUNC"])), 0o644); err != nil {
		t.Fatal(err)
	}
	// containerd.sh runs HARDEN_CONFIG_EDIT with the config file as its last
	// argument: both installs, as an operator would type them.
	edit := filepath.Join(dir, "install.sh")
	if err := os.WriteFile(edit, []byte(fmt.Sprintf("#!/bin/sh\nset -e\n%[1]s install containerd --handler hardened --config \"$1\"\n"+
		"%[1]s install containerd --runc-type --handler hardened-userns --bin-dir %[2]s --config \"$1\"\n", hardenctl, filepath.Join(repo, "bin"))), 0o755); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg, "HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"), "HARDEN_CONFIG_EDIT="+edit)
	script := filepath.Join(repo, "test", "env", "containerd.sh")
	if r, err := runCmd(3*time.Minute, envv, script, "start", c); err != nil {
		t.Fatalf("start containerd with the installed config: %v\n%s", err, r)
	}
	t.Cleanup(func() { _, _ = runCmd(3*time.Minute, envv, script, "stop", c) })
	b, _ := os.ReadFile(filepath.Join(c, "config.toml"))
	if !strings.Contains(string(b), `runtimes."hardened"`) || !strings.Contains(string(b), `runtimes."hardened-userns"`) {
		t.Fatalf("the config lacks a harden handler:\n%s", b)
	}
	sock := "unix://" + filepath.Join(c, "containerd.sock")
	crictl := func(args ...string) (result, error) {
		return runCmd(2*time.Minute, nil, env["HARDEN_CRICTL"], append([]string{"--runtime-endpoint", sock, "--image-endpoint", sock, "--timeout", "60s"}, args...)...)
	}
	logs := filepath.Join(dir, "logs")
	_ = os.MkdirAll(logs, 0o755)
	// runProbe runs the probe in a new pod of handler and returns what it
	// printed; linux is the pod's and the container's linux settings.
	runProbe := func(handler, name, linux string) map[string]string {
		pod := filepath.Join(dir, name+".json")
		_ = os.WriteFile(pod, []byte(fmt.Sprintf(`{"metadata":{"name":%q,"namespace":"default","uid":%q},"log_directory":%q,"linux":%s}`,
			name, name+"-1", filepath.Join(logs, name), linux)), 0o644)
		ctrCfg := filepath.Join(dir, name+"-ctr.json")
		_ = os.WriteFile(ctrCfg, []byte(fmt.Sprintf(`{"metadata":{"name":"probe"},"image":{"image":%q},"command":["sh","-c",%q],"log_path":"probe.log","linux":%s}`,
			inst.image, probeScript+"echo uidmap=$(cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')\n", linux)), 0o644)
		r, err := crictl("runp", "--runtime", handler, pod)
		if err != nil {
			t.Fatalf("crictl runp --runtime %s: %v\n%s", handler, err, r)
		}
		podID := strings.TrimSpace(r.stdout)
		t.Cleanup(func() { _, _ = crictl("stopp", podID); _, _ = crictl("rmp", "-f", podID) })
		r, err = crictl("create", podID, ctrCfg, pod)
		if err != nil {
			t.Fatalf("crictl create (%s): %v\n%s", handler, err, r)
		}
		cid := strings.TrimSpace(r.stdout)
		if r, err := crictl("start", cid); err != nil {
			t.Fatalf("crictl start (%s): %v\n%s", handler, err, r)
		}
		var out string
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
			if r, _ := crictl("logs", cid); strings.Contains(r.stdout, "done=1") {
				out = r.stdout
				break
			}
		}
		return parseProbe(t, out)
	}

	got := runProbe("hardened", "inst", "{}")
	assertHardened(t, "pod container under the installed handler", got, baselineCaps, true)
	rec := findRecord(t, decisions, "installed handler", func(r record) bool { return r.Event == "create" && r.Identity.RuntimeHandler == "hardened" })
	if rec.Result != "hardened" {
		t.Errorf("record %s", rec)
	}

	// The runc-type handler: a pod whose containers run in a user
	// namespace of their own (mode 0 is NamespaceMode POD), root inside
	// mapped to 200000 outside.
	userns := `{"security_context":{"namespace_options":{"userns_options":{"mode":0,` +
		`"uids":[{"host_id":200000,"container_id":0,"length":65536}],"gids":[{"host_id":200000,"container_id":0,"length":65536}]}}}}`
	got = runProbe("hardened-userns", "userns", userns)
	assertHardened(t, "user-namespace pod under the --runc-type handler", got, baselineCaps, true)
	if got["uidmap"] != "0 200000 65536" {
		t.Errorf("uid_map in the user-namespace pod = %q, want \"0 200000 65536\"", got["uidmap"])
	}
	rec = findRecord(t, decisions, "runc-type handler", func(r record) bool {
		return r.Event == "create" && r.Identity.Pod == "userns" && r.Identity.ContainerType == "container"
	})
	if rec.Result != "hardened" || rec.Identity.RuntimeHandler != "node-file" {
		t.Errorf("record of the user-namespace container: result %s, runtime handler %q (want hardened, node-file)", rec.Result, rec.Identity.RuntimeHandler)
	}
}
