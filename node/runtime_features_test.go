package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/spec"
)

// TestMaxOCIVersionCached: a runtime is asked for its features once per
// binary, across processes (the cache in StateDir), and again when the
// binary changes.
func TestMaxOCIVersionCached(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	bin := filepath.Join(dir, "crun")
	write := func(version string) {
		script := "#!/bin/sh\necho x \"$@\" >>" + calls + "\necho '{\"ociVersionMax\":\"" + version + "\"}'\n"
		if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	asked := func() int {
		b, _ := os.ReadFile(calls)
		return strings.Count(string(b), "\n") // one line per call
	}
	state := filepath.Join(dir, "state")
	get := func() string {
		ociVersions.Delete(bin) // as a new shim process would start
		return maxOCIVersion(bin, spec.Crun, state)
	}
	write("1.2.0")
	if v := get(); v != "1.2.0" || asked() != 1 {
		t.Fatalf("first: %q, asked %d times", v, asked())
	}
	// crun makes its state root even for `features`: it must be harden's,
	// not the host's /run/crun.
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "x --root "+filepath.Join(state, "runtimes", "root")+" features") {
		t.Errorf("the runtime was asked %q; want --root under the state dir, then features", b)
	}
	if v := get(); v != "1.2.0" || asked() != 1 {
		t.Fatalf("cached: %q, asked %d times", v, asked())
	}
	write("1.3.0-rc")
	if v := get(); v != "1.3.0-rc" || asked() != 2 {
		t.Fatalf("after the binary changed: %q, asked %d times", v, asked())
	}
	// Without a state dir, each process asks.
	ociVersions.Delete(bin)
	if v := maxOCIVersion(bin, spec.Crun, ""); v != "1.3.0-rc" || asked() != 3 {
		t.Fatalf("no cache dir: %q, asked %d times", v, asked())
	}
}
