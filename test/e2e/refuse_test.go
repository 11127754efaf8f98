package e2e

import (
	"strings"
	"testing"
)

// TestRefusals asks for what the policy forbids. The engine's error must name
// the rule, nothing of the container may remain (task, shim, bundle, mounts,
// processes), and the decision log must say "refused".
func TestRefusals(t *testing.T) {
	in := requireSuite(t)

	for _, tc := range []struct {
		name, rule string
		flags      []string
	}{
		{"ctr-privileged", "privileged.deny", []string{"--privileged"}},
		// The source need not exist: harden refuses before runc looks.
		{"ctr-containerd-socket", "mounts.deny-host-path", []string{"--mount",
			"type=bind,src=/run/containerd/containerd.sock,dst=/run/containerd/containerd.sock,options=rbind:ro"}},
		// A directory above a denied path exposes it (/usr/local/bin).
		{"ctr-above-denied-path", "mounts.deny-host-path", []string{"--mount", "type=bind,src=/usr/local,dst=/host-local,options=rbind:ro"}},
		{"ctr-etc-passwd", "mounts.deny-host-path", []string{"--mount", "type=bind,src=/etc/passwd,dst=/host-passwd,options=rbind:rw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := newID("refuse")
			t.Cleanup(func() { removeCtrContainer(t, "default", id) })
			r, err := ctr("default", ctrRunArgs(hardenRuntime, append([]string{"--rm"}, tc.flags...), id, "true")...)
			if err == nil {
				t.Fatalf("ctr run %v under harden succeeded; want a refusal naming %s\n%s", tc.flags, tc.rule, r)
			}
			if !strings.Contains(r.stderr, tc.rule) {
				t.Errorf("ctr's error does not name %s:\n%s", tc.rule, r.stderr)
			}
			assertNoTrace(t, "default", id)
			rec := createRecord(t, in.path("decisions.log"), id)
			if rec.Result != "refused" || !rec.hasViolation(tc.rule) {
				t.Errorf("record: result %q, want refused with a %s violation:\n%s", rec.Result, tc.rule, rec)
			}
		})
	}

	t.Run("cri-host-pid", func(t *testing.T) {
		p := &pod{name: "e2e-hostpid", namespace: "default", hostPID: true}
		r, err := tryRunPod(t, p)
		if err == nil {
			t.Fatalf("crictl runp with host PID namespace succeeded (pod %s); want a refusal naming namespaces.host", p.id)
		}
		if !strings.Contains(r.stderr, "namespaces.host") {
			t.Errorf("crictl's error does not name namespaces.host:\n%s", r.stderr)
		}
		rec := findRecord(t, in.path("cri-decisions.log"), "sandbox of pod "+p.name, func(r record) bool {
			return r.Event == "create" && r.Identity.Pod == p.name && r.Identity.ContainerType == "sandbox"
		})
		if rec.Result != "refused" || !rec.hasViolation("namespaces.host") {
			t.Errorf("record: result %q, want refused with a namespaces.host violation:\n%s", rec.Result, rec)
		}
		rememberID(rec.ID)
		assertNoTrace(t, "k8s.io", rec.ID)
		if r := mustCrictl(t, "pods", "-q", "--name", p.name); strings.TrimSpace(r.stdout) != "" {
			t.Errorf("the refused pod is still listed: %s", r.stdout)
			for _, id := range strings.Fields(r.stdout) {
				_, _ = crictl("rmp", "--force", id)
			}
		}
	})
}
