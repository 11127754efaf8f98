package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Backend is the low-level runtime that runs the container.
type Backend string

// The backends harden delegates to.
const (
	Runc  Backend = "runc"
	Crun  Backend = "crun"
	Runsc Backend = "runsc" // gVisor
	Kata  Backend = "kata"
)

// ParseBackend checks a backend name from a policy, flag or option.
func ParseBackend(s string) (Backend, error) {
	switch Backend(s) {
	case "":
		return Runc, nil
	case Runc, Crun, Runsc, Kata:
		return Backend(s), nil
	}
	return "", fmt.Errorf("unknown backend %q (want runc, crun, runsc or kata)", s)
}

// Control names a protection a decision record reports on.
type Control string

// The controls harden applies; each decision says which ones the backend
// really enforces.
const (
	CtlCapabilities    Control = "capabilities"
	CtlNoNewPrivileges Control = "noNewPrivileges"
	CtlSeccomp         Control = "seccomp"
	CtlAppArmor        Control = "apparmor"
	CtlSELinux         Control = "selinux"
	CtlMaskedPaths     Control = "maskedPaths"
	CtlReadonlyPaths   Control = "readonlyPaths"
	CtlReadonlyRootfs  Control = "readonlyRootfs"
	CtlNamespaces      Control = "namespaces"
	CtlCgroups         Control = "cgroups"
)

// AllControls lists the controls in the order records print them.
var AllControls = []Control{
	CtlCapabilities, CtlNoNewPrivileges, CtlSeccomp, CtlAppArmor, CtlSELinux,
	CtlMaskedPaths, CtlReadonlyPaths, CtlReadonlyRootfs, CtlNamespaces, CtlCgroups,
}

// Enforcement says whether one control is enforced, and why not.
type Enforcement struct {
	Control  Control `json:"control"`
	Enforced bool    `json:"enforced"`
	Note     string  `json:"note,omitempty"`
}

// Host is what the node provides, as the entry point found it. Adapt does no
// I/O: the caller probes the host once and passes the answer.
type Host struct {
	AppArmor bool `json:"apparmor"` // /sys/module/apparmor/parameters/enabled is Y
	SELinux  bool `json:"selinux"`  // selinuxfs is mounted and enabled
	// RunscOCISeccomp is true when runsc runs with --oci-seccomp, the only
	// way gVisor applies the spec's seccomp filter.
	RunscOCISeccomp bool `json:"runscOCISeccomp,omitempty"`
	// MaxOCIVersion is the newest spec version the runtime binary accepts
	// (`runc features` ociVersionMax); "" means no limit is known.
	MaxOCIVersion string `json:"maxOCIVersion,omitempty"`
	// NoSeccompFlagLog is true when the runtime is known not to apply
	// SECCOMP_FILTER_FLAG_LOG: its `features` answer does not list it in
	// linux.seccomp.supportedFlags, or has no such field, as runc 1.1's,
	// which refuses any seccomp flag. False when nothing is known. (Host is
	// a map key: its fields stay comparable.)
	NoSeccompFlagLog bool `json:"noSeccompFlagLog,omitempty"`
	// Runtime names the runtime binary for notes.
	Runtime string `json:"runtime,omitempty"`
}

// Adapt fits a hardened spec to what backend b accepts and reports what it
// enforces. It removes only fields the backend would reject (runsc refuses
// process.selinuxLabel) and says so in the changes.
func Adapt(s *specs.Spec, b Backend, h Host) ([]Change, []Enforcement) {
	var changes []Change
	// crun 1.8 (Debian 12) refuses any ociVersion above 1.1 with "unknown
	// version specified", though it runs the spec containerd 2.4 and
	// Docker 29 write (1.3.0) fine: the fields it does not know are ones
	// they do not set. Lowering the version string is the only change.
	if h.MaxOCIVersion != "" && s.Version != "" && versionLess(h.MaxOCIVersion, s.Version) {
		changes = append(changes, Change{
			Rule: "backend.oci-version", Path: "ociVersion", Op: OpSet, Before: s.Version, After: h.MaxOCIVersion,
			Reason: string(b) + " accepts spec versions up to " + h.MaxOCIVersion,
		})
		s.Version = h.MaxOCIVersion
	}
	enf := make([]Enforcement, 0, len(AllControls))
	add := func(c Control, ok bool, note string) {
		enf = append(enf, Enforcement{Control: c, Enforced: ok, Note: note})
	}
	lsm := func(on bool, name string) (bool, string) {
		if on {
			return true, ""
		}
		return false, "the host kernel has no " + name
	}
	switch b {
	case Runsc:
		if s.Process != nil && s.Process.SelinuxLabel != "" {
			changes = append(changes, Change{
				Rule: "backend.runsc", Path: "process.selinuxLabel", Op: OpRemove, Before: s.Process.SelinuxLabel,
				Reason: "runsc rejects SELinux labels; gVisor's user-space kernel isolates the container instead",
			})
			s.Process.SelinuxLabel = ""
		}
		if c, ok := dropLogFlag(s, b, "runsc ignores seccomp flags: gVisor's Sentry runs the filter and logs no denial to the host's audit log"); ok {
			changes = append(changes, c)
		}
		add(CtlCapabilities, true, "enforced by gVisor's kernel (Sentry)")
		add(CtlNoNewPrivileges, true, "")
		if h.RunscOCISeccomp {
			add(CtlSeccomp, true, "runsc --oci-seccomp: the spec's filter runs inside the sandbox; denials are not logged to the host")
		} else {
			add(CtlSeccomp, false, "runsc ignores the spec's seccomp without --oci-seccomp; syscalls are served by gVisor's Sentry under its own host filter")
		}
		add(CtlAppArmor, false, "runsc does not apply AppArmor profiles")
		add(CtlSELinux, false, "runsc rejects SELinux labels")
		add(CtlMaskedPaths, true, "")
		add(CtlReadonlyPaths, true, "")
		add(CtlReadonlyRootfs, true, "")
		add(CtlNamespaces, true, "sandboxed by gVisor")
		add(CtlCgroups, true, "pids limits also count gVisor's own sandbox threads")
	case Kata:
		add(CtlCapabilities, true, "enforced by the guest agent")
		add(CtlNoNewPrivileges, true, "")
		add(CtlSeccomp, false, "Kata disables guest seccomp by default (disable_guest_seccomp = true); where enabled, the guest kernel, not this host, logs denials")
		add(CtlAppArmor, false, "Kata's guest does not apply AppArmor profiles")
		add(CtlSELinux, false, "Kata disables guest SELinux by default (disable_guest_selinux = true)")
		add(CtlMaskedPaths, true, "in the guest")
		add(CtlReadonlyPaths, true, "in the guest")
		add(CtlReadonlyRootfs, true, "")
		add(CtlNamespaces, true, "in the guest VM")
		add(CtlCgroups, true, "sized on the VM and in the guest")
	default: // runc, crun
		for _, c := range []Control{CtlCapabilities, CtlNoNewPrivileges} {
			add(c, true, "")
		}
		// logDenials asks for SECCOMP_FILTER_FLAG_LOG; a runtime that
		// applies no seccomp flags (runc before 1.2) refuses to start the
		// container over it. The filter is the protection and stays; only
		// the logging of its denials goes, and the record says so.
		unlogged := ""
		if h.NoSeccompFlagLog {
			rt := h.Runtime
			if rt == "" {
				rt = string(b)
			}
			if c, ok := dropLogFlag(s, b, rt+" does not apply seccomp flags (runc does from 1.2): the filter is enforced, its denials are not logged"); ok {
				changes = append(changes, c)
				unlogged = "denials are not logged: " + rt + " does not apply SECCOMP_FILTER_FLAG_LOG"
			}
		}
		if l := s.Linux; l != nil && l.Seccomp != nil && l.Seccomp.DefaultAction == specs.ActLog {
			// Installed, but it denies nothing it does not list.
			add(CtlSeccomp, false, "complain mode: the filter logs syscalls (SCMP_ACT_LOG) instead of denying them")
		} else {
			add(CtlSeccomp, true, unlogged)
		}
		ok, note := lsm(h.AppArmor, "AppArmor")
		add(CtlAppArmor, ok, note)
		ok, note = lsm(h.SELinux, "SELinux")
		add(CtlSELinux, ok, note)
		for _, c := range []Control{CtlMaskedPaths, CtlReadonlyPaths, CtlReadonlyRootfs, CtlNamespaces, CtlCgroups} {
			add(c, true, "")
		}
	}
	return changes, enf
}

// dropLogFlag removes SECCOMP_FILTER_FLAG_LOG from s's filter, for a
// backend that would not apply it, and returns the change that says why;
// ok is false when the filter has no such flag.
func dropLogFlag(s *specs.Spec, b Backend, reason string) (c Change, ok bool) {
	l := s.Linux
	if l == nil || l.Seccomp == nil || !slices.Contains(l.Seccomp.Flags, specs.LinuxSeccompFlagLog) {
		return Change{}, false
	}
	l.Seccomp.Flags = slices.DeleteFunc(slices.Clone(l.Seccomp.Flags), func(f specs.LinuxSeccompFlag) bool { return f == specs.LinuxSeccompFlagLog })
	if len(l.Seccomp.Flags) == 0 {
		l.Seccomp.Flags = nil
	}
	return Change{
		Rule: "backend." + string(b), Path: "linux.seccomp.flags", Op: OpRemove, Before: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		Reason: reason,
	}, true
}

// versionLess compares "major.minor.patch[-suffix]" spec versions
// numerically; a part that is not a number counts as 0.
func versionLess(a, b string) bool {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func versionParts(v string) [3]int {
	var out [3]int
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	for i, p := range strings.SplitN(v, ".", 3) {
		n, _ := strconv.Atoi(p)
		out[i] = n
	}
	return out
}
