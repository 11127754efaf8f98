package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		ns          string
		cfg         Config
		wantEngine  string
		wantHandler string
	}{
		{"docker namespace", nil, "moby", Config{}, spec.EngineDocker, ""},
		{"plain containerd", nil, "default", Config{}, spec.EngineUnknown, ""},
		{"podman wins over namespace", map[string]string{"io.container.manager": "libpod"}, "moby", Config{}, spec.EnginePodman, ""},
		{"handler from config", nil, "", Config{RuntimeHandler: "harden"}, spec.EngineUnknown, "harden"},
		{"handler from CRI-O spec wins", map[string]string{"io.kubernetes.cri-o.ContainerType": "container", "io.kubernetes.cri-o.RuntimeHandler": "fast"}, "", Config{RuntimeHandler: "harden"}, spec.EngineCRIO, "fast"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := Identify(&specs.Spec{Annotations: tc.annotations}, "c1", tc.ns, tc.cfg)
			if id.ID != "c1" || id.EngineNamespace != tc.ns || id.Engine != tc.wantEngine || id.RuntimeHandler != tc.wantHandler {
				t.Fatalf("Identify = %+v, want engine %q handler %q", id, tc.wantEngine, tc.wantHandler)
			}
		})
	}
	if id := Identify(nil, "x", "", Config{}); id.ID != "x" {
		t.Fatalf("nil spec: %+v", id)
	}
}

func TestAllowUnhardened(t *testing.T) {
	allow, err := profiles.Parse([]byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\nfailurePolicy: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	deny, err := profiles.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	failure := errors.New("write bundle config: disk full")
	refusal := fmt.Errorf("create: %w", &spec.ViolationError{Violations: []spec.Violation{{Rule: "privileged.deny"}}})
	for _, tc := range []struct {
		name string
		cfg  Config
		pol  *profiles.Compiled
		err  error
		want bool
	}{
		{"no error", Config{FailurePolicy: "allow"}, allow, nil, false},
		{"refusal never runs", Config{FailurePolicy: "allow"}, allow, refusal, false},
		{"policy allow", Config{}, allow, failure, true},
		{"policy deny", Config{}, deny, failure, false},
		{"config overrides policy", Config{FailurePolicy: "deny"}, allow, failure, false},
		{"config allow over policy deny", Config{FailurePolicy: "allow"}, deny, failure, true},
		{"policy not loaded, config allow", Config{FailurePolicy: "allow"}, nil, failure, true},
		{"policy not loaded, no config", Config{}, nil, failure, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.AllowUnhardened(tc.pol, tc.err); got != tc.want {
				t.Fatalf("AllowUnhardened = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHardenBundle(t *testing.T) {
	pol, err := profiles.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	audit, err := profiles.Parse([]byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: baseline, mode: audit}\n"))
	if err != nil {
		t.Fatal(err)
	}
	plain := `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_CHOWN"]}},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"mount"},{"type":"network"}],"maskedPaths":["/proc/kcore"]},"x-unknown":1}`
	privileged := `{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"mount"},{"type":"network"}],"resources":{"devices":[{"allow":true,"access":"rwm"}]}}}`
	for _, tc := range []struct {
		name       string
		pol        *profiles.Compiled
		config     string
		wantResult string
		changed    bool
	}{
		{"enforce writes", pol, plain, ResultHardened, true},
		{"audit leaves the file", audit, plain, ResultAudited, false},
		{"refusal leaves the file", pol, privileged, ResultRefused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "config.json")
			if err := os.WriteFile(p, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			var rec Record
			id, _, err := HardenBundle(tc.pol, Config{}, dir, func(s *specs.Spec) spec.Identity { return Identify(s, "c1", "ns", Config{}) }, &rec)
			if (err != nil) != (tc.wantResult == ResultRefused) {
				t.Fatalf("err = %v", err)
			}
			if rec.Result != tc.wantResult || rec.Outcome == nil || rec.Policy != tc.pol.Source || id.ID != "c1" {
				t.Fatalf("record = %+v, identity %+v", rec, id)
			}
			after, _ := os.ReadFile(p)
			if changed := string(after) != tc.config; changed != tc.changed {
				t.Fatalf("file changed = %v, want %v:\n%s", changed, tc.changed, after)
			}
			if tc.changed {
				doc, err := spec.Parse(after)
				if err != nil {
					t.Fatal(err)
				}
				if !doc.Spec.Process.NoNewPrivileges || doc.Spec.Linux.Seccomp == nil || !strings.Contains(string(after), `"x-unknown":1`) {
					t.Fatalf("not hardened: %s", after)
				}
			}
		})
	}
	var rec Record
	if _, _, err := HardenBundle(pol, Config{}, t.TempDir(), nil, &rec); err == nil || rec.Result != ResultError {
		t.Fatalf("missing config.json: err %v, record %+v", err, rec)
	}
}

func TestFindState(t *testing.T) {
	rc := &Recorder{StateDir: t.TempDir()}
	for _, r := range []Record{
		{ID: "web", Namespace: "moby", Root: "/run/docker/runtime-runc/moby", Runtime: "/usr/bin/runsc"},
		{ID: "web", Namespace: "", Root: "/run/runc", Runtime: "/usr/bin/runc"},
		{ID: "db", Namespace: "default", Root: "", Runtime: "/usr/bin/crun"},
	} {
		if err := rc.SaveState(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id, root, want string
	}{
		{"web", "/run/docker/runtime-runc/moby", "/usr/bin/runsc"},
		{"web", "/run/runc", "/usr/bin/runc"},
		{"web", "/other", ""},
		{"db", "", "/usr/bin/crun"},
		{"db", "/run/runc", ""},
		{"*", "", ""},
		{"../web", "/run/runc", ""},
		{"", "", ""},
	} {
		r, ok, err := rc.FindState(tc.id, tc.root)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (tc.want != "") || r.Runtime != tc.want {
			t.Errorf("FindState(%q, %q) = %q, %v; want %q", tc.id, tc.root, r.Runtime, ok, tc.want)
		}
	}
	if _, ok, err := (*Recorder)(nil).FindState("web", ""); ok || err != nil {
		t.Fatal("nil recorder found something")
	}
}
