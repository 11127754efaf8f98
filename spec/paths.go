package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultMaskedPaths are the /proc and /sys paths containerd and Docker mask
// by default (containerd pkg/oci/spec.go, moby oci/defaults.go): kernel
// memory, keyrings, timers and firmware interfaces that leak host data or
// allow side channels.
var DefaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
}

// DefaultReadonlyPaths are the /proc paths that engines mount read-only by
// default: kernel tunables and the sysrq trigger.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// MaskPaths adds every path in paths to linux.maskedPaths that is not there
// yet. It never removes one.
func MaskPaths(rule string, paths []string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		l := ensureLinux(s)
		added := addMissing(&l.MaskedPaths, paths)
		if len(added) == 0 {
			return nil, nil
		}
		return []Change{{Rule: rule, Path: "linux.maskedPaths", Op: OpAdd, After: added, Reason: "hide host information from the container"}}, nil
	})
}

// ReadonlyPaths adds every path in paths to linux.readonlyPaths that is not
// there yet. It never removes one.
func ReadonlyPaths(rule string, paths []string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		l := ensureLinux(s)
		added := addMissing(&l.ReadonlyPaths, paths)
		if len(added) == 0 {
			return nil, nil
		}
		return []Change{{Rule: rule, Path: "linux.readonlyPaths", Op: OpAdd, After: added, Reason: "kernel tunables must not be writable from the container"}}, nil
	})
}

// SetReadonlyRootfs makes the container's root filesystem read-only, so a
// compromised process cannot replace binaries or plant files in the image.
func SetReadonlyRootfs(rule string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Root == nil {
			// ctr run --rootfs and some engines leave root to the runtime's
			// default; nothing to make read-only in the spec.
			return nil, nil
		}
		if s.Root.Readonly {
			return nil, nil
		}
		s.Root.Readonly = true
		return []Change{{Rule: rule, Path: "root.readonly", Op: OpSet, Before: false, After: true, Reason: "the image must not be modified at run time"}}, nil
	})
}

// AddScratchTmpfs mounts a small, noexec, nosuid, nodev tmpfs at each of
// dirs that has no mount yet, so programs keep a writable scratch space
// under a read-only rootfs. An existing mount at the same destination wins.
func AddScratchTmpfs(rule string, dirs []string, size string) Mutator {
	opts := []string{"nosuid", "nodev", "noexec", "mode=1777"}
	if size != "" {
		opts = append(opts, "size="+size)
	}
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		var added []string
		for _, d := range dirs {
			if slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == d }) {
				continue
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: slices.Clone(opts)})
			added = append(added, d)
		}
		if len(added) == 0 {
			return nil, nil
		}
		return []Change{{Rule: rule, Path: "mounts", Op: OpAdd, After: added, Reason: "writable scratch space (noexec) under a read-only rootfs"}}, nil
	})
}

func ensureLinux(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s.Linux
}

// addMissing appends the members of want that list lacks and returns them.
func addMissing(list *[]string, want []string) []string {
	var added []string
	for _, p := range want {
		if !slices.Contains(*list, p) {
			*list = append(*list, p)
			added = append(added, p)
		}
	}
	return added
}
