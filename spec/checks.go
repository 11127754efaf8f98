package spec

import (
	"fmt"
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
				// "a" (or no type) with no numbers is every device; a
				// wildcard major (-1, "*") with read or write access is every
				// block or character device. Docker's default "b *:* m" only
				// allows mknod and is fine.
				wildcard := d.Major == nil || *d.Major < 0
				rw := strings.ContainsAny(d.Access, "rw") || d.Access == ""
				if d.Allow && wildcard && rw {
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
			i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
			switch {
			case i < 0:
				vs = append(vs, Violation{
					Rule: rule, Field: "linux.namespaces", Value: string(t),
					Reason: "the container would share the host's " + string(t) + " namespace",
				})
			case isHostNamespacePath(s.Linux.Namespaces[i].Path):
				vs = append(vs, Violation{
					Rule: rule, Field: "linux.namespaces[" + itoa(i) + "].path", Value: s.Linux.Namespaces[i].Path,
					Reason: "joins the host's " + string(t) + " namespace (that of host pid 1)",
				})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// isHostNamespacePath recognises a namespace path that names the host's own
// namespace: that of pid 1 or of the runtime itself. Pod sandboxes are
// joined through /proc/<sandbox pid>/ns/* or /var/run/netns/*, which pass.
func isHostNamespacePath(p string) bool {
	p = path.Clean(p)
	return strings.HasPrefix(p, "/proc/1/ns/") || strings.HasPrefix(p, "/proc/self/ns/") || strings.HasPrefix(p, "/proc/thread-self/ns/")
}

// HostPath is a host path that must not be bind-mounted into a container.
// With Subtree set, every path below it is denied too.
type HostPath struct {
	Path    string `json:"path" yaml:"path"`
	Subtree bool   `json:"subtree,omitempty" yaml:"subtree,omitempty"`
}

// DenyHostMounts refuses bind mounts whose source is one of denied, or a
// directory above one (mounting /usr/local exposes a denied /usr/local/bin
// as well). Sources are compared after path.Clean and with /var/run read as
// /run (its usual symlink), without touching the filesystem: the mutator
// stays pure, and a symlink planted on the host to dodge the check needs
// host root already.
//
// allowed lists exceptions: a source matching one of them passes even when
// a denied entry covers it (an operator's explicit choice, e.g. /var/log for
// a log shipper).
func DenyHostMounts(rule string, denied, allowed []HostPath) Mutator {
	canon := canonicalHostPaths(denied)
	exempt := canonicalHostPaths(allowed)
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		var vs Violations
		for i, m := range s.Mounts {
			if !isBind(m) {
				continue
			}
			src := canonicalHostPath(m.Source)
			if slices.ContainsFunc(exempt, func(a HostPath) bool { return a.covers(src) }) {
				continue
			}
			reason := ""
			if j := slices.IndexFunc(canon, func(d HostPath) bool { return d.covers(src) }); j >= 0 {
				reason = "bind mount of host path " + denied[j].Path + " is not allowed"
			} else if j := slices.IndexFunc(canon, func(d HostPath) bool { return src == "/" || isBelow(d.Path, src) }); j >= 0 {
				reason = "bind mount of host path " + m.Source + " would expose " + denied[j].Path + ", which is not allowed"
			}
			if reason != "" {
				vs = append(vs, Violation{
					Rule: rule, Field: "mounts[" + itoa(i) + "].source", Value: m.Source,
					Reason: reason + " (mounted at " + m.Destination + ")",
				})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}

// isBelow reports whether the clean path p is strictly below dir (not "/"),
// without building dir+"/": this runs for every bind mount against every
// denied path.
func isBelow(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// covers reports whether the canonical host path src is h or, for a
// subtree, below it.
func (h HostPath) covers(src string) bool {
	return src == h.Path || (h.Subtree && (h.Path == "/" || isBelow(src, h.Path)))
}

func canonicalHostPaths(hs []HostPath) []HostPath {
	out := make([]HostPath, len(hs))
	for i, h := range hs {
		out[i] = HostPath{Path: canonicalHostPath(h.Path), Subtree: h.Subtree}
	}
	return out
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" || m.Type == "rbind" {
		return true
	}
	return slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func canonicalHostPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	p = path.Clean(p) // no allocation when p is already clean
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
		var denied []string
		for _, d := range s.Linux.Devices {
			if !slices.Contains(allowed, d.Path) {
				denied = append(denied, d.Path)
			}
		}
		if len(denied) == 0 {
			return nil, nil
		}
		// One violation for all devices: a privileged spec lists every
		// host device, and a hundred lines would bury the reason.
		shown := denied
		more := ""
		if len(shown) > 5 {
			shown, more = shown[:5], fmt.Sprintf(" and %d more", len(denied)-5)
		}
		vs := Violations{{
			Rule: rule, Field: "linux.devices", Value: denied,
			Reason: "host devices are not in the profile's allowed devices: " + strings.Join(shown, ", ") + more,
		}}
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

// PodSecuritySELinuxTypes are the SELinux types Kubernetes Pod Security
// "baseline" allows a container to request (check_seLinuxOptions.go).
var PodSecuritySELinuxTypes = []string{"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// DenyUnconfinedLSM refuses a spec that asks to run without LSM
// confinement: AppArmor "unconfined", or an SELinux label whose type is not
// in allowedTypes (spc_t, the "super privileged container" type, and
// unconfined_t are how engines spell privileged). Pod Security baseline
// forbids the same (it also forbids custom users and roles, which this does
// not check yet).
func DenyUnconfinedLSM(rule string, allowedTypes []string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil {
			return nil, nil
		}
		var vs Violations
		if s.Process.ApparmorProfile == "unconfined" {
			vs = append(vs, Violation{Rule: rule, Field: "process.apparmorProfile", Value: "unconfined", Reason: "containers must not run without AppArmor confinement"})
		}
		if l := s.Process.SelinuxLabel; l != "" {
			parts := strings.SplitN(l, ":", 4)
			if len(parts) < 3 || !slices.Contains(allowedTypes, parts[2]) {
				vs = append(vs, Violation{Rule: rule, Field: "process.selinuxLabel", Value: l, Reason: "SELinux type is not one of " + strings.Join(allowedTypes, ", ")})
			}
		}
		if len(vs) == 0 {
			return nil, nil
		}
		return refusals(vs), vs
	})
}
