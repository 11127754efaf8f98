package runcwrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

const testPolicy = `apiVersion: harden.dev/v1alpha1
kind: Policy
defaults: {profile: capped}
profiles:
- name: capped
  extends: baseline
  resources: {memory: 256Mi, pids: 100}
rules:
- name: audited
  match: {annotations: {mode: audit}}
  profile: capped
  mode: audit
- name: refuse-above
  match: {annotations: {mode: refuse}}
  profile: strict-limits
`

const refusePolicyProfile = `- name: strict-limits
  extends: baseline
  resources: {memory: 256Mi, onExceed: refuse}
`

func testPolicyCompiled(t *testing.T) *profiles.Compiled {
	t.Helper()
	src := strings.Replace(testPolicy, "rules:\n", refusePolicyProfile+"rules:\n", 1)
	pol, err := profiles.Parse([]byte(src))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return pol
}

// hardenedContainer is a container spec as harden leaves it at create.
func hardenedContainer(t *testing.T, pol *profiles.Compiled, annotations map[string]string) (*specs.Spec, spec.Identity) {
	t.Helper()
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN", "CAP_NET_RAW"}
	s := &specs.Spec{
		Version:     "1.0.2",
		Annotations: annotations,
		Process: &specs.Process{
			Args: []string{"sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: slices.Clone(caps), Effective: slices.Clone(caps), Permitted: slices.Clone(caps)},
		},
		Root: &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "mount"}, {Type: "network"}},
			MaskedPaths: []string{"/proc/kcore"}},
	}
	id := node.Identify(s, "c1", "", node.Config{})
	if _, err := pol.Harden(s, id, spec.Host{}); err != nil {
		t.Fatalf("harden container: %v", err)
	}
	return s, id
}

func parse(t *testing.T, argv string) *Invocation {
	t.Helper()
	inv, err := Parse(split(argv))
	if err != nil || inv.Err != nil {
		t.Fatalf("Parse(%q): %v %v", argv, err, inv.Err)
	}
	return inv
}

func TestExecInline(t *testing.T) {
	pol := testPolicyCompiled(t)
	container, id := hardenedContainer(t, pol, nil)
	if slices.Contains(container.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || !container.Process.NoNewPrivileges {
		t.Fatalf("container not hardened: %+v", container.Process)
	}
	audited, auditID := hardenedContainer(t, pol, map[string]string{"mode": "audit"})
	unhardened := &specs.Spec{Process: &specs.Process{Args: []string{"sh"}, Cwd: "/",
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN", "CAP_KILL"}, Effective: []string{"CAP_SYS_ADMIN", "CAP_KILL"}}}}

	for _, tc := range []struct {
		name      string
		argv      string
		container *specs.Spec
		id        spec.Identity
		want      string // the runtime's command line; "" when unchanged
		wantPass  bool   // the whole process goes as --process
		refused   bool
	}{
		{"allowed cap kept", "exec --cap CAP_KILL c1 sh", container, id, "", false, false},
		{"cap outside the container dropped", "exec --cap CAP_SYS_ADMIN --cap=CAP_KILL c1 sh", container, id, "exec --cap=CAP_KILL c1 sh", false, false},
		{"lower-case cap dropped", "exec -c cap_sys_admin c1 sh", container, id, "exec c1 sh", false, false},
		{"no-new-privs=false forced back", "exec --no-new-privs=false -t c1 sh", container, id, "exec --no-new-privs -t c1 sh", false, false},
		{"flags after the id are the command's", "exec c1 sh --cap CAP_SYS_ADMIN", container, id, "", false, false},
		{"audit mode changes nothing", "exec --cap CAP_SYS_ADMIN c1 sh", audited, auditID, "", false, false},
		{"unhardened container: whole process", "exec --cap CAP_NET_ADMIN -e A=B -t c1 sh -c x", unhardened, id, "exec --process=X c1", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := parse(t, tc.argv)
			x := execInput{inv: inv, container: tc.container, pol: pol, identity: tc.id}
			rw, pass, out, err := x.harden()
			if tc.refused != (err != nil) {
				t.Fatalf("err = %v", err)
			}
			if out == nil {
				t.Fatal("no outcome")
			}
			if (pass != nil) != tc.wantPass {
				t.Fatalf("pass = %s", pass)
			}
			if pass != nil {
				rw.set(inv, "process", "X")
				var p specs.Process
				if err := json.Unmarshal(pass, &p); err != nil {
					t.Fatal(err)
				}
				if slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") || slices.Contains(p.Capabilities.Bounding, "CAP_NET_ADMIN") ||
					!p.NoNewPrivileges || !p.Terminal || !slices.Equal(p.Args, []string{"sh", "-c", "x"}) || !slices.Contains(p.Env, "A=B") {
					t.Fatalf("passed process = %s", pass)
				}
			}
			got := ""
			if rw != nil && rw.changed() {
				got = strings.Join(inv.apply(rw), " ")
			}
			if got != tc.want {
				t.Fatalf("runtime args = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestExecRefusesRoot(t *testing.T) {
	src := "apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: restricted}\n"
	pol, err := profiles.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Process: &specs.Process{Args: []string{"sh"}, Cwd: "/", User: specs.User{UID: 1000}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "mount"}, {Type: "network"}}}}
	id := spec.IdentityFromSpec(s)
	if _, err := pol.Harden(s, id, spec.Host{}); err != nil {
		t.Fatal(err)
	}
	x := execInput{inv: parse(t, "exec --user 0 c1 sh"), container: s, pol: pol, identity: id}
	if _, _, _, err := x.harden(); !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), profiles.RuleNonRoot) {
		t.Fatalf("exec as root under restricted: err = %v", err)
	}
}

func TestExecProcessFile(t *testing.T) {
	pol := testPolicyCompiled(t)
	container, id := hardenedContainer(t, pol, nil)
	_, auditID := hardenedContainer(t, pol, map[string]string{"mode": "audit"})
	all := `["CAP_CHOWN","CAP_KILL","CAP_SYS_ADMIN","CAP_NET_ADMIN","CAP_SYS_PTRACE"]`
	files := map[string]string{
		"/all.json":  `{"args":["sh"],"cwd":"/","capabilities":{"bounding":` + all + `,"effective":` + all + `,"permitted":` + all + `},"x-new":{"k":1}}`,
		"/ok.json":   `{"args":["sh"],"cwd":"/","noNewPrivileges":true,"capabilities":{"bounding":["CAP_KILL"]}} trailing ignored like runc`,
		"/dup.json":  `{"args":["sh"],"cwd":"/","noNewPrivileges":true,"NoNewPrivileges":false}`,
		"/bad.json":  `{"args":`,
		"/null.json": `null`,
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	for _, tc := range []struct {
		name, argv string
		wantArgs   string
		wantPass   string // "" none, "same" the file's bytes, "hardened"
		wantErr    string
		audit      bool
	}{
		{"all caps lowered", "exec -p /all.json --cap CAP_SYS_ADMIN -d c1", "exec --process=X -d c1", "hardened", "", false},
		// The runtime never reads the path again: it may be a pipe.
		{"nothing to change", "exec --process /ok.json c1", "exec --process=X c1", "same", "", false},
		{"audit", "exec --process /all.json --cap CAP_SYS_ADMIN c1", "exec --process=X --cap CAP_SYS_ADMIN c1", "same", "", true},
		// Decoded as runc decodes it (the last wins), rendered once.
		{"duplicate keys", "exec -p /dup.json c1", "exec --process=X c1", "hardened", "", false},
		{"bad json", "exec -p /bad.json c1", "", "", "process /bad.json", false},
		{"null", "exec -p /null.json c1", "", "", "no process", false},
		{"missing file", "exec -p /nope.json c1", "", "", "read process", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := parse(t, tc.argv)
			x := execInput{inv: inv, container: container, pol: pol, identity: id, readFile: read}
			if tc.audit {
				x.identity = auditID
			}
			rw, pass, _, err := x.harden()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (pass != nil) != (tc.wantPass != "") {
				t.Fatalf("pass = %s", pass)
			}
			file := files[inv.Flags[0].Value]
			if tc.wantPass == "same" && string(pass) != file {
				t.Fatalf("pass = %s, want the bytes read: %s", pass, file)
			}
			if pass != nil {
				rw.set(inv, "process", "X")
			}
			if tc.wantPass == "hardened" {
				var p map[string]any
				if err := json.Unmarshal(pass, &p); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(file, "x-new") && p["x-new"] == nil {
					t.Errorf("unknown field dropped: %s", pass)
				}
				if _, twice := p["NoNewPrivileges"]; twice {
					t.Errorf("a field given twice was passed on twice: %s", pass)
				}
				var proc specs.Process
				_ = json.Unmarshal(pass, &proc)
				if proc.Capabilities != nil {
					for _, set := range [][]string{proc.Capabilities.Bounding, proc.Capabilities.Effective, proc.Capabilities.Permitted} {
						if !slices.Equal(set, []string{"CAP_CHOWN", "CAP_KILL"}) {
							t.Errorf("capabilities = %v, want the container's [CAP_CHOWN CAP_KILL]", set)
						}
					}
				}
				if !proc.NoNewPrivileges {
					t.Error("no_new_privileges not kept")
				}
			}
			if got := strings.Join(inv.apply(rw), " "); got != tc.wantArgs {
				t.Fatalf("runtime args = %q, want %q", got, tc.wantArgs)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	pol := testPolicyCompiled(t)
	_, id := hardenedContainer(t, pol, nil)
	_, auditID := hardenedContainer(t, pol, map[string]string{"mode": "audit"})
	_, refuseID := hardenedContainer(t, pol, map[string]string{"mode": "refuse"})
	files := map[string]string{
		"/big.json":   `{"memory":{"limit":1073741824,"swap":2147483648},"pids":{"limit":50},"x-new":true}`,
		"/small.json": `{"memory":{"limit":1048576}}`,
		"/dup.json":   `{"memory":{"limit":1},"Memory":{"limit":1073741824}}`,
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	for _, tc := range []struct {
		name, argv string
		id         spec.Identity
		stdin      string
		wantArgs   string
		wantPass   string // substring of the passed document
		wantErr    string
	}{
		{"inline above the ceiling", "update --memory 1g --pids-limit 500 --cpu-share 512 c1", id, "", "update --memory=268435456 --pids-limit=100 --cpu-share 512 c1", "", ""},
		{"inline below", "update --memory 100m c1", id, "", "update --memory 100m c1", "", ""},
		{"inline unlimited", "update --memory=-1 c1", id, "", "update --memory=268435456 c1", "", ""},
		{"inline with swap", "update c1 --memory 1g --memory-swap 2g", id, "", "update --memory=268435456 --memory-swap=1342177280 c1", "", ""},
		{"file above", "update -r /big.json --memory 5g c1", id, "", "update --resources=X c1", `"limit":268435456`, ""},
		{"file keeps unknown fields", "update -r /big.json c1", id, "", "update --resources=X c1", `"x-new":true`, ""},
		// The runtime never reads the path again: it may be a pipe.
		{"file below", "update -r /small.json c1", id, "", "update --resources=X c1", `{"memory":{"limit":1048576}}`, ""},
		{"audit, file", "update -r /big.json c1", auditID, "", "update --resources=X c1", `"limit":1073741824`, ""},
		{"stdin is always passed on", "update -r - c1", id, `{"memory":{"limit":1048576}}`, "update --resources=X c1", `{"memory":{"limit":1048576}}`, ""},
		{"stdin above", "update -r - c1", id, `{"memory":{"limit":1073741824}}`, "update --resources=X c1", `"limit":268435456`, ""},
		// Decoded as runc decodes it (the last wins), rendered once.
		{"duplicate keys", "update -r /dup.json c1", id, "", "update --resources=X c1", `{"memory":{"limit":268435456}}`, ""},
		{"refuse policy", "update --memory 1g c1", refuseID, "", "", "", "resources.ceiling"},
		{"refuse policy, file", "update -r /big.json c1", refuseID, "", "", "", "resources.ceiling"},
		{"audit changes nothing", "update --memory 1g c1", auditID, "", "update --memory 1g c1", "", ""},
		{"bad value", "update --memory lots c1", id, "", "", "", "invalid value for memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := parse(t, tc.argv)
			u := updateInput{inv: inv, pol: pol, identity: tc.id, stdin: strings.NewReader(tc.stdin), readFile: read}
			rw, pass, _, err := u.harden()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (pass != nil) != (tc.wantPass != "") || (pass != nil && !strings.Contains(string(pass), tc.wantPass)) {
				t.Fatalf("pass = %s, want one with %s", pass, tc.wantPass)
			}
			if pass != nil {
				rw.set(inv, "resources", "X")
			}
			if got := strings.Join(inv.apply(rw), " "); got != tc.wantArgs {
				t.Fatalf("runtime args = %q, want %q", got, tc.wantArgs)
			}
		})
	}
}

func TestResourcesFromFlags(t *testing.T) {
	r, err := resourcesFromFlags(parse(t, "update --memory 1g --memory-swap=-1 --cpu-quota 5000 --cpu-period 10000 --cpu-share 100 --blkio-weight 0x20 --pids-limit 010 --cpuset-cpus 0 --cpu-idle 1 c1"))
	if err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 1<<30 || *r.Memory.Swap != -1 || *r.CPU.Quota != 5000 || *r.CPU.Period != 10000 || *r.CPU.Shares != 100 ||
		*r.BlockIO.Weight != 32 || *r.Pids.Limit != 8 || r.CPU.Cpus != "0" || *r.CPU.Idle != 1 || *r.Memory.CheckBeforeUpdate {
		t.Fatalf("resources = %+v", r)
	}
}

func TestLogLine(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	var stderr bytes.Buffer
	dir := t.TempDir()
	jl := &logger{path: filepath.Join(dir, "log.json"), json: true, stderr: &stderr, now: now}
	if code := jl.fail(errors.New(`create c1: rule "privileged.deny"`)); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(jl.path)
	if want := `{"level":"error","msg":"create c1: rule \"privileged.deny\"","time":"2026-01-02T03:04:05Z"}` + "\n"; string(b) != want {
		t.Fatalf("json line = %s, want %s", b, want)
	}
	if stderr.String() != "create c1: rule \"privileged.deny\"\n" {
		t.Fatalf("stderr = %q", stderr.String())
	}
	stderr.Reset()
	tl := &logger{stderr: &stderr, now: now}
	tl.fail(errors.New("boom here"))
	if want := `time="2026-01-02T03:04:05Z" level=error msg="boom here"` + "\n"; stderr.String() != want {
		t.Fatalf("text line = %q, want %q", stderr.String(), want)
	}
}
