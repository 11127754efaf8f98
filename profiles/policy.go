// Package profiles is harden's policy: the versioned policy file, its strict
// decoding and validation, the built-in profiles, rule matching, and the
// translation of a profile into the ordered spec mutators that apply it.
package profiles

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/harden-dev/harden/spec"
)

// Policy file identity. The version is part of the contract: a future
// incompatible format gets a new apiVersion, and this one keeps loading.
const (
	APIVersion = "harden.dev/v1alpha1"
	Kind       = "Policy"
)

// SelectAnnotation is the OCI annotation through which a workload asks for
// one of the profiles its rule lists as selectable.
const SelectAnnotation = "harden.dev/profile"

// DefaultPolicyPath is where the shim and harden-runc look when no option
// names a policy file.
const DefaultPolicyPath = "/etc/harden/policy.yaml"

// FailurePolicy says what happens to a container when the policy cannot be
// loaded or applied.
type FailurePolicy string

// The two failure policies.
const (
	FailDeny  FailurePolicy = "deny"  // the container does not start (the default)
	FailAllow FailurePolicy = "allow" // the container starts unhardened, and that is logged loudly
)

// Policy is the policy file.
type Policy struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// FailurePolicy is deny (default) or allow.
	FailurePolicy FailurePolicy `yaml:"failurePolicy,omitempty"`
	// Defaults apply to containers no rule matches.
	Defaults Defaults `yaml:"defaults,omitempty"`
	// Profiles are user profiles; each extends a built-in or another user
	// profile and changes single fields.
	Profiles []Profile `yaml:"profiles,omitempty"`
	// Rules are matched in order; the first that matches decides.
	Rules []Rule `yaml:"rules,omitempty"`
}

// Defaults is the decision for containers that match no rule.
type Defaults struct {
	Profile    string   `yaml:"profile,omitempty"`
	Mode       string   `yaml:"mode,omitempty"`
	Backend    string   `yaml:"backend,omitempty"`
	Selectable []string `yaml:"selectable,omitempty"`
}

// Rule maps the containers it matches to a profile, a mode and a backend.
type Rule struct {
	Name    string `yaml:"name"`
	Match   Match  `yaml:"match,omitempty"`
	Profile string `yaml:"profile"`
	// Mode is enforce (default) or audit.
	Mode string `yaml:"mode,omitempty"`
	// Backend is runc (default), crun, runsc or kata.
	Backend string `yaml:"backend,omitempty"`
	// Selectable lists the profiles a workload may pick with the
	// harden.dev/profile annotation. A selected profile is applied on top
	// of the rule's profile, so it can only tighten it.
	Selectable []string `yaml:"selectable,omitempty"`
}

// Match selects containers. Every non-empty field must match; a list field
// matches when any of its entries does. Strings are shell globs (path.Match).
type Match struct {
	Images           []string          `yaml:"images,omitempty"`
	Namespaces       []string          `yaml:"namespaces,omitempty"` // Kubernetes namespaces
	Pods             []string          `yaml:"pods,omitempty"`
	Containers       []string          `yaml:"containers,omitempty"`
	ContainerType    string            `yaml:"containerType,omitempty"` // sandbox | container
	Annotations      map[string]string `yaml:"annotations,omitempty"`
	EngineNamespaces []string          `yaml:"engineNamespaces,omitempty"` // containerd namespaces: k8s.io, moby, default
	RuntimeHandlers  []string          `yaml:"runtimeHandlers,omitempty"`
	Engines          []string          `yaml:"engines,omitempty"` // containerd-cri, cri-o, docker, podman, unknown
}

//go:embed default-policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the embedded default policy: baseline for every
// container, enforced on runc, failing closed.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// MaxPolicySize bounds a policy file; real ones are a few KiB.
const MaxPolicySize = 1 << 20

// Parse decodes and validates a policy. Unknown fields, a wrong apiVersion
// or kind, bad names and profiles that do not compile are errors that name
// the line (for decoding) or the field.
func Parse(data []byte) (*Compiled, error) {
	if len(data) > MaxPolicySize {
		return nil, fmt.Errorf("policy is %d bytes, larger than the %d byte limit", len(data), MaxPolicySize)
	}
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("policy is empty")
		}
		return nil, fmt.Errorf("decode policy: %s", yamlError(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errors.New("decode policy: more than one YAML document")
	}
	return p.Compile()
}

// yamlError drops yaml.v3's "yaml: unmarshal errors:\n" prefix so the
// message reads "line 12: field foo not found in type profiles.Rule".
func yamlError(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	s = strings.ReplaceAll(s, "\n  ", "; ")
	return strings.TrimSpace(strings.TrimPrefix(s, "yaml: "))
}

// Load reads and compiles a policy file. The file must be owned by root and
// not writable by others: whoever can write it decides every container's
// protections.
func Load(path string) (*Compiled, error) {
	data, err := readTrustedFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", path, err)
	}
	c.Source = path
	return c, nil
}

// LoadDefault compiles the embedded default policy.
func LoadDefault() (*Compiled, error) {
	c, err := Parse(defaultPolicyYAML)
	if err != nil {
		return nil, fmt.Errorf("embedded default policy: %w", err)
	}
	c.Source = "(embedded default)"
	return c, nil
}

// LoadOrDefault loads path if it exists, else the embedded default. A file
// that exists but does not load is an error, never a silent fallback.
func LoadOrDefault(path string) (*Compiled, error) {
	if path == "" {
		path = DefaultPolicyPath
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return LoadDefault()
	}
	return Load(path)
}

// Decision is what the policy decided for one container.
type Decision struct {
	Rule     string       `json:"rule"`
	Profile  string       `json:"profile"`
	Selected string       `json:"selected,omitempty"` // profile picked by annotation
	Mode     spec.Mode    `json:"mode"`
	Backend  spec.Backend `json:"backend"`
	// Why explains the match for `hardenctl explain`.
	Why []string `json:"why,omitempty"`
}
