package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/test/testenv"
)

// TestBrokenPolicy breaks the policy file: containers must not start, the
// error must name the file and the line, and nothing may be left. Fixing the
// file must be enough for the next container to start: no restart of
// containerd, nor of a pod's running shim.
func TestBrokenPolicy(t *testing.T) {
	in := requireSuite(t)
	policy := in.path("alt-policy.yaml")
	write := func(content string) {
		t.Helper()
		// A new file renamed over the old one, like a ConfigMap update or an
		// editor's save.
		tmp := policy + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, policy); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { write(policyYAML) })
	wantLine := "line " + strconv.Itoa(brokenPolicyLine)
	containerdPid := readPid(t, filepath.Join(in.dir, "containerd.pid"))

	t.Run("ctr", func(t *testing.T) {
		// `ctr run --runtime-config-path` sends runtimeoptions with ConfigPath:
		// the node configuration with PolicyPath = alt-policy.yaml.
		flags := []string{"--rm", "--runtime-config-path", in.path("alt-config.toml")}
		write(brokenPolicyYAML)
		id := newID("broken")
		t.Cleanup(func() { removeCtrContainer(t, "default", id) })
		r, err := ctr("default", ctrRunArgs(hardenRuntime, flags, id, "true")...)
		if err == nil {
			t.Fatalf("ctr run succeeded under a broken policy:\n%s", r)
		}
		if !strings.Contains(r.stderr, policy) || !strings.Contains(r.stderr, wantLine) {
			t.Errorf("ctr's error does not name %s and %q:\n%s", policy, wantLine, r.stderr)
		}
		assertNoTrace(t, "default", id)
		rec := createRecord(t, in.path("decisions.log"), id)
		if rec.Result != "error" || !strings.Contains(rec.Error, policy) {
			t.Errorf("record: result %q error %q, want error naming %s:\n%s", rec.Result, rec.Error, policy, rec)
		}

		write(policyYAML)
		id2 := newID("fixed")
		t.Cleanup(func() { removeCtrContainer(t, "default", id2) })
		r2, err := ctr("default", ctrRunArgs(hardenRuntime, flags, id2, "sh", "-c", probeScript)...)
		if err != nil {
			t.Fatalf("ctr run after fixing the policy: %v\n%s", err, r2)
		}
		assertHardened(t, "after the fix", parseProbe(t, r2.stdout), baselineCaps, true)
		if rec := createRecord(t, in.path("decisions.log"), id2); rec.Result != "hardened" || rec.Policy != policy {
			t.Errorf("record after the fix: result %q policy %q, want hardened under %s:\n%s", rec.Result, rec.Policy, policy, rec)
		}
	})

	t.Run("cri-running-pod", func(t *testing.T) {
		// The pod's shim stays up across the breakage: its policy cache must
		// notice both changes.
		p := &pod{name: "e2e-policy-reload", namespace: "default", handler: criAltHandler}
		runPod(t, p)
		write(brokenPolicyYAML)
		cid := createContainer(t, p, containerConfig(t, "broken", nil, ""))
		r, err := crictl("start", cid)
		if err == nil {
			t.Fatalf("crictl start succeeded under a broken policy")
		}
		if !strings.Contains(r.stderr, policy) || !strings.Contains(r.stderr, wantLine) {
			t.Errorf("crictl's error does not name %s and %q:\n%s", policy, wantLine, r.stderr)
		}
		if ctrTaskExists(t, "k8s.io", cid) {
			t.Errorf("a task is left for %s", cid)
		}
		if _, err := os.Stat(filepath.Join(in.taskDir("k8s.io"), cid)); err == nil {
			t.Errorf("bundle left: %s", filepath.Join(in.taskDir("k8s.io"), cid))
		}
		for _, m := range testenv.MountsUnder(in.base) {
			if strings.Contains(m, cid) {
				t.Errorf("mount left: %s", m)
			}
		}

		write(policyYAML)
		_, got := startProbe(t, p, "fixed", nil)
		assertHardened(t, "container after the fix", got, baselineCaps, true)
	})

	if pid := readPid(t, filepath.Join(in.dir, "containerd.pid")); pid != containerdPid || !alive(pid) {
		t.Errorf("containerd pid %d -> %d (alive %v): the test must not need a restart", containerdPid, pid, alive(pid))
	}
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return pid
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// conflictProfile is a seccomp profile whose two personality rules have the
// same condition and different actions: libseccomp refuses it ("file
// exists"). The shim, built without cgo, does not check how rules merge
// (profiles/seccomp_check.go); runc must refuse the filter at create, and
// hardenctl (cgo) at load.
const conflictProfile = `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
    {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
  ]
}
`

// TestSeccompRuleConflict: a policy whose profile libseccomp refuses only
// when it merges the rules. Nothing may run under it and nothing may be
// left; `hardenctl policy validate` must name the conflict before a
// container is tried.
func TestSeccompRuleConflict(t *testing.T) {
	in := requireSuite(t)
	policy := in.path("alt-policy.yaml")
	profile := in.path("conflict.json")
	if err := os.WriteFile(profile, []byte(conflictProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	conflictPolicy := `apiVersion: harden.dev/v1alpha1
kind: Policy
defaults:
  profile: conflict
  mode: enforce
profiles:
  - name: conflict
    extends: baseline
    seccomp: {profile: ` + profile + `}
`
	if err := os.WriteFile(policy+".tmp", []byte(conflictPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(policy+".tmp", policy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(policy, []byte(policyYAML), 0o644); err != nil {
			t.Error(err)
		}
	})

	repo, _ := filepath.Abs("../..")
	r, err := runCmd(time.Minute, os.Environ(), filepath.Join(repo, "bin", "hardenctl"), "policy", "validate", policy)
	if err == nil || !strings.Contains(r.stdout+r.stderr, "file exists") || !strings.Contains(r.stdout+r.stderr, "personality") {
		t.Errorf("hardenctl policy validate %s: %v; want a failure naming personality and \"file exists\":\n%s", policy, err, r)
	}

	id := newID("conflict")
	t.Cleanup(func() { removeCtrContainer(t, "default", id) })
	r, err = ctr("default", ctrRunArgs(hardenRuntime, []string{"--rm", "--runtime-config-path", in.path("alt-config.toml")}, id, "true")...)
	if err == nil {
		t.Fatalf("ctr run succeeded under a seccomp profile libseccomp refuses:\n%s", r)
	}
	if !strings.Contains(r.stderr, "file exists") || !strings.Contains(r.stderr, "personality") {
		t.Errorf("ctr's error does not carry runc's refusal (personality, \"file exists\"):\n%s", r.stderr)
	}
	assertNoTrace(t, "default", id)
}
