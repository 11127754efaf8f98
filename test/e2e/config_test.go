package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// policyYAML is the policy every test runs under. CRI pods are told apart by
// their Kubernetes namespace; `ctr run` containers carry no CRI annotations,
// so their rules match an OCI annotation the test sets (`ctr run
// --annotation`).
const policyYAML = `apiVersion: harden.dev/v1alpha1
kind: Policy
failurePolicy: deny
defaults:
  profile: baseline
  mode: enforce
  backend: runc
profiles:
  - name: restricted-refuse
    extends: restricted
    description: restricted, but an update above the ceiling is refused instead of lowered
    resources: {onExceed: refuse}
rules:
  - name: e2e-payments
    match: {namespaces: [payments]}
    profile: restricted
  - name: e2e-handler
    match: {runtimeHandlers: [` + criAltHandler + `], namespaces: [handler-match]}
    profile: restricted
  - name: e2e-refuse-update
    match: {namespaces: [refuse-update]}
    profile: restricted-refuse
  - name: e2e-audit
    match: {annotations: {` + ruleAnnotation + `: audit}}
    profile: baseline
    mode: audit
  - name: e2e-crun
    match: {annotations: {` + ruleAnnotation + `: crun}}
    profile: baseline
    backend: crun
  - name: e2e-runsc
    match: {annotations: {` + ruleAnnotation + `: runsc}}
    profile: baseline
    backend: runsc
  - name: e2e-runsc-pods
    match: {namespaces: [gvisor]}
    profile: baseline
    backend: runsc
`

// ruleAnnotation selects a policy rule for a `ctr run` container.
const ruleAnnotation = "e2e.harden.dev/rule"

// brokenPolicyYAML has a misspelt key on line 9; harden must refuse to run
// containers under it and say where the mistake is.
const brokenPolicyYAML = `apiVersion: harden.dev/v1alpha1
kind: Policy
defaults:
  profile: baseline
  mode: enforce
rules:
  - name: e2e-typo
    match: {namespaces: [payments]}
    profil: restricted
`

// brokenPolicyLine is the line brokenPolicyYAML's error is on.
const brokenPolicyLine = 9

// Runtime handlers registered for CRI.
const (
	criHandler    = "harden"     // the main policy; decisions in cri-decisions.log
	criAltHandler = "harden-alt" // alt-policy.yaml, which TestBrokenPolicy breaks and fixes
	// criRunscHandler is the main policy with the runsc flags that work
	// here (TestRunscBackend).
	criRunscHandler = "harden-runsc"
)

// writeFiles writes harden's node configuration, the policies and the
// extra containerd configuration that registers the CRI runtimes.
//
// `ctr run` sends no runtime options, so its containers get the node
// configuration (HARDEN_CONFIG). CRI copies each runtime's options table
// into runtimeoptions ConfigBody; the harden handler's table names its own
// decision log (cri-decisions.log), so the CRI tests show the table reached
// the shim rather than the node file answering for it.
func (in *instance) writeFiles() error {
	files := map[string]string{
		"policy.yaml":     policyYAML,
		"alt-policy.yaml": policyYAML,
		"config.toml":     in.nodeConfig(in.path("policy.yaml"), in.path("decisions.log"), nil),
		// TestBrokenPolicy's `ctr run --runtime-config-path`: the node
		// configuration with another policy file.
		"alt-config.toml": in.nodeConfig(in.path("alt-policy.yaml"), in.path("decisions.log"), nil),
		// TestRunscBackend: the flags runsc needs under the runc shim here.
		"runsc-config.toml": fmt.Sprintf("RunscFlags = %s\n", tomlList(runscWorkingFlags)),
		"containerd-extra.toml": in.criRuntime(criHandler, in.path("policy.yaml"), in.path("cri-decisions.log"), "") +
			in.criRuntime(criAltHandler, in.path("alt-policy.yaml"), in.path("cri-decisions.log"), "") +
			in.criRuntime(criRunscHandler, in.path("policy.yaml"), in.path("cri-decisions.log"),
				fmt.Sprintf("RunscPath = %q\nRunscFlags = %s\n", env["HARDEN_RUNSC"], tomlList(runscWorkingFlags))),
	}
	for name, content := range files {
		// Policies must be root-owned and not group/other-writable.
		if err := os.WriteFile(in.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runscWorkingFlags are the runsc global flags that run containers here; see
// TestRunscBackend.
var runscWorkingFlags = []string{"--oci-seccomp", "--network=none"}

// nodeConfig is harden's node configuration (TOML, the keys of node.Config).
func (in *instance) nodeConfig(policy, decisions string, extra []string) string {
	lines := []string{
		fmt.Sprintf("PolicyPath = %q", policy),
		fmt.Sprintf("DecisionLog = %q", decisions),
		fmt.Sprintf("StateDir = %q", in.path("state")),
		// ctr run sends no runc options: keep runc state inside the instance.
		fmt.Sprintf("Root = %q", filepath.Join(in.dir, "runc")),
		fmt.Sprintf("BinaryName = %q", env["HARDEN_RUNC"]),
	}
	if p := env["HARDEN_CRUN"]; p != "" {
		lines = append(lines, fmt.Sprintf("CrunPath = %q", p))
	}
	if p := env["HARDEN_RUNSC"]; p != "" {
		lines = append(lines, fmt.Sprintf("RunscPath = %q", p))
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// criRuntime is a CRI runtime handler on harden's shim.
func (in *instance) criRuntime(name, policy, decisions, extra string) string {
	t := fmt.Sprintf(`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]q]
  runtime_type = "io.containerd.harden.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]q.options]
    Root = "@DIR@/runc"
    PolicyPath = %[2]q
    DecisionLog = %[3]q
    StateDir = %[4]q
    BinaryName = %[5]q
    RuntimeHandler = %[1]q
`, name, policy, decisions, in.path("state"), env["HARDEN_RUNC"])
	for _, line := range strings.Split(strings.TrimSpace(extra), "\n") {
		if line != "" {
			t += "    " + line + "\n"
		}
	}
	return t + "\n"
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
