package spec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AllCapabilities lists the Linux capabilities in kernel bit order
// (include/uapi/linux/capability.h, up to CAP_CHECKPOINT_RESTORE = 40).
var AllCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// NormalizeCapability turns "net_raw", "NET_RAW" or "CAP_NET_RAW" into
// "CAP_NET_RAW" and rejects names the kernel does not know. "ALL" is kept as
// is for policies that mean every capability.
func NormalizeCapability(name string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" {
		return n, nil
	}
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	if !slices.Contains(AllCapabilities, n) {
		return "", fmt.Errorf("unknown capability %q", name)
	}
	return n, nil
}

// DropCapabilities keeps in all five capability sets (bounding, effective,
// permitted, inheritable and ambient) only the capabilities in allowed, which
// must be normalized names. It never adds one: a capability the spec lacks
// stays absent even if allowed lists it.
func DropCapabilities(rule string, allowed []string) Mutator {
	keep := make(map[string]bool, len(allowed))
	for _, c := range allowed {
		keep[c] = true
	}
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil || s.Process.Capabilities == nil {
			// No capabilities in the spec means the process gets none.
			return nil, nil
		}
		return dropCaps(rule, s.Process.Capabilities, keep), nil
	})
}

// dropCaps filters each set of c in place and reports what went.
func dropCaps(rule string, c *specs.LinuxCapabilities, keep map[string]bool) []Change {
	var changes []Change
	for _, set := range []struct {
		name string
		caps *[]string
	}{
		{"bounding", &c.Bounding},
		{"effective", &c.Effective},
		{"permitted", &c.Permitted},
		{"inheritable", &c.Inheritable},
		{"ambient", &c.Ambient},
	} {
		var removed []string
		kept := (*set.caps)[:0:0]
		for _, name := range *set.caps {
			if keep[strings.ToUpper(name)] {
				kept = append(kept, name)
			} else {
				removed = append(removed, name)
			}
		}
		if len(removed) == 0 {
			continue
		}
		*set.caps = kept
		changes = append(changes, Change{
			Rule: rule, Path: "process.capabilities." + set.name, Op: OpRemove,
			Before: removed, Reason: "capability not in the profile's allowed set",
		})
	}
	return changes
}
