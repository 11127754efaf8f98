package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallEngines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}

	// containerd 1.7 (config version 2): the CRI plugin's layout.
	v2 := write("v2.toml", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause\"\n")
	hardenctl(t, "", "install", "containerd", "--config", v2).want(t, 0)
	if !strings.Contains(read(v2), `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."harden"]`) {
		t.Fatalf("v2 layout:\n%s", read(v2))
	}
	// A handler someone else configured is not overwritten.
	taken := write("taken.toml", "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.harden]\n  runtime_type = \"io.containerd.runc.v2\"\n")
	r := hardenctl(t, "", "install", "containerd", "--config", taken)
	r.want(t, 1)
	r.has(t, "stderr", "already configured")
	// Version 1 configs are refused with the way out.
	v1 := write("v1.toml", "[plugins.cri]\n")
	hardenctl(t, "", "install", "containerd", "--config", v1).want(t, 1)
	// Broken TOML is reported, the file is untouched.
	bad := write("bad.toml", "version = [\n")
	hardenctl(t, "", "install", "containerd", "--config", bad).want(t, 1)
	if read(bad) != "version = [\n" {
		t.Fatal("a broken file was changed")
	}

	// Docker: other settings are kept; a second install changes nothing;
	// uninstall removes only harden's entry.
	dj := write("daemon.json", `{"log-driver": "json-file", "runtimes": {"kata": {"runtimeType": "io.containerd.kata.v2"}}}`)
	hardenctl(t, "", "install", "docker", "--config", dj).want(t, 0)
	got := read(dj)
	for _, want := range []string{`"log-driver": "json-file"`, `"kata"`, `"path": "/usr/local/bin/harden-runc"`} {
		if !strings.Contains(got, want) {
			t.Fatalf("daemon.json lacks %s:\n%s", want, got)
		}
	}
	hardenctl(t, "", "install", "docker", "--config", dj).has(t, "stdout", "nothing to change")
	hardenctl(t, "", "uninstall", "docker", "--config", dj).want(t, 0)
	if got := read(dj); strings.Contains(got, "harden") || !strings.Contains(got, `"kata"`) {
		t.Fatalf("after uninstall:\n%s", got)
	}
	// --shim uses the containerd runtime type (Docker 23+).
	dj2 := filepath.Join(dir, "new", "daemon.json")
	hardenctl(t, "", "install", "docker", "--shim", "--config", dj2).want(t, 0)
	if !strings.Contains(read(dj2), `"runtimeType": "io.containerd.harden.v2"`) {
		t.Fatalf("--shim:\n%s", read(dj2))
	}

	// CRI-O: a drop-in of its own, removed by uninstall.
	crio := filepath.Join(dir, "crio.conf.d", "90-harden.conf")
	hardenctl(t, "", "install", "crio", "--config", crio).want(t, 0)
	if !strings.Contains(read(crio), `runtime_path = "/usr/local/bin/harden-runc"`) {
		t.Fatalf("crio drop-in:\n%s", read(crio))
	}
	hardenctl(t, "", "uninstall", "crio", "--config", crio).want(t, 0)
	if _, err := os.Stat(crio); !os.IsNotExist(err) {
		t.Fatal("uninstall left the drop-in")
	}
	// --dry-run writes nothing.
	dry := write("dry.toml", "version = 3\n")
	hardenctl(t, "", "install", "containerd", "--config", dry, "--dry-run").has(t, "stdout", "dry run")
	if read(dry) != "version = 3\n" {
		t.Fatal("--dry-run wrote")
	}
	hardenctl(t, "", "install", "podman").want(t, 2)
}

// TestInstallContainerdRuncType: --runc-type declares the handler as runc's
// runtime type with harden's shim as runtime_path and no options table, so
// containerd sends (empty) runc options; it refuses settings runc options
// cannot carry, and install/uninstall stay exact inverses.
func TestInstallContainerdRuncType(t *testing.T) {
	dir := t.TempDir()
	orig := "version = 3\n\n[plugins.\"io.containerd.cri.v1.runtime\".containerd]\n  default_runtime_name = \"runc\"\n"
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	hardenctl(t, "", "install", "containerd", "--runc-type", "--handler", "harden-userns", "--bin-dir", "/opt/harden/bin", "--config", p).want(t, 0)
	got := read()
	want := orig + `
# BEGIN harden runtime harden-userns (added by hardenctl install; hardenctl uninstall removes it)
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."harden-userns"]
  # runc's runtime type, harden's shim: containerd sends runc options (pods with
  # hostUsers: false need them); harden's settings are in /etc/harden/config.toml.
  runtime_type = "io.containerd.runc.v2"
  runtime_path = "/opt/harden/bin/containerd-shim-harden-v2"
# END harden runtime harden-userns
`
	if got != want {
		t.Fatalf("--runc-type block:\n%s\nwant:\n%s", got, want)
	}
	hardenctl(t, "", "install", "containerd", "--runc-type", "--handler", "harden-userns", "--bin-dir", "/opt/harden/bin", "--config", p).has(t, "stdout", "nothing to change")
	// Switching the same handler back to harden's own type replaces the block.
	hardenctl(t, "", "install", "containerd", "--handler", "harden-userns", "--config", p).want(t, 0)
	if got := read(); strings.Contains(got, "runtime_path") || !strings.Contains(got, `runtime_type = "io.containerd.harden.v2"`) {
		t.Fatalf("back to io.containerd.harden.v2:\n%s", got)
	}
	hardenctl(t, "", "uninstall", "containerd", "--handler", "harden-userns", "--config", p).want(t, 0)
	if got := read(); got != orig {
		t.Fatalf("uninstall left:\n%q\nwant:\n%q", got, orig)
	}

	// A policy cannot travel in runc options: refused, not dropped.
	r := hardenctl(t, "", "install", "containerd", "--runc-type", "--policy", "/etc/harden/p.yaml", "--config", p)
	r.want(t, 2)
	r.has(t, "stderr", "set PolicyPath in /etc/harden/config.toml")
	r = hardenctl(t, "", "install", "docker", "--runc-type", "--config", filepath.Join(dir, "daemon.json"))
	r.want(t, 2)
	r.has(t, "stderr", "containerd only")
	r = hardenctl(t, "", "install", "containerd", "--runc-type", "--bin-dir", "bin", "--config", p)
	r.want(t, 2)
	r.has(t, "stderr", "absolute path")
	if got := read(); got != orig {
		t.Fatalf("a refused install changed the file:\n%s", got)
	}
}
