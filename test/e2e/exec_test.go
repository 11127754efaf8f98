package e2e

import (
	"testing"
)

// TestExec runs a process in a hardened container with `ctr task exec` and
// `crictl exec`. The engines build the exec process from the spec they
// stored, with their wider default capabilities, not from the hardened
// bundle: harden must give it no more than the container has.
func TestExec(t *testing.T) {
	in := requireSuite(t)

	t.Run("ctr", func(t *testing.T) {
		id := newID("exec")
		pid := ctrRunDetached(t, hardenRuntime, nil, id)
		const execID = "e2e-probe"
		r := mustCtr(t, "default", "tasks", "exec", "--fifo-dir", in.dir+"/fifo", "--exec-id", execID, id, "sh", "-c", probeScript)
		got := parseProbe(t, r.stdout)
		t.Logf("ctr task exec: %s", kernelView(got))
		assertHardened(t, "ctr task exec", got, baselineCaps, true)
		if init := procStatus(t, pid); got["CapEff"] != init["CapEff"] || got["CapBnd"] != init["CapBnd"] {
			t.Errorf("exec'd process CapEff/CapBnd %s/%s, container init %s/%s", got["CapEff"], got["CapBnd"], init["CapEff"], init["CapBnd"])
		}
		rec := findRecord(t, in.path("decisions.log"), "exec "+execID+" in "+id, func(r record) bool {
			return r.Event == "exec" && r.ID == id && r.ExecID == execID
		})
		if rec.Result != "hardened" || !rec.hasChange("caps.drop") {
			t.Errorf("exec record: result %q, want hardened with a caps.drop change (ctr asked for its default capabilities):\n%s", rec.Result, rec)
		}
	})

	t.Run("crictl", func(t *testing.T) {
		p := &pod{name: "e2e-exec", namespace: "default"}
		runPod(t, p)
		cid, initView := startProbe(t, p, "app", nil)
		r := mustCrictl(t, "exec", cid, "sh", "-c", probeScript)
		got := parseProbe(t, r.stdout)
		t.Logf("crictl exec: %s", kernelView(got))
		assertHardened(t, "crictl exec", got, baselineCaps, true)
		if got["CapEff"] != initView["CapEff"] {
			t.Errorf("exec'd process CapEff %s, container init %s", got["CapEff"], initView["CapEff"])
		}
		rec := findRecord(t, in.path("cri-decisions.log"), "exec in "+cid, func(r record) bool {
			return r.Event == "exec" && r.ID == cid
		})
		if rec.Result != "hardened" || !rec.hasChange("caps.drop") {
			t.Errorf("exec record: result %q, want hardened with a caps.drop change (CRI asked for its default capabilities):\n%s", rec.Result, rec)
		}
	})
}
