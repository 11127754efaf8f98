package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// harden-runc under the engines that speak to a runtime through runc's
// command line: Debian's Docker 20.10 with a runtime path, Podman with
// --runtime, and containerd's runc shim with BinaryName.

func hardenRunc(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(repo, "bin", "harden-runc")
	if _, err := os.Stat(p); err != nil {
		t.Fatal("bin/harden-runc is missing: run make build")
	}
	return p
}

// runcwrapConfig writes a node configuration for harden-runc in a temp dir
// and returns it with the decision log path.
func runcwrapConfig(t *testing.T, dir string) (string, string) {
	t.Helper()
	cfg := filepath.Join(dir, "harden.toml")
	decisions := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("DecisionLog = %q\nStateDir = %q\nBinaryName = %q\n",
		decisions, filepath.Join(dir, "hstate"), env["HARDEN_RUNC"])), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, decisions
}

// TestDocker20RuntimePath: Debian's Docker 20.10 (its own containerd 1.6 and
// runc shim) with `runtimes: {harden: {path: harden-runc}}` in daemon.json.
func TestDocker20RuntimePath(t *testing.T) {
	requireSuite(t)
	need(t, "HARDEN_DOCKERD20")
	docker := need(t, "HARDEN_DOCKER")
	wrapper := hardenRunc(t)
	repo, _ := filepath.Abs("../..")
	dir, err := os.MkdirTemp("", "hd20.")
	if err != nil {
		t.Fatal(err)
	}
	cfg, decisions := runcwrapConfig(t, dir)
	// The runtime entry comes from `hardenctl install docker`, as an
	// operator would write it.
	daemonJSON := filepath.Join(dir, "daemon-extra.json")
	if r, err := runCmd(time.Minute, nil, filepath.Join(repo, "bin", "hardenctl"), "install", "docker", "--config", daemonJSON, "--bin-dir", filepath.Dir(wrapper)); err != nil {
		t.Fatalf("hardenctl install docker: %v\n%s", err, r)
	}
	daemon := filepath.Join(dir, "d")
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg)
	script := filepath.Join(repo, "test", "env", "dockerd.sh")
	if r, err := runCmd(5*time.Minute, envv, script, "start", daemon, "20", daemonJSON); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start Docker 20.10: %v\n%s", err, r)
	}
	t.Cleanup(func() {
		if r, err := runCmd(2*time.Minute, envv, script, "stop", daemon); err != nil {
			t.Errorf("stop Docker 20.10: %v\n%s", err, r)
		}
		os.RemoveAll(dir)
	})
	dockerEnv := append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(daemon, "docker.sock"))
	run := func(args ...string) (result, error) { return runCmd(2*time.Minute, dockerEnv, docker, args...) }

	t.Run("runtime-offered", func(t *testing.T) {
		r, err := run("info", "--format", "{{json .Runtimes}}")
		if err != nil || !strings.Contains(r.stdout, `"harden"`) || !strings.Contains(r.stdout, "harden-runc") {
			t.Fatalf("docker info does not offer the installed runtime: %v\n%s", err, r)
		}
	})
	t.Run("hardened", func(t *testing.T) {
		r, err := run("run", "--rm", "--runtime", "harden", inst.image, "sh", "-c", probeScript)
		if err != nil {
			t.Fatalf("docker run --runtime harden: %v\n%s", err, r)
		}
		assertHardened(t, "Docker 20.10 --runtime harden", parseProbe(t, r.stdout), baselineCaps, true)
		rec := findRecord(t, decisions, "docker 20 create", func(r record) bool { return r.Event == "create" })
		if rec.Result != "hardened" {
			t.Errorf("record result %q:\n%s", rec.Result, rec)
		}
	})
	t.Run("privileged-refused", func(t *testing.T) {
		r, err := run("run", "--rm", "--privileged", "--runtime", "harden", inst.image, "true")
		if err == nil || !strings.Contains(r.stderr, "privileged.deny") {
			t.Fatalf("docker run --privileged --runtime harden: want a refusal naming privileged.deny, got %v\n%s", err, r)
		}
	})
	t.Run("exec", func(t *testing.T) {
		name := newID("d20x")
		if r, err := run("run", "-d", "--name", name, "--runtime", "harden", inst.image, "sleep", "300"); err != nil {
			t.Fatalf("docker run -d: %v\n%s", err, r)
		}
		t.Cleanup(func() { _, _ = run("rm", "--force", name) })
		r, err := run("exec", "--privileged", name, "sh", "-c", probeScript)
		if err != nil {
			t.Fatalf("docker exec: %v\n%s", err, r)
		}
		assertHardened(t, "docker exec --privileged", parseProbe(t, r.stdout), baselineCaps, true)
	})
	t.Run("update-lowered", func(t *testing.T) {
		name := newID("d20u")
		// restricted's memory ceiling is 4Gi; the default policy is
		// baseline (no memory ceiling), so update pids instead: baseline
		// holds pids at 4096.
		if r, err := run("run", "-d", "--name", name, "--runtime", "harden", inst.image, "sleep", "300"); err != nil {
			t.Fatalf("docker run -d: %v\n%s", err, r)
		}
		t.Cleanup(func() { _, _ = run("rm", "--force", name) })
		if r, err := run("update", "--pids-limit", "100000", name); err != nil {
			t.Fatalf("docker update: %v\n%s", err, r)
		}
		r, err := run("exec", name, "cat", "/sys/fs/cgroup/pids/pids.max")
		if err != nil {
			t.Fatalf("read pids.max: %v\n%s", err, r)
		}
		if got := strings.TrimSpace(r.stdout); got != "4096" {
			t.Fatalf("pids.max after docker update --pids-limit 100000 = %s, want 4096 (the baseline ceiling)", got)
		}
	})
}

// TestPodmanRuntime: Debian's Podman with --runtime harden-runc, private
// storage, cgroupfs, no network, and the rlimits this host allows.
func TestPodmanRuntime(t *testing.T) {
	requireSuite(t)
	podman := need(t, "HARDEN_PODMAN")
	wrapper := hardenRunc(t)
	dir, err := os.MkdirTemp("", "hpm.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg, decisions := runcwrapConfig(t, dir)
	// runc's state goes in the temp dir too (its default is /run/runc).
	runcRoot := filepath.Join(dir, "runc-root")
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp"),
		"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "vfs"}
	envv := append(os.Environ(), "HARDEN_CONFIG="+cfg, "CONTAINERS_CONF=/dev/null", "XDG_RUNTIME_DIR="+filepath.Join(dir, "xdg"))
	pm := func(args ...string) (result, error) {
		return runCmd(3*time.Minute, envv, podman, append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		_, _ = pm("rm", "--all", "--force")
		// Whatever podman's asynchronous cleanup did not delete.
		if r, _ := runCmd(time.Minute, nil, env["HARDEN_RUNC"], "--root", runcRoot, "list", "-q"); strings.TrimSpace(r.stdout) != "" {
			for _, id := range strings.Fields(r.stdout) {
				_, _ = runCmd(time.Minute, nil, env["HARDEN_RUNC"], "--root", runcRoot, "delete", "--force", id)
			}
		}
		_, _ = runCmd(time.Minute, envv, "umount", "-R", filepath.Join(dir, "root"))
	})
	if r, err := pm("load", "-i", filepath.Join(env["HARDEN_IMAGES"], "busybox.tar")); err != nil {
		t.Fatalf("podman load: %v\n%s", err, r)
	}
	// conmon does not pass the environment on: name the configuration with
	// harden-runc's own global flag.
	rflag := []string{"--runtime-flag", "harden-config=" + cfg, "--runtime-flag", "root=" + runcRoot}
	base = append(base, rflag...)
	runArgs := []string{"run", "--rm", "--runtime", wrapper, "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", inst.image}
	r, err := pm(append(runArgs, "sh", "-c", probeScript)...)
	if err != nil {
		t.Fatalf("podman run --runtime harden-runc: %v\n%s", err, r)
	}
	assertHardened(t, "podman --runtime harden-runc", parseProbe(t, r.stdout), baselineCaps, true)
	rec := findRecord(t, decisions, "podman create", func(r record) bool { return r.Event == "create" })
	if rec.Identity.Engine != "podman" || rec.Result != "hardened" {
		t.Errorf("record: engine %q result %q, want a hardened podman container:\n%s", rec.Identity.Engine, rec.Result, rec)
	}
	r, err = pm("run", "--rm", "--privileged", "--runtime", wrapper, "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", inst.image, "true")
	if err == nil || !strings.Contains(r.stderr, "privileged.deny") {
		t.Fatalf("podman run --privileged: want a refusal naming privileged.deny, got %v\n%s", err, r)
	}
}

// TestRuncShimBinaryName: containerd's own runc shim (io.containerd.runc.v2)
// with BinaryName = harden-runc, through `ctr run --runtime-config-path`.
func TestRuncShimBinaryName(t *testing.T) {
	in := requireSuite(t)
	wrapper := hardenRunc(t)
	id := newID("bn")
	// harden-runc reads HARDEN_CONFIG, which containerd passes to its shims.
	r, err := ctr("default", ctrRunArgs("io.containerd.runc.v2", []string{"--rm", "--runc-binary", wrapper}, id, "sh", "-c", probeScript)...)
	if err != nil {
		t.Fatalf("ctr run with BinaryName=harden-runc: %v\n%s", err, r)
	}
	assertHardened(t, "runc shim with BinaryName=harden-runc", parseProbe(t, r.stdout), baselineCaps, true)
	if left, _ := filepath.Glob(filepath.Join(in.path("state"), "containers", "*", id+".json")); len(left) != 0 {
		t.Errorf("ctr run --rm left harden's record %s", left[0])
	}

	// Detached, then killed and deleted. While the container runs, its
	// record is there for hardenctl ps. The runc shim's delete comes once
	// the init has exited, so harden-runc's fast path forgets the record
	// and execs runc: the record must be gone, and runc must have deleted
	// the container (the runc shim's root is <instance>/runc/<namespace>).
	id2 := newID("bnd")
	pid := ctrRunDetached(t, "io.containerd.runc.v2", []string{"--runc-binary", wrapper}, id2)
	assertHardened(t, "detached, runc shim with BinaryName=harden-runc (host /proc)", procStatus(t, pid), baselineCaps, true)
	state := filepath.Join(in.path("state"), "containers", "default", id2+".json")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no record of the running container: %v", err)
	}
	removeCtrContainer(t, "default", id2)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("record %s still there after the container was deleted (%v)", state, err)
	}
	if r, err := runCmd(30*time.Second, nil, env["HARDEN_RUNC"], "--root", filepath.Join(inst.dir, "runc", "default"), "state", id2); err == nil ||
		!strings.Contains(r.stderr, "does not exist") {
		t.Errorf("runc still knows %s after the delete (%v):\n%s%s", id2, err, r.stdout, r.stderr)
	}
}
