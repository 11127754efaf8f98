package spec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseKeepsUnknownFields(t *testing.T) {
	in := []byte(`{"ociVersion":"1.9.0","futureTop":{"a":1},"process":{"args":["sh"],"cwd":"/","futureProc":true,"user":{"uid":0,"gid":0}},` +
		`"mounts":[{"destination":"/proc","type":"proc","source":"proc","futureMount":"x"}],"linux":{"futureLinux":[1,2],"namespaces":[{"type":"pid"}]}}`)
	d, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Process.NoNewPrivileges = true
	d.Spec.Linux.MaskedPaths = []string{"/proc/kcore"}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"futureTop":{"a":1}`, `"futureProc":true`, `"futureMount":"x"`, `"futureLinux":[1,2]`, `"noNewPrivileges":true`, `"maskedPaths":["/proc/kcore"]`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

func TestParseBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       "{",
		"wrong type":     `{"process":{"args":"sh"}}`,
		"trailing":       `{} {}`,
		"array":          `[]`,
		"huge":           `{"x":"` + strings.Repeat("a", MaxSpecSize) + `"}`,
		"unknown broken": `{"future":1,"process":{"args":"sh"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestWriteBundleAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(`{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}`), 0o640); err != nil {
		t.Fatal(err)
	}
	d, err := ReadBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Process.NoNewPrivileges = true
	if err := d.WriteBundle(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %o, want the original 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
	d2, err := ReadBundle(dir)
	if err != nil || !d2.Spec.Process.NoNewPrivileges {
		t.Fatalf("reread: %v %+v", err, d2)
	}
	// A failed write leaves the old file whole.
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "config.json"), []byte("x"), 0o600); err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

func TestReadBundleMissing(t *testing.T) {
	_, err := ReadBundle(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "read bundle config") {
		t.Fatalf("err = %v", err)
	}
}

// TestUnknownFieldsCannotShadowKnownOnes: encoding/json matches keys
// case-insensitively and keeps the last, so a case variant of a known field
// must never be carried into the output next to harden's value.
func TestUnknownFieldsCannotShadowKnownOnes(t *testing.T) {
	in := []byte(`{"ociVersion":"1.2.0","futureField":1,"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"nonewprivileges":false},` +
		`"linux":{"maskedpaths":[],"seccomp":{"DEFAULTACTION":"SCMP_ACT_ALLOW"}}}`)
	d, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Process.NoNewPrivileges = true
	d.Spec.Linux.MaskedPaths = []string{"/proc/kcore"}
	d.Spec.Linux.Seccomp.DefaultAction = "SCMP_ACT_ERRNO"
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Spec.Process.NoNewPrivileges || len(back.Spec.Linux.MaskedPaths) != 1 || back.Spec.Linux.Seccomp.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("a case variant overrode harden's value:\n%s", out)
	}
	if !bytes.Contains(out, []byte(`"futureField":1`)) {
		t.Fatalf("real unknown field lost:\n%s", out)
	}
}

// TestDuplicateKeysDecodedAsRunc: runc's decoder (encoding/json) matches
// keys without regard to case, keeps the last value and merges objects
// given twice. harden decodes such a spec the same way, so it decides on
// what runc would run, marks it ambiguous, and renders every field once.
func TestDuplicateKeysDecodedAsRunc(t *testing.T) {
	for name, tc := range map[string]struct {
		in    string
		check func(*specs.Spec) bool
	}{
		"exact":        {`{"process":{"noNewPrivileges":true,"noNewPrivileges":false}}`, func(s *specs.Spec) bool { return !s.Process.NoNewPrivileges }},
		"case variant": {`{"process":{"noNewPrivileges":true,"nonewprivileges":false}}`, func(s *specs.Spec) bool { return !s.Process.NoNewPrivileges }},
		"with unknown": {`{"future":1,"process":{"noNewPrivileges":true,"NoNewPrivileges":false}}`, func(s *specs.Spec) bool { return !s.Process.NoNewPrivileges }},
		"nested seccomp": {`{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","DefaultAction":"SCMP_ACT_ALLOW"}}}`,
			func(s *specs.Spec) bool { return s.Linux.Seccomp.DefaultAction == specs.ActAllow }},
		"objects merge": {`{"linux":{"resources":{"cpu":{"shares":1024},"CPU":{"cpus":"0"}}}}`, func(s *specs.Spec) bool {
			c := s.Linux.Resources.CPU
			return c != nil && c.Shares != nil && *c.Shares == 1024 && c.Cpus == "0"
		}},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !d.Ambiguous() || !tc.check(d.Spec) {
				t.Fatalf("ambiguous=%v, decoded differently from encoding/json: %s", d.Ambiguous(), mustJSON(t, d.Spec))
			}
			var runc specs.Spec
			if err := json.Unmarshal([]byte(tc.in), &runc); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&runc, d.Spec) {
				t.Fatalf("harden decoded %s, runc decodes %s", mustJSON(t, d.Spec), mustJSON(t, &runc))
			}
			out, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil || back.Ambiguous() {
				t.Fatalf("rendering still ambiguous (%v):\n%s", err, out)
			}
			if !reflect.DeepEqual(back.Spec, d.Spec) {
				t.Fatalf("rendering changed the spec:\n%s", out)
			}
		})
	}
	// One key in another case than the runtime-spec tag is what runc
	// accepts, and so does harden.
	d, err := Parse([]byte(`{"process":{"NoNewPrivileges":true,"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}`))
	if err != nil || !d.Spec.Process.NoNewPrivileges {
		t.Fatalf("case-insensitive key: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
