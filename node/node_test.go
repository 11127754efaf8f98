package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("PolicyPath = \"/etc/p.yaml\"\nRunscFlags = [\"--oci-seccomp\", \"--network=none\"]\nSystemdCgroup = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy() != "/etc/p.yaml" || len(c.RunscArgs()) != 2 || !c.SystemdCgroup {
		t.Fatalf("%+v", c)
	}
	for name, in := range map[string]string{
		"unknown key":        "PolicyPaht = \"/x\"\n",
		"bad failure policy": "FailurePolicy = \"maybe\"\n",
		"relative policy":    "PolicyPath = \"policy.yaml\"\n",
		"not toml":           "PolicyPath = \n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseConfig([]byte(in)); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	if _, err := ParseConfig([]byte("PolicyPaht = \"/x\"\n")); err == nil || !strings.Contains(err.Error(), "PolicyPaht") {
		t.Fatalf("the error does not name the key: %v", err)
	}
	// Runtime options override the node file, field by field.
	m := Config{PolicyPath: "/a", BinaryName: "/usr/bin/runc"}.Merge(Config{PolicyPath: "/b", RuntimeHandler: "harden"})
	if m.PolicyPath != "/b" || m.BinaryName != "/usr/bin/runc" || m.RuntimeHandler != "harden" {
		t.Fatalf("merge: %+v", m)
	}
	if (Config{DecisionLog: "off"}).Log() != "" || (Config{}).Log() != DefaultDecisionLog {
		t.Fatal("decision log defaults")
	}
}

// TestPolicyCacheReloads: an edited policy applies to the next call, a
// broken one is an error (not the old policy), a missing one is the default.
func TestPolicyCacheReloads(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	pc := NewPolicyCache(p)
	c, err := pc.Get()
	if err != nil || c.Source != "(embedded default)" {
		t.Fatalf("absent file: %v %v", c, err)
	}
	write := func(body string) {
		t.Helper()
		// A distinct mtime even on coarse clocks.
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		now := time.Now().Add(time.Duration(len(body)) * time.Millisecond)
		if err := os.Chtimes(p, now, now); err != nil {
			t.Fatal(err)
		}
	}
	write("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: strict}\n")
	c, err = pc.Get()
	if err != nil || c.Source != p {
		t.Fatalf("new file: %v %v", c, err)
	}
	d, _, _ := c.Decide(spec.Identity{})
	if d.Profile != profiles.Strict {
		t.Fatalf("decision %+v", d)
	}
	again, _ := pc.Get()
	if again != c {
		t.Fatal("an unchanged file was loaded again")
	}
	write("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: strict}\nbogus: 1\n")
	if _, err := pc.Get(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("broken file: %v", err)
	}
	write("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: restricted, mode: audit}\n")
	c, err = pc.Get()
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := c.Decide(spec.Identity{}); d.Profile != profiles.Restricted || d.Mode != spec.Audit {
		t.Fatalf("fixed file: %+v", d)
	}
}

func TestRecorder(t *testing.T) {
	dir := t.TempDir()
	rc := &Recorder{Log: filepath.Join(dir, "log", "decisions.log"), StateDir: filepath.Join(dir, "state")}
	for i, id := range []string{"a", "b"} {
		if err := rc.Write(Record{ID: id, Event: EventCreate, Result: ResultHardened, Time: time.Unix(int64(i), 0)}); err != nil {
			t.Fatal(err)
		}
		if err := rc.SaveState(Record{ID: id, Namespace: "k8s.io", Result: ResultHardened}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(rc.Log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines: %q", b)
	}
	for _, l := range lines {
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	states, err := rc.States()
	if err != nil || len(states) != 2 || states[0].ID != "a" {
		t.Fatalf("states %v %v", states, err)
	}
	if err := rc.RemoveState("k8s.io", "a"); err != nil {
		t.Fatal(err)
	}
	if states, _ := rc.States(); len(states) != 1 {
		t.Fatalf("after remove: %v", states)
	}
	// IDs cannot walk out of the state directory.
	for _, bad := range []string{"../x", "a/b", ".."} {
		if err := rc.SaveState(Record{ID: bad, Namespace: "default"}); err == nil {
			t.Fatalf("id %q accepted", bad)
		}
	}
}

// TestRunscWrapper: runsc's global flags reach it through a generated
// wrapper, since the runc shim's BinaryName is a path, not a command line.
func TestRunscWrapper(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "runsc")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := Config{RunscPath: fake, RunscFlags: []string{"--oci-seccomp", "--network=none", "it's"}, StateDir: dir}
	w, err := c.RuntimeBinary(spec.Runsc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runOutput(w, "create", "--bundle", "/b", "id")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "--oci-seccomp --network=none it's create --bundle /b id" {
		t.Fatalf("wrapper ran %q", out)
	}
	if w2, _ := c.RuntimeBinary(spec.Runsc); w2 != w {
		t.Fatal("the same flags gave another wrapper")
	}
	if !c.Host(spec.Runsc).RunscOCISeccomp {
		t.Fatal("--oci-seccomp not reported")
	}
	if _, err := c.RuntimeBinary(spec.Kata); err == nil {
		t.Fatal("kata has no runc-compatible binary")
	}
}
