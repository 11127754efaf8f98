package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestCloneIsDeep checks Clone against the JSON round trip on every real
// engine spec, and that changing the copy never reaches the original.
func TestCloneIsDeep(t *testing.T) {
	files, _ := filepath.Glob("testdata/engines/*.json")
	inputs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = b
	}
	full, _ := json.Marshal(fullSpec())
	inputs["full"] = full
	for name, b := range inputs {
		t.Run(name, func(t *testing.T) {
			d, err := Parse(b)
			if err != nil {
				t.Skip("not a config.json") // exec process and update files
			}
			orig, _ := json.Marshal(d.Spec)
			c, err := Clone(d.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, d.Spec) {
				t.Fatal("clone differs from the original")
			}
			// Mutate everything the mutators touch, through the copy.
			if c.Process != nil {
				c.Process.Args = append(c.Process.Args[:0:0], "x")
				if c.Process.Capabilities != nil && len(c.Process.Capabilities.Bounding) > 0 {
					c.Process.Capabilities.Bounding[0] = "CAP_CHANGED"
				}
				c.Process.NoNewPrivileges = !c.Process.NoNewPrivileges
			}
			if len(c.Mounts) > 0 {
				c.Mounts[0].Options = append(c.Mounts[0].Options, "changed")
				c.Mounts[0].Destination = "/changed"
			}
			for k := range c.Annotations {
				c.Annotations[k] = "changed"
			}
			if c.Linux != nil {
				c.Linux.MaskedPaths = append(c.Linux.MaskedPaths, "/changed")
				if c.Linux.Resources != nil && c.Linux.Resources.Memory != nil && c.Linux.Resources.Memory.Limit != nil {
					*c.Linux.Resources.Memory.Limit = 1
				}
				if len(c.Linux.Namespaces) > 0 {
					c.Linux.Namespaces[0].Path = "/changed"
				}
			}
			after, _ := json.Marshal(d.Spec)
			if string(orig) != string(after) {
				t.Fatal("changing the clone changed the original")
			}
		})
	}
}
