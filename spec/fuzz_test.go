package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary config.json bytes through Parse and every
// mutator. Invariants: no panic, never widen, idempotent, and Marshal of the
// result parses again.
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
		if _, err := Parse(out); err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
	})
}
