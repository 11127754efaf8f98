package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SetNoNewPrivileges turns on no_new_privileges, so setuid binaries and file
// capabilities cannot raise privileges after exec (prctl PR_SET_NO_NEW_PRIVS).
func SetNoNewPrivileges(rule string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil || s.Process.NoNewPrivileges {
			return nil, nil
		}
		s.Process.NoNewPrivileges = true
		return []Change{{
			Rule: rule, Path: "process.noNewPrivileges", Op: OpSet, Before: false, After: true,
			Reason: "setuid binaries and file capabilities must not raise privileges",
		}}, nil
	})
}

// RequireNonRoot refuses a process that runs as uid 0, as Pod Security
// restricted's runAsNonRoot does. A primary gid of 0 passes, as it does
// there: images built to run under an arbitrary uid keep their files
// group 0. Changing the uid would break images that expect to be root, so
// this is a refusal, never a silent rewrite.
func RequireNonRoot(rule string) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Process == nil {
			return nil, nil
		}
		if s.Process.User.UID == 0 {
			return []Change{{Rule: rule, Path: "process.user.uid", Op: OpRefuse, After: 0, Reason: "the profile requires a non-root user"}},
				refuse(rule, "process.user.uid", 0, "the profile requires a non-root user (set runAsUser or USER in the image)")
		}
		return nil, nil
	})
}
