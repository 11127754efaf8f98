package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
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
		runtimeFeaturesCache.Delete(bin) // as a new shim process would start
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
	runtimeFeaturesCache.Delete(bin)
	if v := maxOCIVersion(bin, spec.Crun, ""); v != "1.3.0-rc" || asked() != 3 {
		t.Fatalf("no cache dir: %q, asked %d times", v, asked())
	}
}

// TestProbeSeccompFlags: the runtime's `features` answer says which
// seccomp flags it applies. runc 1.1's answer has no supportedFlags (and
// runc 1.1 refuses any flag), 1.2's lists them; a runtime without
// `features` says nothing. An entry of the cache's earlier layout, which
// did not keep the flags, is asked again.
func TestProbeSeccompFlags(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	logging, err := profiles.Parse([]byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\nprofiles:\n- {name: l, extends: baseline, seccomp: {logDenials: true}}\ndefaults: {profile: l}\n"))
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := profiles.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, answer string
		exit         int
		known, log   bool
	}{
		{"runc 1.1", `{"ociVersionMax":"1.0.2-dev","linux":{"seccomp":{"enabled":true,"actions":["SCMP_ACT_LOG"]}}}`, 0, true, false},
		{"runc 1.4", `{"ociVersionMax":"1.3.0","linux":{"seccomp":{"enabled":true,"supportedFlags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_LOG"]}}}`, 0, true, true},
		{"flags without LOG", `{"ociVersionMax":"1.3.0","linux":{"seccomp":{"supportedFlags":["SECCOMP_FILTER_FLAG_TSYNC"]}}}`, 0, true, false},
		{"no features", `unknown command`, 1, false, false},
	} {
		bin := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		script := "#!/bin/sh\necho '" + tc.answer + "'\nexit " + strconv.Itoa(tc.exit) + "\n"
		if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		f := probeFeatures(bin, spec.Runc, state)
		if f.SeccompFlagsKnown != tc.known || slices.Contains(f.SeccompFlags, specs.LinuxSeccompFlagLog) != tc.log {
			t.Errorf("%s: %+v, want known %v, LOG %v", tc.name, f, tc.known, tc.log)
		}
		cfg := Config{BinaryName: bin, StateDir: state}
		if h := cfg.HostFor(spec.Runc, logging); h.NoSeccompFlagLog != (tc.known && !tc.log) {
			t.Errorf("%s: HostFor(...).NoSeccompFlagLog = %v", tc.name, h.NoSeccompFlagLog)
		}
		if h := cfg.HostFor(spec.Runc, quiet); h.NoSeccompFlagLog {
			t.Errorf("%s: asked for a policy that does not log denials", tc.name)
		}
	}

	// A cache entry without the format of this version is not trusted.
	bin := filepath.Join(dir, "runc-1.4")
	runtimeFeaturesCache.Delete(bin)
	sum := sha256.Sum256([]byte(bin))
	cache := filepath.Join(state, "runtimes", hex.EncodeToString(sum[:8])+".json")
	old, _ := json.Marshal(map[string]string{"binary": bin, "key": binaryKey(bin), "ociVersionMax": "1.3.0"})
	if err := os.WriteFile(cache, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if f := probeFeatures(bin, spec.Runc, state); !f.SeccompFlagsKnown || !slices.Contains(f.SeccompFlags, specs.LinuxSeccompFlagLog) {
		t.Errorf("an old-format cache entry was used: %+v", f)
	}
}
