// Package node is harden's configuration and bookkeeping on one node: the
// configuration file shared by the shim and harden-runc, the policy cache
// that reloads a changed policy file, the runtime binaries behind each
// backend, and the decision records (the decision log and the per-container
// state that `hardenctl ps` reads). It does not import containerd.
package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	toml "github.com/pelletier/go-toml/v2"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// Defaults for a node with no configuration.
const (
	DefaultConfigPath  = "/etc/harden/config.toml"
	DefaultDecisionLog = "/var/log/harden/decisions.log"
	DefaultStateDir    = "/run/harden"
)

// Config is harden's node configuration. The same keys are accepted in
// /etc/harden/config.toml, in a containerd runtime's options table (CRI
// copies it into runtimeoptions ConfigBody), and in a file that options'
// ConfigPath names. Key names follow containerd's runc options (BinaryName,
// SystemdCgroup, Root) so a runtime entry reads like the runc one.
type Config struct {
	// PolicyPath is the policy file (default /etc/harden/policy.yaml; when it
	// does not exist the embedded default policy applies).
	PolicyPath string `toml:"PolicyPath,omitempty"`
	// DecisionLog receives one JSON line per decision (default
	// /var/log/harden/decisions.log). "off" disables it.
	DecisionLog string `toml:"DecisionLog,omitempty"`
	// StateDir holds the per-container records `hardenctl ps` reads and the
	// runtime wrappers (default /run/harden).
	StateDir string `toml:"StateDir,omitempty"`
	// FailurePolicy, when set, decides what happens if the policy file
	// cannot be loaded: "deny" (default) or "allow" (start unhardened and
	// log it loudly). When it is not set, a loaded policy's own
	// failurePolicy governs failures to apply it; when it is, it overrides
	// that too (AllowUnhardened).
	FailurePolicy string `toml:"FailurePolicy,omitempty"`

	// RuntimeHandler names the CRI runtime handler this configuration
	// belongs to (set it in each handler's options table). containerd does
	// not write the handler into the spec, so this is how rules that match
	// runtimeHandlers see it; a workload cannot set it.
	RuntimeHandler string `toml:"RuntimeHandler,omitempty"`

	// BinaryName is the runc binary for the runc backend (default "runc"
	// on PATH).
	BinaryName string `toml:"BinaryName,omitempty"`
	// CrunPath is the crun binary (default "crun" on PATH).
	CrunPath string `toml:"CrunPath,omitempty"`
	// RunscPath is the runsc binary (default "runsc" on PATH).
	RunscPath string `toml:"RunscPath,omitempty"`
	// RunscFlags are global flags for runsc. Default: --oci-seccomp, the
	// only way gVisor applies the spec's seccomp filter.
	RunscFlags []string `toml:"RunscFlags,omitempty"`
	// KataShim is the Kata shim harden delegates to (default
	// containerd-shim-kata-v2 on PATH).
	KataShim string `toml:"KataShim,omitempty"`

	// The runc shim options harden passes through (containerd's
	// runc options.Options).
	Root          string `toml:"Root,omitempty"`
	SystemdCgroup bool   `toml:"SystemdCgroup,omitempty"`
	NoPivotRoot   bool   `toml:"NoPivotRoot,omitempty"`
	NoNewKeyring  bool   `toml:"NoNewKeyring,omitempty"`
	ShimCgroup    string `toml:"ShimCgroup,omitempty"`
	IoUid         uint32 `toml:"IoUid,omitempty"`
	IoGid         uint32 `toml:"IoGid,omitempty"`
	CriuImagePath string `toml:"CriuImagePath,omitempty"`
	CriuWorkPath  string `toml:"CriuWorkPath,omitempty"`
}

// ParseConfig decodes TOML strictly: an unknown key is an error that names
// it, because a misspelt PolicyPath would otherwise silently mean "default".
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return c, fmt.Errorf("unknown key: %s", strings.TrimSpace(sm.String()))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return c, fmt.Errorf("line %d column %d: %v", row, col, de)
		}
		return c, err
	}
	return c, c.validate()
}

// LoadConfig reads a configuration file; a missing file is an empty
// configuration (all defaults) only when missingOK is set.
func LoadConfig(path string, missingOK bool) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("read harden config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return c, fmt.Errorf("harden config %s: %w", path, err)
	}
	return c, nil
}

func (c Config) validate() error {
	switch c.FailurePolicy {
	case "", string(profiles.FailDeny), string(profiles.FailAllow):
	default:
		return fmt.Errorf("FailurePolicy: %q is not deny or allow", c.FailurePolicy)
	}
	for name, p := range map[string]string{"PolicyPath": c.PolicyPath, "StateDir": c.StateDir, "Root": c.Root} {
		if p != "" && !filepath.IsAbs(p) {
			return fmt.Errorf("%s: %q is not an absolute path", name, p)
		}
	}
	if c.DecisionLog != "" && c.DecisionLog != "off" && !filepath.IsAbs(c.DecisionLog) {
		return fmt.Errorf("DecisionLog: %q is not an absolute path (or \"off\")", c.DecisionLog)
	}
	return nil
}

// Merge returns c with every field o sets overriding it: runtime options
// over the node file.
func (c Config) Merge(o Config) Config {
	out := c
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&out.PolicyPath, o.PolicyPath)
	set(&out.DecisionLog, o.DecisionLog)
	set(&out.StateDir, o.StateDir)
	set(&out.FailurePolicy, o.FailurePolicy)
	set(&out.RuntimeHandler, o.RuntimeHandler)
	set(&out.BinaryName, o.BinaryName)
	set(&out.CrunPath, o.CrunPath)
	set(&out.RunscPath, o.RunscPath)
	set(&out.KataShim, o.KataShim)
	set(&out.Root, o.Root)
	set(&out.ShimCgroup, o.ShimCgroup)
	set(&out.CriuImagePath, o.CriuImagePath)
	set(&out.CriuWorkPath, o.CriuWorkPath)
	if o.RunscFlags != nil {
		out.RunscFlags = o.RunscFlags
	}
	out.SystemdCgroup = out.SystemdCgroup || o.SystemdCgroup
	out.NoPivotRoot = out.NoPivotRoot || o.NoPivotRoot
	out.NoNewKeyring = out.NoNewKeyring || o.NoNewKeyring
	if o.IoUid != 0 {
		out.IoUid = o.IoUid
	}
	if o.IoGid != 0 {
		out.IoGid = o.IoGid
	}
	return out
}

// Policy returns the policy path to use.
func (c Config) Policy() string {
	if c.PolicyPath != "" {
		return c.PolicyPath
	}
	return profiles.DefaultPolicyPath
}

// State returns the state directory.
func (c Config) State() string {
	if c.StateDir != "" {
		return c.StateDir
	}
	return DefaultStateDir
}

// Log returns the decision log path, or "" when disabled.
func (c Config) Log() string {
	switch c.DecisionLog {
	case "":
		return DefaultDecisionLog
	case "off":
		return ""
	}
	return c.DecisionLog
}

// RunscArgs returns runsc's global flags.
func (c Config) RunscArgs() []string {
	if c.RunscFlags != nil {
		return c.RunscFlags
	}
	return []string{"--oci-seccomp"}
}

// HostFor is Host for a container that pol hardens: when a profile of
// pol logs seccomp denials, it also asks runc whether it applies
// SECCOMP_FILTER_FLAG_LOG (runc 1.1 refuses to start a container with any
// seccomp flag; spec.Adapt then drops the flag and records it).
func (c Config) HostFor(b spec.Backend, pol *profiles.Compiled) spec.Host {
	h := c.Host(b)
	if b == spec.Runc && pol != nil && pol.LogsDenials() {
		if bin, err := c.RuntimeBinary(b); err == nil {
			f := probeFeatures(bin, b, c.State())
			h.NoSeccompFlagLog = f.SeccompFlagsKnown && !slices.Contains(f.SeccompFlags, specs.LinuxSeccompFlagLog)
			h.Runtime = filepath.Base(bin)
		}
	}
	return h
}

// Host returns what the node enforces for backend b: the LSMs the kernel
// has, for runsc whether --oci-seccomp is on, and the newest spec version
// the runtime binary accepts.
func (c Config) Host(b spec.Backend) spec.Host {
	h := profiles.DetectHost()
	// Only crun is asked: runc accepts what the engines of its generation
	// write. The answer is cached in StateDir (maxOCIVersion).
	if b == spec.Crun {
		if bin, err := c.RuntimeBinary(b); err == nil {
			h.MaxOCIVersion = maxOCIVersion(bin, b, c.State())
		}
	}
	if b == spec.Runsc {
		for _, f := range c.RunscArgs() {
			if f == "--oci-seccomp" || f == "--oci-seccomp=true" {
				h.RunscOCISeccomp = true
			}
		}
	}
	return h
}
