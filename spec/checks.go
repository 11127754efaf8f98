package spec

import (
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DenyPrivileged refuses what engines produce for "privileged" containers.
// The OCI spec has no privileged flag; Docker --privileged and CRI
// privileged: true both grant access to every host device through the device
// cgroup ("a" or an empty type with no major/minor and rwm access) and
// clear maskedPaths and readonlyPaths. Either sign alone is refused.
func DenyPrivileged(rule string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Linux == nil {
			return nil, nil
		}
		var vs Violations
		if r := s.Linux.Resources; r != nil {
			for i, d := range r.Devices {
				if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil {
					vs = append(vs, Violation{
						Rule: rule, Field: "linux.resources.devices[" + itoa(i) + "]", Value: d.Access,
						Reason: "privileged containers are not allowed: the device cgroup grants every host device",
					})
				}
			}
		}
		if s.Process != nil && s.Process.Capabilities != nil && slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") &&
			len(s.Linux.MaskedPaths) == 0 && len(s.Linux.ReadonlyPaths) == 0 {
			vs = append(vs, Violation{
				Rule: rule, Field: "process.capabilities.bounding", Value: "CAP_SYS_ADMIN",
				Reason: "privileged containers are not allowed: CAP_SYS_ADMIN with no masked or read-only paths",
			})
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// HostNamespaces are the namespaces whose absence from linux.namespaces means
// the container shares the host's (Pod Security baseline: hostPID, hostIPC,
// hostNetwork). The mount namespace is always required.
var HostNamespaces = []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.NetworkNamespace, specs.MountNamespace}

// DenyHostNamespaces refuses a spec that does not create or join a private
// namespace of each type in required other than those in allowed. A namespace
// joined by path (a pod's sandbox) counts as private.
func DenyHostNamespaces(rule string, required []specs.LinuxNamespaceType) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Linux == nil {
			// No linux section: the runtime would share every namespace.
			if len(required) == 0 {
				return nil, nil
			}
			return nil, refuse(rule, "linux.namespaces", nil, "no linux section: the container would share the host's namespaces")
		}
		var vs Violations
		for _, t := range required {
			if !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t }) {
				vs = append(vs, Violation{
					Rule: rule, Field: "linux.namespaces", Value: string(t),
					Reason: "the container would share the host's " + string(t) + " namespace",
				})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// HostPath is a host path that must not be bind-mounted into a container.
// With Subtree set, every path below it is denied too.
type HostPath struct {
	Path    string `json:"path" yaml:"path"`
	Subtree bool   `json:"subtree,omitempty" yaml:"subtree,omitempty"`
}

// DenyHostMounts refuses bind mounts whose source is one of denied. Sources
// are compared after path.Clean and with /var/run read as /run (its usual
// symlink), without touching the filesystem: the mutator stays pure, and a
// symlink planted on the host to dodge the check needs host root already.
func DenyHostMounts(rule string, denied []HostPath) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		var vs Violations
		for i, m := range s.Mounts {
			if !isBind(m) {
				continue
			}
			src := canonicalHostPath(m.Source)
			for _, d := range denied {
				dp := canonicalHostPath(d.Path)
				if src == dp || (d.Subtree && (dp == "/" || strings.HasPrefix(src, dp+"/"))) {
					vs = append(vs, Violation{
						Rule: rule, Field: "mounts[" + itoa(i) + "].source", Value: m.Source,
						Reason: "bind mount of host path " + d.Path + " is not allowed (mounted at " + m.Destination + ")",
					})
					break
				}
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	return slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func canonicalHostPath(p string) string {
	p = path.Clean("/" + p)
	if p == "/var/run" || strings.HasPrefix(p, "/var/run/") {
		p = strings.TrimPrefix(p, "/var")
	}
	return p
}

// RestrictSysctls refuses any linux.sysctl key that is not in allowed.
// Entries ending in "*" allow a prefix ("net.ipv4.ping_group_range" or
// "net.ipv4.ip_local_*").
func RestrictSysctls(rule string, allowed []string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Linux == nil {
			return nil, nil
		}
		var vs Violations
		for _, k := range sortedKeys(s.Linux.Sysctl) {
			if !matchAny(allowed, k) {
				vs = append(vs, Violation{
					Rule: rule, Field: "linux.sysctl." + k, Value: s.Linux.Sysctl[k],
					Reason: "sysctl is not in the profile's safe set",
				})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// RestrictDevices refuses host devices in linux.devices other than allowed
// (container paths such as /dev/fuse). Runtimes create the standard devices
// (/dev/null, zero, full, random, urandom, tty, console, ptmx) themselves, so
// ordinary specs list none here.
func RestrictDevices(rule string, allowed []string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Linux == nil {
			return nil, nil
		}
		var vs Violations
		for i, d := range s.Linux.Devices {
			if !slices.Contains(allowed, d.Path) {
				vs = append(vs, Violation{
					Rule: rule, Field: "linux.devices[" + itoa(i) + "]", Value: d.Path,
					Reason: "host device is not in the profile's allowed devices",
				})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// refusals turns violations into changes, so the decision record lists the
// refusals next to the edits.
func refusals(vs Violations) []Change {
	cs := make([]Change, len(vs))
	for i, v := range vs {
		cs[i] = Change{Rule: v.Rule, Path: v.Field, Op: OpRefuse, After: v.Value, Reason: v.Reason}
	}
	return cs
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s || (strings.HasSuffix(p, "*") && strings.HasPrefix(s, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}
