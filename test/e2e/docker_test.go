package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDocker29 runs `docker run --runtime io.containerd.harden.v2` on a
// private Docker 29 engine (moby v2 beta from the deps cache) whose private
// containerd 2.4.2 finds harden's shim on its PATH. Docker passes no runtime
// options, so the shim's node configuration (HARDEN_CONFIG) applies.
func TestDocker29(t *testing.T) {
	requireSuite(t)
	need(t, "HARDEN_DOCKERD29")
	docker := need(t, "HARDEN_DOCKER")
	d := startDocker29(t, "hd.")
	daemon, decisions := d.daemon, d.decisions
	dockerEnv := append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(daemon, "docker.sock"))
	run := func(args ...string) (result, error) {
		return runCmd(2*time.Minute, dockerEnv, docker, args...)
	}

	t.Run("hardened", func(t *testing.T) {
		name := newID("d29")
		r, err := run("run", "--rm", "--name", name, "--runtime", hardenRuntime, inst.image, "sh", "-c", probeScript)
		if err != nil {
			t.Fatalf("docker run --runtime %s: %v\n%s", hardenRuntime, err, r)
		}
		assertHardened(t, "docker run under harden", parseProbe(t, r.stdout), baselineCaps, true)
		rec := findRecord(t, decisions, "docker create", func(r record) bool { return r.Event == "create" && r.Namespace == "moby" })
		if rec.Result != "hardened" || rec.Identity.Engine != "docker" {
			t.Errorf("record: result %q engine %q, want hardened docker:\n%s", rec.Result, rec.Identity.Engine, rec)
		}
	})

	t.Run("privileged-refused", func(t *testing.T) {
		r, err := run("run", "--rm", "--privileged", "--runtime", hardenRuntime, inst.image, "true")
		if err == nil {
			t.Fatalf("docker run --privileged under harden started:\n%s", r)
		}
		if !strings.Contains(r.stderr, "privileged.deny") {
			t.Fatalf("docker's error does not name the rule:\n%s", r)
		}
	})

	t.Run("exec", func(t *testing.T) {
		name := newID("d29x")
		if r, err := run("run", "-d", "--name", name, "--runtime", hardenRuntime, inst.image, "sleep", "300"); err != nil {
			t.Fatalf("docker run -d: %v\n%s", err, r)
		}
		t.Cleanup(func() { _, _ = run("rm", "--force", name) })
		// --privileged on exec asks for every capability.
		r, err := run("exec", "--privileged", name, "sh", "-c", probeScript)
		if err != nil {
			t.Fatalf("docker exec: %v\n%s", err, r)
		}
		assertHardened(t, "docker exec --privileged under harden", parseProbe(t, r.stdout), baselineCaps, true)
	})
}

// docker29 is a private Docker 29 engine started by startDocker29.
type docker29 struct {
	daemon    string // its directory: docker.sock, logs
	decisions string // harden's decision log for its containers
}

// startDocker29 starts a private Docker 29 engine (test/env/dockerd.sh) whose
// containerd finds harden's shim in bin/, with a node configuration
// (HARDEN_CONFIG) keeping harden's log and state in a temp dir (prefix);
// the engine is stopped and the dir removed when the test ends.
func startDocker29(t *testing.T, prefix string) docker29 {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "harden.toml")
	decisions := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("DecisionLog = %q\nStateDir = %q\nRoot = %q\nBinaryName = %q\n",
		decisions, filepath.Join(dir, "state"), filepath.Join(dir, "runc"), env["HARDEN_RUNC"])), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := filepath.Join(dir, "d")
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg, "HARDEN_EXTRA_PATH="+filepath.Join(repo, "bin"))
	script := filepath.Join(repo, "test", "env", "dockerd.sh")
	if r, err := runCmd(5*time.Minute, envv, script, "start", daemon, "29"); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start Docker 29: %v\n%s", err, r)
	}
	t.Cleanup(func() {
		if r, err := runCmd(2*time.Minute, envv, script, "stop", daemon); err != nil {
			t.Errorf("stop Docker 29: %v\n%s", err, r)
		}
		os.RemoveAll(dir)
	})
	return docker29{daemon: daemon, decisions: decisions}
}
