package profiles

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/harden-dev/harden/spec"
)

// BenchmarkDecideApplyMarshal is the in-process cost harden adds to one
// container start: parse the engine's config.json, decide, apply the
// default policy, and encode the result. Target: 100µs and 500 allocations
// (docs/benchmarks.md).
func BenchmarkDecideApplyMarshal(b *testing.B) {
	data, err := os.ReadFile("../spec/testdata/engines/cri-container.json")
	if err != nil {
		data, _ = json.Marshal(engineSpec("default", "web", 0))
	}
	c, err := LoadDefault()
	if err != nil {
		b.Fatal(err)
	}
	h := spec.Host{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, err := spec.Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Harden(d.Spec, spec.IdentityFromSpec(d.Spec), h); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadDefault is the cost of (re)loading the embedded default
// policy, which the shim pays when the policy file changes.
func BenchmarkLoadDefault(b *testing.B) {
	for b.Loop() {
		if _, err := LoadDefault(); err != nil {
			b.Fatal(err)
		}
	}
}
