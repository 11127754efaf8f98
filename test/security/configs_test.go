package security

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Engines a configuration runs the probe through.
const (
	engineCtr    = "ctr"    // `ctr run`
	engineCRI    = "cri"    // crictl runp/create/start
	engineDocker = "docker" // docker run on a private Docker 29
)

// Runtime types.
const (
	hardenRuntime = "io.containerd.harden.v2"
	runcRuntime   = "io.containerd.runc.v2"
)

// nonRootUser is the uid:gid restricted and strict containers run as (the
// busybox image's "user"); those profiles refuse uid 0.
const nonRootUser = 1000

// config is one column of the results table: an engine, and either the
// engine's defaults or a harden profile on a backend.
type config struct {
	name    string // column header and subtest name
	engine  string
	profile string // harden profile; "" = the engine's defaults, no harden
	backend string // runc, crun or runsc (harden only)
	nonRoot bool   // run as nonRootUser
	need    string // env.sh tool this column needs besides the basics
	note    string // what the column is, for the docs
}

func (c config) hardened() bool { return c.profile != "" }

// configs are the columns, in table order.
var configs = []config{
	{name: "ctr default", engine: engineCtr, note: "`ctr run` on io.containerd.runc.v2 with ctr's defaults (runc 1.4, no seccomp)"},
	{name: "CRI default", engine: engineCRI, note: "crictl on containerd 2.4's runc handler, no security context (what static pods and CRI clients without the kubelet's defaults get)"},
	{name: "Docker 29", engine: engineDocker, need: "HARDEN_DOCKERD29", note: "`docker run` on Docker 29 (moby v2.0.0-beta.24) with its defaults"},
	{name: "baseline runc", engine: engineCtr, profile: "baseline", backend: "runc"},
	{name: "restricted runc", engine: engineCtr, profile: "restricted", backend: "runc", nonRoot: true},
	{name: "strict runc", engine: engineCtr, profile: "strict", backend: "runc", nonRoot: true},
	{name: "baseline crun", engine: engineCtr, profile: "baseline", backend: "crun", need: "HARDEN_CRUN"},
	{name: "restricted crun", engine: engineCtr, profile: "restricted", backend: "crun", nonRoot: true, need: "HARDEN_CRUN"},
	{name: "strict crun", engine: engineCtr, profile: "strict", backend: "crun", nonRoot: true, need: "HARDEN_CRUN"},
	{name: "baseline runsc", engine: engineCtr, profile: "baseline", backend: "runsc", need: "HARDEN_RUNSC"},
	{name: "restricted runsc", engine: engineCtr, profile: "restricted", backend: "runsc", nonRoot: true, need: "HARDEN_RUNSC"},
	{name: "strict runsc", engine: engineCtr, profile: "strict", backend: "runsc", nonRoot: true, need: "HARDEN_RUNSC"},
	{name: "baseline CRI", engine: engineCRI, profile: "baseline", backend: "runc"},
	{name: "restricted CRI", engine: engineCRI, profile: "restricted", backend: "runc", nonRoot: true},
	{name: "strict CRI", engine: engineCRI, profile: "strict", backend: "runc", nonRoot: true},
}

// runscFlags are the runsc global flags that run containers on this host:
// --oci-seccomp applies the spec's seccomp filter inside the sandbox, and
// --network=none avoids gVisor 2022-12-19's network setup, which fails on
// kernel 6.18 (see test/e2e TestRunscBackend).
var runscFlags = []string{"--oci-seccomp", "--network=none"}

// policyFile is the policy whose defaults select profile on backend.
func (in *instance) policyFile(profile, backend string) string {
	return in.path(fmt.Sprintf("policy-%s-%s.yaml", profile, backend))
}

// runtimeConfig is the node configuration `ctr run --runtime-config-path`
// names for a harden column: its policy (and runsc's flags). The shim
// merges it over the node file (HARDEN_CONFIG).
func (in *instance) runtimeConfig(c config) string {
	return in.path(fmt.Sprintf("config-%s-%s.toml", c.profile, c.backend))
}

// criHandler is the CRI runtime handler for a harden profile.
func criHandler(profile string) string { return "harden-" + profile }

// writeFiles writes the policies (one per profile and backend, each
// selecting its profile in `defaults`), harden's node configuration, the
// per-column runtime configurations and the containerd configuration that
// registers a CRI handler per profile.
func (in *instance) writeFiles() error {
	files := map[string]string{}
	extra := ""
	for _, c := range configs {
		if !c.hardened() {
			continue
		}
		files[filepath.Base(in.policyFile(c.profile, c.backend))] = policyYAML(c.profile, c.backend)
		switch c.engine {
		case engineCtr:
			lines := []string{fmt.Sprintf("PolicyPath = %q", in.policyFile(c.profile, c.backend))}
			if c.backend == "runsc" {
				lines = append(lines, "RunscFlags = "+tomlList(runscFlags))
			}
			files[filepath.Base(in.runtimeConfig(c))] = strings.Join(lines, "\n") + "\n"
		case engineCRI:
			extra += in.criRuntime(criHandler(c.profile), in.policyFile(c.profile, c.backend))
		}
	}
	files["config.toml"] = in.nodeConfig()
	files["containerd-extra.toml"] = extra
	for name, content := range files {
		// Policies must be root-owned and not group/other-writable.
		if err := os.WriteFile(in.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// policyYAML is a policy whose defaults apply profile on backend, enforced.
func policyYAML(profile, backend string) string {
	return fmt.Sprintf(`apiVersion: harden.dev/v1alpha1
kind: Policy
failurePolicy: deny
defaults:
  profile: %s
  mode: enforce
  backend: %s
`, profile, backend)
}

// nodeConfig is harden's node configuration (HARDEN_CONFIG): where the
// runtimes are, the decision log and state, and runc state inside the run.
func (in *instance) nodeConfig() string {
	lines := []string{
		fmt.Sprintf("PolicyPath = %q", in.policyFile("baseline", "runc")),
		fmt.Sprintf("DecisionLog = %q", in.path("decisions.log")),
		fmt.Sprintf("StateDir = %q", in.path("state")),
		fmt.Sprintf("Root = %q", filepath.Join(in.dir, "runc")),
		fmt.Sprintf("BinaryName = %q", env["HARDEN_RUNC"]),
	}
	if have("HARDEN_CRUN") {
		lines = append(lines, fmt.Sprintf("CrunPath = %q", env["HARDEN_CRUN"]))
	}
	if have("HARDEN_RUNSC") {
		lines = append(lines, fmt.Sprintf("RunscPath = %q", env["HARDEN_RUNSC"]))
	}
	return strings.Join(lines, "\n") + "\n"
}

// criRuntime registers a CRI runtime handler on harden's shim whose options
// table (CRI passes it to the shim as ConfigBody) names the policy.
func (in *instance) criRuntime(name, policy string) string {
	return fmt.Sprintf(`[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]q]
  runtime_type = "io.containerd.harden.v2"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]q.options]
    Root = "@DIR@/runc"
    PolicyPath = %[2]q
    DecisionLog = %[3]q
    StateDir = %[4]q
    BinaryName = %[5]q
    RuntimeHandler = %[1]q

`, name, policy, in.path("decisions.log"), in.path("state"), env["HARDEN_RUNC"])
}

func tomlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
