package profiles

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

const header = "apiVersion: harden.dev/v1alpha1\nkind: Policy\n"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, policy string
		want         []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"malformed yaml", header + "rules: [", []string{"line"}},
		{"unknown top field", header + "rulez: []\n", []string{"line 3", "rulez"}},
		{"unknown rule field", header + "rules:\n- name: a\n  profile: baseline\n  moed: audit\n", []string{"line 6", "moed"}},
		{"wrong apiVersion", "apiVersion: v9\nkind: Policy\n", []string{"apiVersion", "v9"}},
		{"wrong kind", "apiVersion: harden.dev/v1alpha1\nkind: Pod\n", []string{"kind", "Pod"}},
		{"two documents", header + "---\n" + header, []string{"more than one"}},
		{"bad failurePolicy", header + "failurePolicy: maybe\n", []string{"failurePolicy", "maybe"}},
		{"unknown profile in rule", header + "rules:\n- name: a\n  profile: nope\n", []string{"rules[0] (a).profile", "nope"}},
		{"bad mode", header + "rules:\n- name: a\n  profile: baseline\n  mode: loud\n", []string{"rules[0] (a).mode", "loud"}},
		{"bad backend", header + "rules:\n- name: a\n  profile: baseline\n  backend: docker\n", []string{"backend", "docker"}},
		{"duplicate rule", header + "rules:\n- name: a\n  profile: baseline\n- name: a\n  profile: baseline\n", []string{"used twice"}},
		{"unknown capability", header + "profiles:\n- name: p\n  extends: baseline\n  capabilities: {allow: [CAP_FLY]}\n", []string{`profile "p"`, "capabilities.allow[0]", "CAP_FLY"}},
		{"unknown syscall", header + "profiles:\n- name: p\n  extends: baseline\n  seccomp: {profile: runtime-default, deny: [not_a_syscall]}\n", []string{"seccomp.deny", "not_a_syscall"}},
		{"relative seccomp path", header + "profiles:\n- name: p\n  extends: baseline\n  seccomp: {profile: my.json}\n", []string{"my.json", "absolute"}},
		{"missing seccomp file", header + "profiles:\n- name: p\n  extends: baseline\n  seccomp: {profile: /nonexistent/profile.json}\n", []string{"/nonexistent/profile.json", "no such file"}},
		{"extends loop", header + "profiles:\n- name: a\n  extends: b\n- name: b\n  extends: a\n", []string{"loop"}},
		{"extends missing", header + "profiles:\n- name: a\n  extends: zzz\n", []string{"zzz", "does not exist"}},
		{"redefine builtin", header + "profiles:\n- name: baseline\n  extends: strict\n", []string{"built-in"}},
		{"bad memory", header + "profiles:\n- name: p\n  extends: baseline\n  resources: {memory: lots}\n", []string{"resources.memory", "lots"}},
		{"bad onExceed", header + "profiles:\n- name: p\n  extends: baseline\n  resources: {onExceed: shrug}\n", []string{"onExceed", "shrug"}},
		{"bad host ns", header + "profiles:\n- name: p\n  extends: baseline\n  allowHostNamespaces: [user]\n", []string{"allowHostNamespaces[0]", "user"}},
		{"bad container type", header + "rules:\n- name: a\n  profile: baseline\n  match: {containerType: vm}\n", []string{"containerType", "vm"}},
		{"weaker selectable", header + "rules:\n- name: a\n  profile: strict\n  selectable: [baseline]\n", []string{"selectable[0]", "baseline", "seccomp"}},
		{"selectable missing", header + "defaults: {profile: baseline, selectable: [nope]}\n", []string{"selectable[0]", "nope"}},
		// Indexed as written, not in the list merged with the parent's.
		{"relative deny path", header + "profiles:\n- name: p\n  extends: baseline\n  denyHostPaths: [{path: /ok}, {path: rel}]\n", []string{`profile "p"`, "denyHostPaths[1].path", `"rel"`}},
		{"relative allow path", header + "profiles:\n- name: p\n  extends: baseline\n  allowHostPaths: [{path: var/log}]\n", []string{`profile "p"`, "allowHostPaths[0].path", `"var/log"`}},
		{"relative masked path", header + "profiles:\n- name: p\n  extends: strict\n  maskedPaths: [rel]\n", []string{`profile "p"`, "maskedPaths[0]", `"rel"`}},
		// strict allows socket() only for some address families and clone
		// only without namespace flags; allowing them outright widens it.
		{"selectable unconditional socket", header + "profiles:\n- {name: wide, extends: strict, seccomp: {allow: [socket]}}\nrules:\n- {name: a, profile: strict, selectable: [wide]}\n", []string{"selectable[0]", "wide", "socket", "argument conditions"}},
		{"selectable unconditional clone", header + "profiles:\n- {name: wide, extends: strict, seccomp: {allow: [clone]}}\ndefaults: {profile: strict, selectable: [wide]}\n", []string{"selectable[0]", "wide", "clone", "argument conditions"}},
		{"complain not a bool", header + "profiles:\n- name: p\n  extends: baseline\n  seccomp:\n    complain: sometimes\n", []string{"line 7", "bool"}},
		{"complain misspelt", header + "profiles:\n- name: p\n  extends: baseline\n  seccomp:\n    complian: true\n", []string{"line 7", "complian"}},
		{"selectable complain", header + "profiles:\n- {name: measure, extends: baseline, seccomp: {complain: true}}\ndefaults: {profile: baseline, selectable: [measure]}\n", []string{"selectable[0]", "measure", "complain"}},
		{"complain by annotation", header + "profiles:\n- {name: measure, extends: baseline, seccomp: {complain: true}}\nrules:\n- {name: m, profile: measure, match: {annotations: {example.com/measure: \"yes\"}}}\n", []string{"rules[0] (m).match.annotations", "complain"}},
		{"complain on runsc", header + "profiles:\n- {name: measure, extends: baseline, seccomp: {complain: true}}\nrules:\n- {name: g, profile: measure, backend: runsc}\n", []string{"rules[0] (g)", "complain", "runsc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.policy))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadChecksFileTrust(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, DefaultPolicyYAML(), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("world-writable policy: err = %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		if err := os.Chown(p, 1234, 1234); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "not root") {
			t.Fatalf("policy owned by uid 1234: err = %v", err)
		}
	}
	// A file that exists but is broken is an error, never a fallback.
	if err := os.WriteFile(p+".bad", []byte("nope: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrDefault(p + ".bad"); err == nil {
		t.Fatal("broken policy file fell back to the default")
	}
	c, err := LoadOrDefault(filepath.Join(dir, "absent.yaml"))
	if err != nil || c.Source != "(embedded default)" {
		t.Fatalf("absent file: %v %v", c, err)
	}
}

func TestSeccompProfileFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "profile.json")
	body := `{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write","exit_group","mseal"],"action":"SCMP_ACT_ALLOW"}]}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	pol := header + "profiles:\n- name: p\n  extends: baseline\n  seccomp: {profile: " + p + ", allow: [openat]}\nrules:\n- name: r\n  profile: p\n"
	c, err := Parse([]byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: privateNS()}}
	if _, err := c.Harden(s, spec.Identity{}, spec.Host{}); err != nil {
		t.Fatal(err)
	}
	names := allowedNames(s.Linux.Seccomp)
	for _, want := range []string{"read", "openat"} {
		if !contains(names, want) {
			t.Errorf("filter lacks %s: %v", want, names)
		}
	}
	// A typo in the file is reported with its name.
	if err := os.WriteFile(p, []byte(strings.Replace(body, "write", "wirte", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(pol)); err == nil || !strings.Contains(err.Error(), `"wirte"`) {
		t.Fatalf("typo: err = %v", err)
	}
	if err := os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscals":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(pol)); err == nil || !strings.Contains(err.Error(), "syscals") {
		t.Fatalf("unknown field: err = %v", err)
	}
}

func privateNS() []specs.LinuxNamespace {
	return []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "network"}, {Type: "mount"}, {Type: "uts"}}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "docker.io/library/busybox:latest", true},
		{"docker.io/*", "docker.io/library/nginx", true},
		{"docker.io/library/nginx:*", "docker.io/library/nginx:1.27", true},
		{"docker.io/library/nginx:*", "docker.io/library/nginxx:1", false},
		{"web-?", "web-1", true},
		{"web-?", "web-12", false},
		{"", "", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
	} {
		if got := glob(tc.p, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// TestProfileNamesSortingBeforeBuiltins guards a loader panic: user profiles
// resolve in name order, and "app" sorts before the built-in it extends.
func TestProfileNamesSortingBeforeBuiltins(t *testing.T) {
	for _, parent := range BuiltinNames {
		c, err := Parse([]byte(header + "profiles:\n- {name: aaa, extends: " + parent + "}\n- {name: loose, extends: " + parent + "}\n"))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := c.Profile("aaa")
		if len(r.Chain) < 2 || r.Chain[1] != parent {
			t.Fatalf("chain %v", r.Chain)
		}
	}
}

func TestSeccompFileTrust(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	pol := header + "profiles:\n- name: p\n  extends: baseline\n  seccomp: {profile: " + p + "}\n"
	if _, err := Parse([]byte(pol)); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("world-writable seccomp profile: err = %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	// A ConfigMap-style symlink to a trusted file is fine.
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte(strings.Replace(pol, p, link, 1))); err != nil {
		t.Fatal(err)
	}
}

func TestHugePolicy(t *testing.T) {
	big := header + "# " + strings.Repeat("x", MaxPolicySize) + "\n"
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v", err)
	}
}

// TestAppArmorTextParses hands the generated profile to apparmor_parser,
// which checks the syntax without a kernel that has AppArmor (this one has
// none, so loading is skipped; `make deps` installs the parser).
func TestAppArmorTextParses(t *testing.T) {
	text, err := AppArmorText(AppArmorProfileName)
	if err != nil {
		t.Fatal(err)
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("apparmor_parser is missing; `make deps` installs the apparmor package")
		}
		t.Skip("apparmor_parser is not installed (run `make deps`)")
	}
	cmd := exec.Command(parser, "-Q", "-K", "--skip-kernel-load")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser rejects the generated profile: %v\n%s", err, out)
	}
	if _, err := AppArmorText("bad name; rm -rf /"); err == nil {
		t.Fatal("an unsafe profile name was accepted")
	}
	if err := LoadAppArmor(AppArmorProfileName); !DetectHost().AppArmor && !errors.Is(err, ErrNoAppArmor) {
		t.Fatalf("LoadAppArmor on a host without AppArmor: %v", err)
	}
}

// TestBuiltinFiltersCompile compiles the built-in filters with libseccomp
// for each capability set moby's profile treats specially (the loader
// skips this for built-ins without deltas, to keep shim starts fast).
func TestBuiltinFiltersCompile(t *testing.T) {
	capSets := [][]string{nil, {"CAP_NET_BIND_SERVICE"}, BaselineCapabilities, spec.AllCapabilities}
	for _, base := range []string{SeccompRuntimeDefault, SeccompStrict} {
		for _, caps := range capSets {
			src, err := loadSeccompSource(Seccomp{Profile: base}, caps)
			if err != nil {
				t.Fatal(err)
			}
			f, err := src.generate(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := Compile(f, false); err != nil {
				t.Errorf("%s with %d capabilities does not compile: %v", base, len(caps), err)
			}
		}
	}
}

// TestBuiltinTightensTable holds the load-time shortcut for built-in
// filters to the general comparison of allowed syscall names and default
// actions.
func TestBuiltinTightensTable(t *testing.T) {
	names := []string{SeccompRuntimeDefault, SeccompStrict}
	for _, caps := range [][]string{nil, BaselineCapabilities, spec.AllCapabilities} {
		for _, b := range names {
			for _, s := range names {
				gen := func(name string) *specs.LinuxSeccomp {
					src, err := loadSeccompSource(Seccomp{Profile: name}, caps)
					if err != nil {
						t.Fatal(err)
					}
					f, err := src.generate(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
					if err != nil {
						t.Fatal(err)
					}
					return f
				}
				bf, sf := gen(b), gen(s)
				general := len(missing(allowedNames(bf), allowedNames(sf))) == 0 && actionRank(sf.DefaultAction) >= actionRank(bf.DefaultAction)
				if general != builtinTightens(b, s) {
					t.Errorf("%s under %s (%d caps): general comparison says %v, the table %v", s, b, len(caps), general, builtinTightens(b, s))
				}
			}
		}
	}
}

// TestLoadChecksThePathToTheFile: every directory and symlink on the way
// to a policy file must be as trusted as the file, or whoever can replace
// one can point harden at a file of their choosing.
func TestLoadChecksThePathToTheFile(t *testing.T) {
	dir := t.TempDir()
	write := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, DefaultPolicyYAML(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A ConfigMap volume: policy.yaml -> ..data/policy.yaml, ..data -> ..2026_11_27.
	cm := filepath.Join(dir, "cm")
	write(filepath.Join(cm, "..2026_11_27", "policy.yaml"))
	for _, l := range [][2]string{{"..2026_11_27", "..data"}, {"..data/policy.yaml", "policy.yaml"}} {
		if err := os.Symlink(l[0], filepath.Join(cm, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(filepath.Join(cm, "policy.yaml")); err != nil {
		t.Fatalf("ConfigMap-style chain: %v", err)
	}
	if _, err := Load(filepath.Join(cm, ".", "..data", "..", "policy.yaml")); err != nil {
		t.Fatalf("with . and ..: %v", err)
	}

	// A directory on the way that others can write.
	open := filepath.Join(dir, "open")
	write(filepath.Join(open, "sub", "policy.yaml"))
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(open, "sub", "policy.yaml")); err == nil || !strings.Contains(err.Error(), "directory "+open+" on the way is writable") {
		t.Errorf("world-writable directory on the way: err = %v", err)
	}
	// The same directory with the sticky bit, as /tmp: only an entry's
	// owner can replace it.
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(open, "sub", "policy.yaml")); err != nil {
		t.Errorf("sticky directory on the way: %v", err)
	}
	// A symlink that leads through a writable directory.
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(filepath.Join(open, "sub", "policy.yaml"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("symlink through a writable directory: err = %v", err)
	}
	// A loop.
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(loop); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("symlink loop: err = %v", err)
	}
	if os.Getuid() == 0 {
		// A directory, or a symlink, of another user.
		theirs := filepath.Join(dir, "theirs")
		write(filepath.Join(theirs, "policy.yaml"))
		if err := os.Chown(theirs, 1234, 1234); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(filepath.Join(theirs, "policy.yaml")); err == nil || !strings.Contains(err.Error(), "owned by uid 1234") {
			t.Errorf("directory of uid 1234 on the way: err = %v", err)
		}
		if err := os.Lchown(link, 1234, 1234); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(open, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(link); err == nil || !strings.Contains(err.Error(), "owned by uid 1234") {
			t.Errorf("symlink of uid 1234: err = %v", err)
		}
	}
}
