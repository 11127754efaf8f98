package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCtrBaseline runs busybox with `ctr run --runtime io.containerd.harden.v2`
// (no runtime options: the node configuration applies) and checks that the
// kernel shows the baseline profile, then the same container under the plain
// runc shim to show the difference harden makes.
func TestCtrBaseline(t *testing.T) {
	in := requireSuite(t)
	decisions := in.path("decisions.log")
	var hardenedBnd uint64

	t.Run("hardened", func(t *testing.T) {
		id := newID("base")
		t.Cleanup(func() { removeCtrContainer(t, "default", id) })
		r := mustCtr(t, "default", ctrRunArgs(hardenRuntime, []string{"--rm"}, id, "sh", "-c", probeScript)...)
		got := parseProbe(t, r.stdout)
		t.Logf("harden: %s", kernelView(got))
		assertHardened(t, "ctr run under harden", got, baselineCaps, true)
		assertMasked(t, "ctr run under harden", got)
		hardenedBnd = parseMask(t, got["CapBnd"])

		rec := createRecord(t, decisions, id)
		if rec.Result != "hardened" || rec.Decision.Profile != "baseline" || rec.Decision.Mode != "enforce" || rec.Decision.Rule != "defaults" {
			t.Errorf("create record: result %q, rule %q, profile %q, mode %q; want hardened by the defaults' baseline, enforced\n%s",
				rec.Result, rec.Decision.Rule, rec.Decision.Profile, rec.Decision.Mode, rec)
		}
		for _, rule := range []string{"caps.drop", "seccomp.profile", "resources.ceiling"} {
			if !rec.hasChange(rule) {
				t.Errorf("create record lists no %s change:\n%s", rule, rec)
			}
		}
	})

	t.Run("pids-cgroup", func(t *testing.T) {
		id := newID("pids")
		pid := ctrRunDetached(t, hardenRuntime, nil, id)
		if got := cgroupFile(t, pid, "pids", "pids.max"); got != "4096" {
			t.Errorf("pids.max of %s (pid %d) = %q, want 4096 (baseline's ceiling)", id, pid, got)
		}
		// The host's view of the init process agrees with what the container sees.
		assertHardened(t, "init process (host /proc)", procStatus(t, pid), baselineCaps, true)
		rec := createRecord(t, decisions, id)
		if rec.Result != "hardened" {
			t.Errorf("create record result %q, want hardened:\n%s", rec.Result, rec)
		}
		// hardenctl ps reads the per-container state while the container lives.
		state := filepath.Join(in.path("state"), "containers", "default", id+".json")
		b, err := os.ReadFile(state)
		if err != nil {
			t.Fatalf("container state: %v", err)
		}
		var st record
		if err := json.Unmarshal(b, &st); err != nil || st.ID != id || st.Result != "hardened" {
			t.Errorf("container state %s: id %q result %q (%v), want %s hardened", state, st.ID, st.Result, err, id)
		}
		removeCtrContainer(t, "default", id)
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("container state %s still exists after the container was deleted (%v)", state, err)
		}
	})

	t.Run("runc-v2-comparison", func(t *testing.T) {
		id := newID("plain")
		t.Cleanup(func() { removeCtrContainer(t, "default", id) })
		r := mustCtr(t, "default", ctrRunArgs(runcRuntime, []string{"--rm"}, id, "sh", "-c", probeScript)...)
		got := parseProbe(t, r.stdout)
		t.Logf("runc.v2: %s", kernelView(got))
		bnd := parseMask(t, got["CapBnd"])
		if hardenedBnd != 0 && (bnd&hardenedBnd != hardenedBnd || bnd == hardenedBnd) {
			t.Errorf("runc.v2 CapBnd %s is not wider than harden's %016x", got["CapBnd"], hardenedBnd)
		}
		if got["Seccomp"] != "0" {
			t.Errorf("runc.v2 Seccomp = %q, want 0: `ctr run` sets no filter, so the comparison shows nothing", got["Seccomp"])
		}
		if hasRecord(t, decisions, func(r record) bool { return r.ID == id }) {
			t.Errorf("harden recorded a decision for %s, which ran on the plain runc shim", id)
		}
	})
}

// TestAudit runs the same container under an audit rule and under the plain
// runc shim: the kernel view and the bundle's config.json must be the same
// (audit mode changes nothing), and the record says "audited" and lists what
// enforce mode would have changed.
func TestAudit(t *testing.T) {
	in := requireSuite(t)
	ann := []string{"--annotation", ruleAnnotation + "=audit"}
	auditID, plainID := newID("audit"), newID("auditref")
	auditPid := ctrRunDetached(t, hardenRuntime, ann, auditID)
	plainPid := ctrRunDetached(t, runcRuntime, ann, plainID)

	audit, plain := procStatus(t, auditPid), procStatus(t, plainPid)
	t.Logf("audit:   %s", kernelView(audit))
	t.Logf("runc.v2: %s", kernelView(plain))
	if kernelView(audit) != kernelView(plain) {
		t.Errorf("kernel view differs:\n  audit:   %s\n  runc.v2: %s", kernelView(audit), kernelView(plain))
	}
	if audit["Seccomp"] != "0" {
		t.Errorf("audit mode installed a seccomp filter (Seccomp = %s)", audit["Seccomp"])
	}

	// containerd wrote both bundles from the same image and flags; only the
	// id differs. In audit mode harden must leave the file as written.
	read := func(id string) []byte {
		b, err := os.ReadFile(filepath.Join(in.taskDir("default"), id, "config.json"))
		if err != nil {
			t.Fatalf("bundle of %s: %v", id, err)
		}
		return bytes.ReplaceAll(b, []byte(id), []byte("ID"))
	}
	if a, p := read(auditID), read(plainID); !bytes.Equal(a, p) {
		t.Errorf("config.json under audit differs from the runc.v2 one (ids replaced):\n%s", firstDiff(a, p))
	}

	rec := createRecord(t, in.path("decisions.log"), auditID)
	if rec.Result != "audited" || rec.Decision.Mode != "audit" || rec.Decision.Rule != "e2e-audit" {
		t.Errorf("record: result %q mode %q rule %q, want audited by e2e-audit:\n%s", rec.Result, rec.Decision.Mode, rec.Decision.Rule, rec)
	}
	if len(rec.Changes) == 0 || !rec.hasChange("caps.drop") || !rec.hasChange("seccomp.profile") {
		t.Errorf("audit record does not list what enforce mode would change (caps.drop, seccomp.profile):\n%s", rec)
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-120)
	cut := func(x []byte) string { return string(x[lo:min(len(x), i+120)]) }
	return "at byte " + strconv.Itoa(i) + ":\n  audit:   ..." + strings.ReplaceAll(cut(a), "\n", " ") + "\n  runc.v2: ..." + strings.ReplaceAll(cut(b), "\n", " ")
}
