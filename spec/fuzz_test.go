package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzApply feeds arbitrary config.json bytes through Parse and every
// mutator. Invariants: no panic, never widen, idempotent, and Marshal of the
// result parses again, names no field twice, and decodes under runc's
// decoder (encoding/json) to exactly what harden decided on.
func FuzzApply(f *testing.F) {
	for _, s := range shapes() {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/engines/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	// Fields given twice, in another case, with unknown fields around.
	f.Add([]byte(`{"future":1,"process":{"noNewPrivileges":true,"NoNewPrivileges":false,"capabilities":{"bounding":["CAP_SYS_ADMIN"]},"Capabilities":{"effective":["CAP_SYS_ADMIN"],"x":1}},"linux":{"resources":{"cpu":{"shares":2},"CPU":{"cpus":"0"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		before, err := Clone(d.Spec)
		if err != nil {
			return // e.g. a value encoding/json cannot re-encode
		}
		var ms []Mutator
		for _, name := range sortedKeys(allMutators()) {
			ms = append(ms, allMutators()[name])
		}
		res, err := Apply(d.Spec, Enforce, ms...)
		if err != nil && !errors.Is(err, ErrPolicyViolation) {
			t.Fatalf("apply: %v", err)
		}
		if werr := NeverWidens(before, d.Spec); werr != nil {
			t.Fatalf("widened: %v", werr)
		}
		again, _ := Apply(d.Spec, Enforce, ms...)
		for _, c := range again.Changes {
			if c.Op != OpRefuse {
				t.Fatalf("not idempotent: %s (first run: %v)", c, res.Changes)
			}
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		if back.Ambiguous() {
			t.Fatalf("output names a field twice:\n%s", out)
		}
		// What runc reads from the output (encoding/json) is what harden
		// decided on.
		var runc specs.Spec
		if err := json.Unmarshal(out, &runc); err != nil {
			t.Fatalf("runc cannot decode the output: %v", err)
		}
		rv, _ := json.Marshal(&runc)
		hv, _ := json.Marshal(d.Spec)
		if !bytes.Equal(rv, hv) {
			t.Fatalf("runc would read\n%s\nharden decided on\n%s", rv, hv)
		}
	})
}
