package spec

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SetAppArmorProfile confines the process with the named AppArmor profile.
// The policy's profile wins over whatever the engine or the workload chose
// (including "unconfined"): a workload must not pick a weaker profile through
// an annotation. Runtimes apply it only where the kernel has AppArmor; the
// backend adaptation records whether it is enforced.
func SetAppArmorProfile(rule, profile string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil || profile == "" || s.Process.ApparmorProfile == profile {
			return nil, nil
		}
		before := s.Process.ApparmorProfile
		s.Process.ApparmorProfile = profile
		return []Change{{Rule: rule, Path: "process.apparmorProfile", Op: OpSet, Before: nilIfEmpty(before), After: profile, Reason: "confine the process with the profile's AppArmor profile"}}, nil
	})
}

// SELinuxLabel is the part of an SELinux context a profile sets. Empty
// fields keep the spec's value (or the container default when it has none).
type SELinuxLabel struct {
	User  string `json:"user,omitempty" yaml:"user,omitempty"`
	Role  string `json:"role,omitempty" yaml:"role,omitempty"`
	Type  string `json:"type,omitempty" yaml:"type,omitempty"`
	Level string `json:"level,omitempty" yaml:"level,omitempty"`
}

// SetSELinuxLabel sets the type (and user, role and level where the profile
// names them) of process.selinuxLabel, starting from
// system_u:system_r:container_t:s0 when the spec has no label. An engine's
// per-container MCS level is kept unless the profile sets one.
func SetSELinuxLabel(rule string, want SELinuxLabel) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil || want == (SELinuxLabel{}) {
			return nil, nil
		}
		before := s.Process.SelinuxLabel
		after := mergeLabel(before, want, "system_u", "system_r", "container_t")
		if after == before {
			return nil, nil
		}
		s.Process.SelinuxLabel = after
		return []Change{{Rule: rule, Path: "process.selinuxLabel", Op: OpSet, Before: nilIfEmpty(before), After: after, Reason: "run the process in the profile's SELinux domain"}}, nil
	})
}

// mergeLabel overlays want on the context label ("user:role:type:level",
// where the level may itself contain colons, e.g. s0:c1,c2).
func mergeLabel(label string, want SELinuxLabel, user, role, typ string) string {
	level := "s0"
	if label != "" {
		parts := strings.SplitN(label, ":", 4)
		if len(parts) >= 3 {
			user, role, typ = parts[0], parts[1], parts[2]
		}
		if len(parts) == 4 {
			level = parts[3]
		}
	}
	if want.User != "" {
		user = want.User
	}
	if want.Role != "" {
		role = want.Role
	}
	if want.Type != "" {
		typ = want.Type
	}
	if want.Level != "" {
		level = want.Level
	}
	return user + ":" + role + ":" + typ + ":" + level
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
