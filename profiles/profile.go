package profiles

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/spec"
)

// Profile is a set of protections. Built-in profiles set every field; a user
// profile names the one it extends and sets only what it changes. An unset
// field (nil pointer or absent list) inherits; an empty list ([]) sets the
// list to empty. docs/policy.md documents each field and the attack it stops.
type Profile struct {
	Name        string `yaml:"name"`
	Extends     string `yaml:"extends,omitempty"`
	Description string `yaml:"description,omitempty"`

	// AllowPrivileged lets privileged containers (all devices, no masked
	// paths) through. Off in every built-in profile.
	AllowPrivileged *bool `yaml:"allowPrivileged,omitempty"`
	// AllowHostNamespaces lists host namespaces a container may share:
	// pid, ipc, network. The mount namespace is always private.
	AllowHostNamespaces []string `yaml:"allowHostNamespaces,omitempty"`
	// Capabilities is the ceiling: capabilities outside Allow are removed
	// from all five sets. None is ever added.
	Capabilities *Capabilities `yaml:"capabilities,omitempty"`
	// NoNewPrivileges sets process.noNewPrivileges.
	NoNewPrivileges *bool `yaml:"noNewPrivileges,omitempty"`
	// RunAsNonRoot refuses containers whose process runs as uid 0.
	RunAsNonRoot *bool `yaml:"runAsNonRoot,omitempty"`
	// ReadOnlyRootfs makes the root filesystem read-only.
	ReadOnlyRootfs *bool `yaml:"readOnlyRootfs,omitempty"`
	// ScratchDirs get a noexec tmpfs each (with ReadOnlyRootfs).
	ScratchDirs []string `yaml:"scratchDirs,omitempty"`
	// ScratchSize bounds each scratch tmpfs ("64m").
	ScratchSize string `yaml:"scratchSize,omitempty"`
	// MaskedPaths are masked in addition to the standard list.
	MaskedPaths []string `yaml:"maskedPaths,omitempty"`
	// ReadonlyPaths are made read-only in addition to the standard list.
	ReadonlyPaths []string `yaml:"readonlyPaths,omitempty"`
	// DenyHostPaths are host paths that must not be bind-mounted. A user
	// profile adds to its parent's list; AllowHostPaths carves exceptions.
	DenyHostPaths []spec.HostPath `yaml:"denyHostPaths,omitempty"`
	// AllowHostPaths are exact host paths (or subtrees) exempt from
	// DenyHostPaths, e.g. /var/log for a log shipper.
	AllowHostPaths []spec.HostPath `yaml:"allowHostPaths,omitempty"`
	// AllowUnconfinedLSM lets through specs that ask for AppArmor
	// "unconfined" or an SELinux type outside the Pod Security set.
	AllowUnconfinedLSM *bool `yaml:"allowUnconfinedLSM,omitempty"`
	// AllowSysctls lists the sysctls a container may set; "*" suffix for prefixes.
	AllowSysctls []string `yaml:"allowSysctls,omitempty"`
	// AllowDevices lists container device paths (linux.devices) allowed.
	AllowDevices []string `yaml:"allowDevices,omitempty"`
	// Seccomp selects the syscall filter.
	Seccomp *Seccomp `yaml:"seccomp,omitempty"`
	// AppArmor is the AppArmor profile name ("" leaves the spec's).
	AppArmor *string `yaml:"apparmor,omitempty"`
	// SELinux sets parts of the process label.
	SELinux *spec.SELinuxLabel `yaml:"selinux,omitempty"`
	// Resources are cgroup ceilings.
	Resources *Resources `yaml:"resources,omitempty"`
}

// Capabilities is a capability ceiling.
type Capabilities struct {
	// Allow lists the capabilities a container may keep ("NET_BIND_SERVICE"
	// or "CAP_NET_BIND_SERVICE"; "ALL" keeps whatever the engine granted).
	Allow []string `yaml:"allow"`
}

// Resources are cgroup ceilings. Values use Kubernetes-style quantities.
type Resources struct {
	Memory      string  `yaml:"memory,omitempty"`      // "512Mi", "2Gi", bytes
	CPU         string  `yaml:"cpu,omitempty"`         // cores: "2", "500m"
	CPUShares   *uint64 `yaml:"cpuShares,omitempty"`   // ceiling on cpu.shares
	Pids        *int64  `yaml:"pids,omitempty"`        // max processes and threads
	BlkioWeight *uint16 `yaml:"blkioWeight,omitempty"` // 10..1000
	// OnExceed is lower (default) or refuse.
	OnExceed string `yaml:"onExceed,omitempty"`
}

// merge overlays child on parent field by field: set fields of child win;
// pointer-to-struct fields merge recursively.
//
// Lists that only tighten (denied host paths, extra masked and read-only
// paths, seccomp denies) add to the parent's instead: a child profile that
// names one more denied path must not silently drop the parent's. Seccomp
// allows add up too; an allow wins over a deny.
func merge(parent, child Profile) Profile {
	out := parent
	mergeValue(reflect.ValueOf(&out).Elem(), reflect.ValueOf(child))
	out.Name, out.Extends, out.Description = child.Name, child.Extends, child.Description
	out.DenyHostPaths = union(parent.DenyHostPaths, child.DenyHostPaths)
	out.AllowHostPaths = union(parent.AllowHostPaths, child.AllowHostPaths)
	out.MaskedPaths = union(parent.MaskedPaths, child.MaskedPaths)
	out.ReadonlyPaths = union(parent.ReadonlyPaths, child.ReadonlyPaths)
	if parent.Seccomp != nil && child.Seccomp != nil && out.Seccomp != nil {
		sc := *out.Seccomp
		sc.Deny = union(parent.Seccomp.Deny, child.Seccomp.Deny)
		sc.Allow = union(parent.Seccomp.Allow, child.Seccomp.Allow)
		out.Seccomp = &sc
	}
	return out
}

// union appends the members of b that a lacks; nil when both are nil, so an
// absent list stays absent.
func union[T comparable](a, b []T) []T {
	if a == nil && b == nil {
		return nil
	}
	out := append(make([]T, 0, len(a)+len(b)), a...)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func mergeValue(dst, src reflect.Value) {
	for i := 0; i < src.NumField(); i++ {
		sf, df := src.Field(i), dst.Field(i)
		switch sf.Kind() {
		case reflect.Pointer:
			if sf.IsNil() {
				continue
			}
			if sf.Elem().Kind() == reflect.Struct && !df.IsNil() {
				merged := reflect.New(sf.Elem().Type())
				merged.Elem().Set(df.Elem())
				mergeValue(merged.Elem(), sf.Elem())
				df.Set(merged)
				continue
			}
			df.Set(sf)
		case reflect.Slice, reflect.Map:
			if !sf.IsNil() {
				df.Set(sf)
			}
		case reflect.String:
			if sf.String() != "" {
				df.Set(sf)
			}
		default:
			if !sf.IsZero() {
				df.Set(sf)
			}
		}
	}
}

// splitQuantity splits a memory quantity into its digits and its unit's
// multiplier, as `^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T|k)?$` would (written out
// for the reason validAppArmorName gives); ok is false if s is not one.
func splitQuantity(s string) (digits string, mult int64, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", 0, false
	}
	switch s[i:] {
	case "":
		mult = 1
	case "k", "K":
		mult = 1000
	case "M":
		mult = 1000 * 1000
	case "G":
		mult = 1000 * 1000 * 1000
	case "T":
		mult = 1000 * 1000 * 1000 * 1000
	case "Ki":
		mult = 1 << 10
	case "Mi":
		mult = 1 << 20
	case "Gi":
		mult = 1 << 30
	case "Ti":
		mult = 1 << 40
	default:
		return "", 0, false
	}
	return s[:i], mult, true
}

// ParseBytes reads a memory quantity: "536870912", "512Mi", "2Gi", "1G".
func ParseBytes(s string) (int64, error) {
	digits, mult, ok := splitQuantity(strings.TrimSpace(s))
	if !ok {
		return 0, fmt.Errorf("invalid quantity %q (want e.g. 512Mi, 2Gi or a byte count)", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid quantity %q: %w", s, err)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid quantity %q: too large", s)
	}
	if n*mult <= 0 {
		return 0, fmt.Errorf("invalid quantity %q: must be positive", s)
	}
	return n * mult, nil
}

// ParseCPU reads a CPU quantity in cores ("2", "0.5", "500m") as millicores.
func ParseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "m") {
		n, err := strconv.ParseInt(strings.TrimSuffix(s, "m"), 10, 64)
		if err != nil || n <= 0 || n > 1<<40 {
			return 0, fmt.Errorf("invalid cpu %q (want e.g. 2, 0.5 or 500m)", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f > 1<<30 {
		return 0, fmt.Errorf("invalid cpu %q (want e.g. 2, 0.5 or 500m)", s)
	}
	if m := int64(f * 1000); m > 0 {
		return m, nil
	}
	return 0, fmt.Errorf("invalid cpu %q: below 1m", s)
}
