package profiles

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/harden-dev/harden/spec"
)

// FuzzLoadPolicy: any bytes either load or fail with an error; a policy that
// loads hardens a spec without panicking and without widening it.
func FuzzLoadPolicy(f *testing.F) {
	f.Add(DefaultPolicyYAML())
	f.Add([]byte(header + "defaults: {profile: strict, mode: audit}\n"))
	f.Add([]byte(header + "profiles:\n- {name: p, extends: restricted, resources: {memory: 1Gi, cpu: 500m, pids: 10, onExceed: refuse}}\nrules:\n- {name: r, profile: p, match: {namespaces: [a*], annotations: {x: y}}, selectable: [strict]}\n"))
	files, _ := filepath.Glob("testdata/policies/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		s := engineSpec("a", "b", 1000)
		before, _ := spec.Clone(s)
		_, err = c.Harden(s, spec.IdentityFromSpec(s), spec.Host{AppArmor: true, SELinux: true})
		if err != nil && !errors.Is(err, spec.ErrPolicyViolation) {
			t.Fatalf("harden: %v", err)
		}
		if werr := spec.NeverWidens(before, s); werr != nil {
			t.Fatalf("widened: %v", werr)
		}
	})
}
