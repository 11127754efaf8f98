package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenHost is fixed so golden output does not depend on the machine: both
// LSMs present, so the label changes show.
var goldenHost = spec.Host{AppArmor: true, SELinux: true}

// goldenInputs are the specs the golden tests harden: the real engine specs
// captured by test/env/capture-specs.sh, plus hand-made edge cases.
func goldenInputs(t *testing.T) map[string]string {
	t.Helper()
	in := map[string]string{}
	for _, pattern := range []string{"../spec/testdata/engines/*.json", "testdata/golden/inputs/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			if strings.HasPrefix(name, "exec-process") || strings.HasPrefix(name, "update-") {
				continue
			}
			in[name] = f
		}
	}
	if len(in) == 0 {
		t.Fatal("no golden inputs found")
	}
	return in
}

// TestGolden hardens every input with every built-in profile and compares
// the hardened spec, the change list and any refusal with testdata/golden.
// Refresh with: go test ./profiles -run TestGolden -update
func TestGolden(t *testing.T) {
	for name, path := range goldenInputs(t) {
		for _, profile := range BuiltinNames {
			t.Run(name+"/"+profile, func(t *testing.T) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				c := mustParse(t, header+"defaults: {profile: "+profile+"}\n")
				doc, err := spec.Parse(data)
				if err != nil {
					t.Fatal(err)
				}
				out, err := c.Harden(doc.Spec, spec.IdentityFromSpec(doc.Spec), goldenHost)
				dir := filepath.Join("testdata", "golden", name)
				refusal := ""
				if err != nil {
					if !errors.Is(err, spec.ErrPolicyViolation) {
						t.Fatalf("harden: %v", err)
					}
					refusal = err.Error() + "\n"
				}
				changes, _ := json.MarshalIndent(out.Changes, "", "  ")
				assertGolden(t, filepath.Join(dir, profile+".changes.json"), append(changes, '\n'))
				assertGolden(t, filepath.Join(dir, profile+".refusal.txt"), []byte(refusal))
				if refusal != "" {
					return
				}
				hardened, err := doc.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, hardened, "", "  "); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				assertGolden(t, filepath.Join(dir, profile+".out.json"), pretty.Bytes())

				// Idempotent: hardening the output again changes nothing.
				again, err := c.Harden(doc.Spec, spec.IdentityFromSpec(doc.Spec), goldenHost)
				if err != nil {
					t.Fatal(err)
				}
				if len(again.Changes) != 0 {
					t.Fatalf("second pass changed: %v", again.Changes)
				}
				// Audit: the same policy in audit mode leaves the input byte-identical.
				audit := mustParse(t, header+"defaults: {profile: "+profile+", mode: audit}\n")
				orig, _ := spec.Parse(data)
				before, _ := orig.Marshal()
				if _, err := audit.Harden(orig.Spec, spec.IdentityFromSpec(orig.Spec), goldenHost); err != nil {
					t.Fatal(err)
				}
				after, _ := orig.Marshal()
				if !bytes.Equal(before, after) {
					t.Fatal("audit mode changed the spec")
				}
			})
		}
	}
}

// TestGoldenExec hardens captured exec process files against the hardened
// container they run in.
func TestGoldenExec(t *testing.T) {
	files, _ := filepath.Glob("../spec/testdata/engines/exec-process*.json")
	files2, _ := filepath.Glob("testdata/golden/inputs/exec/*.json")
	for _, f := range append(files, files2...) {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			c, err := LoadDefault()
			if err != nil {
				t.Fatal(err)
			}
			container := engineSpec("default", "web", 0)
			if _, err := c.Harden(container, spec.IdentityFromSpec(container), goldenHost); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var proc specs.Process
			if err := json.Unmarshal(data, &proc); err != nil {
				t.Fatal(err)
			}
			out, err := c.HardenExec(&proc, container, spec.IdentityFromSpec(container), goldenHost)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.MarshalIndent(struct {
				Process *specs.Process `json:"process"`
				Changes []spec.Change  `json:"changes"`
			}{&proc, out.Changes}, "", "  ")
			assertGolden(t, filepath.Join("testdata", "golden", "exec", name+".json"), append(b, '\n'))
		})
	}
}

func assertGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			os.Remove(path)
			return
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		want = nil
	} else if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./profiles -run TestGolden -update and review the diff):\n--- got\n%s\n--- want\n%s", path, truncate(got), truncate(want))
	}
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// TestGoldenUpdate checks captured `runc update -r` documents against each
// built-in profile's ceilings.
func TestGoldenUpdate(t *testing.T) {
	files, _ := filepath.Glob("../spec/testdata/engines/update-*.json")
	if len(files) == 0 {
		t.Fatal("no captured update documents")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		for _, profile := range BuiltinNames {
			t.Run(name+"/"+profile, func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, onExceed := range []string{"lower", "refuse"} {
					c := mustParse(t, header+"profiles:\n- {name: p, extends: "+profile+", resources: {memory: 512Mi, onExceed: "+onExceed+"}}\ndefaults: {profile: p}\n")
					var in specs.LinuxResources
					if err := json.Unmarshal(data, &in); err != nil {
						t.Fatal(err)
					}
					out, err := c.HardenUpdate(&in, spec.Identity{})
					refusal := ""
					if err != nil {
						if !errors.Is(err, spec.ErrPolicyViolation) {
							t.Fatal(err)
						}
						refusal = err.Error()
					}
					b, _ := json.MarshalIndent(struct {
						Resources *specs.LinuxResources `json:"resources"`
						Changes   []spec.Change         `json:"changes"`
						Refusal   string                `json:"refusal,omitempty"`
					}{&in, out.Changes, refusal}, "", "  ")
					assertGolden(t, filepath.Join("testdata", "golden", "update", name+"."+profile+"."+onExceed+".json"), append(b, '\n'))
				}
			})
		}
	}
}
