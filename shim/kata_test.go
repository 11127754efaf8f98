package shim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"

	"github.com/harden-dev/harden/node"
)

// TestKataDelegation runs Start with a policy whose rule picks the kata
// backend and a stand-in for containerd-shim-kata-v2 (Kata needs KVM, which
// this machine lacks). The stand-in records how it was started and what the
// bundle held at that moment, and answers like a pre-2.3 shim.
func TestKataDelegation(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	engineSpec := `{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},
		"capabilities":{"bounding":["CAP_NET_RAW","CAP_KILL"],"effective":["CAP_NET_RAW","CAP_KILL"],"permitted":["CAP_NET_RAW","CAP_KILL"]}},
		"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"network"},{"type":"mount"}]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(engineSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	standin := filepath.Join(dir, "containerd-shim-kata-v2")
	script := "#!/bin/sh\necho \"$@\" > " + dir + "/args\ncp config.json " + dir + "/seen.json\ncat > " + dir + "/stdin\necho '{\"version\":2,\"address\":\"unix:///run/kata/fake.sock\",\"protocol\":\"ttrpc\"}'\n"
	if err := os.WriteFile(standin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, backend: kata}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := "PolicyPath = \"" + policy + "\"\nKataShim = \"" + standin + "\"\nDecisionLog = \"" + dir + "/decisions.log\"\nStateDir = \"" + dir + "/state\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(configPathEnv, cfgPath)
	t.Chdir(bundle)

	params := &bootapi.BootstrapParams{InstanceID: "kata-1", Namespace: "default", ContainerdGrpcAddress: "/run/c.sock", ContainerdBinary: "/usr/bin/containerd"}
	res, err := NewManager().Start(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetAddress() != "unix:///run/kata/fake.sock" || res.GetVersion() != 2 {
		t.Fatalf("result %+v", res)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.TrimSpace(string(args)); got != "-namespace default -address /run/c.sock -publish-binary /usr/bin/containerd -id kata-1 start" {
		t.Fatalf("stand-in started with %q", got)
	}
	// The Kata shim must see the hardened spec.
	seen, _ := os.ReadFile(filepath.Join(dir, "seen.json"))
	var s struct {
		Process struct {
			NoNewPrivileges bool `json:"noNewPrivileges"`
			Capabilities    struct {
				Bounding []string `json:"bounding"`
			} `json:"capabilities"`
		} `json:"process"`
	}
	if err := json.Unmarshal(seen, &s); err != nil {
		t.Fatal(err)
	}
	if !s.Process.NoNewPrivileges || strings.Join(s.Process.Capabilities.Bounding, ",") != "CAP_KILL" {
		t.Fatalf("kata shim saw an unhardened spec: %s", seen)
	}
	// The record says what Kata does not enforce.
	log, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
	var rec node.Record
	if err := json.Unmarshal(log, &rec); err != nil {
		t.Fatalf("decision log %q: %v", log, err)
	}
	if rec.Result != node.ResultHardened || !strings.HasSuffix(rec.Runtime, "containerd-shim-kata-v2") {
		t.Fatalf("record %+v", rec)
	}
	for _, e := range rec.Enforcement {
		if e.Control == "seccomp" && e.Enforced {
			t.Fatal("record claims Kata enforces the guest seccomp filter")
		}
	}
}

func TestParseStartOutput(t *testing.T) {
	for _, tc := range []struct {
		out, addr string
		version   int32
		bad       bool
	}{
		{"unix:///run/containerd/s/abc\n", "unix:///run/containerd/s/abc", 2, false},
		{`{"version":3,"address":"unix:///x","protocol":"grpc"}`, "unix:///x", 3, false},
		{"", "", 0, true},
		{"time=... level=error msg=boom", "", 0, true},
		{`{"version":2}`, "", 0, true},
	} {
		res, err := parseStartOutput([]byte(tc.out))
		if tc.bad != (err != nil) {
			t.Fatalf("%q: err %v", tc.out, err)
		}
		if !tc.bad && (res.GetAddress() != tc.addr || res.GetVersion() != tc.version) {
			t.Fatalf("%q: %+v", tc.out, res)
		}
	}
}
