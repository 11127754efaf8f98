package probe

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// These tests only inspect the probe; none runs a vector (they would act on
// the host running the tests). test/security runs the vectors in containers.

// TestVectors checks the ids are stable-looking and unique, every vector
// has a description and names the rules that stop it, and its function has
// a doc comment saying what attack it represents.
func TestVectors(t *testing.T) {
	docs := funcDocs(t)
	rules := documentedRules(t)
	idRE := regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)?$`)
	seen := map[string]bool{}
	vs := Vectors()
	if len(vs) < 30 {
		t.Errorf("%d vectors, want at least 30", len(vs))
	}
	for i, v := range vs {
		if !idRE.MatchString(v.ID) {
			t.Errorf("vector id %q is not of the form area.name", v.ID)
		}
		if seen[v.ID] {
			t.Errorf("vector id %q appears twice", v.ID)
		}
		seen[v.ID] = true
		if strings.TrimSpace(v.Desc) == "" {
			t.Errorf("vector %s has no description", v.ID)
		}
		if len(v.Rules) == 0 || strings.TrimSpace(v.How) == "" {
			t.Errorf("vector %s does not say which rule stops it and how (rules %q, how %q)", v.ID, v.Rules, v.How)
		}
		for _, r := range v.Rules {
			if !rules[r] {
				t.Errorf("vector %s names rule %q, which docs/policy.md's rule ID table does not list", v.ID, r)
			}
		}
		if got, ok := Lookup(v.ID); !ok || got.ID != v.ID {
			t.Errorf("Lookup(%q) = %v, %v", v.ID, got.ID, ok)
		}
		if v.check == nil {
			t.Fatalf("vector %s has no function", v.ID)
		}
		name := runtime.FuncForPC(reflect.ValueOf(v.check).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		if doc := docs[name]; len(strings.Fields(doc)) < 8 {
			t.Errorf("vector %s: function %s has no doc comment saying what attack it represents (%q)", v.ID, name, doc)
		}
		if v.ID == "fork.bomb" && i != len(vs)-1 {
			t.Errorf("fork.bomb must run last: it exhausts the pids limit on purpose")
		}
	}
	if _, ok := Lookup("no.such"); ok {
		t.Error("Lookup found a vector that does not exist")
	}
	vs[0].Rules[0] = "changed"
	if Vectors()[0].Rules[0] == "changed" {
		t.Error("Vectors returns the package's own rule slices")
	}
}

// documentedRules reads the rule IDs from the table in docs/policy.md,
// section 15 (| `rule.id` | field | action |).
func documentedRules(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "policy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## 15. Rule IDs")
	if !ok {
		t.Fatal("docs/policy.md has no section \"15. Rule IDs\"")
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z0-9.-]+)` \\|").FindAllStringSubmatch(sec, -1) {
		out[m[1]] = true
	}
	if len(out) < 10 {
		t.Fatalf("found %d rule IDs in docs/policy.md section 15, want the whole table", len(out))
	}
	return out
}

// TestControl checks how a vector's control reads in tables.
func TestControl(t *testing.T) {
	v, ok := Lookup("socket.raw")
	if !ok {
		t.Fatal("no socket.raw")
	}
	if got, want := v.Control(), "caps.drop: NET_RAW dropped"; got != want {
		t.Errorf("Control() = %q, want %q", got, want)
	}
	v, _ = Lookup("mount.tmpfs")
	if got, want := v.Control(), "caps.drop, seccomp.profile: no CAP_SYS_ADMIN"; got != want {
		t.Errorf("Control() = %q, want %q", got, want)
	}
}

func TestParseFinding(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Finding
		err  string
	}{
		{line: `{"vector":"mount.tmpfs","result":"blocked","detail":"mount: EPERM"}`, want: Finding{"mount.tmpfs", Blocked, "mount: EPERM"}},
		{line: `{"vector":"read.kcore","result":"n/a","detail":"probe error: x"}`, want: Finding{"read.kcore", NotApplicable, "probe error: x"}},
		{line: `{"vector":"x.y","result":"maybe","detail":""}`, err: `result "maybe"`},
		{line: `{"result":"open"}`, err: "names no vector"},
		{line: `{"vector":"x.y","result":"open","detail":"d","since":"v2"}`, want: Finding{"x.y", Open, "d"}},
		{line: `mount: permission denied`, err: "is not a result"},
	} {
		got, err := ParseFinding([]byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFinding(%s) error = %v, want one containing %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFinding(%s) = %+v, %v, want %+v", tc.line, got, err, tc.want)
		}
	}
	if !(Finding{Detail: ErrorPrefix + " boom"}).ProbeError() || (Finding{Detail: "EPERM"}).ProbeError() {
		t.Error("ProbeError does not look at the detail's prefix")
	}
}

// funcDocs returns the doc comment of every function in the package.
func funcDocs(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Doc != nil {
					out[fd.Name.Name] = fd.Doc.Text()
				}
			}
		}
	}
	return out
}

func TestCapList(t *testing.T) {
	for _, tc := range []struct {
		mask uint64
		want string
	}{
		{0, "none"},
		{1<<0 | 1<<13, "CHOWN,NET_RAW"},
		{1 << 21, "SYS_ADMIN"},
		{1 << 40, "CHECKPOINT_RESTORE"},
		{1 << 45, "cap45"},
	} {
		if got := capList(tc.mask); got != tc.want {
			t.Errorf("capList(%#x) = %q, want %q", tc.mask, got, tc.want)
		}
	}
	if restrictedCaps != 1<<10 {
		t.Errorf("restrictedCaps = %#x, want NET_BIND_SERVICE (bit 10)", restrictedCaps)
	}
}

func TestStandardDevice(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint32
		want         bool
	}{
		{1, 3, true}, {1, 5, true}, {1, 7, true}, {1, 8, true}, {1, 9, true}, // null zero full random urandom
		{5, 0, true}, {5, 1, true}, {5, 2, true}, {136, 4, true}, // tty console ptmx pts
		{1, 1, false}, {1, 11, false}, {10, 229, false}, {254, 0, false}, {8, 0, false}, // mem kmsg fuse vda sda
	} {
		if got := standardDevice(tc.major, tc.minor); got != tc.want {
			t.Errorf("standardDevice(%d, %d) = %v, want %v", tc.major, tc.minor, got, tc.want)
		}
	}
}

// TestModuleResult: a module call with invalid arguments is blocked only
// when EPERM (filter or capability) answers it.
func TestModuleResult(t *testing.T) {
	for e, want := range map[unix.Errno]string{
		unix.EPERM: "blocked", unix.EACCES: "blocked", unix.ENOSYS: "n/a",
		unix.ENOEXEC: "open", unix.EBADF: "open", unix.EFAULT: "open", unix.EINVAL: "open",
	} {
		if got := moduleResult("init_module", e); got.result != want {
			t.Errorf("moduleResult(%s) = %s (%s), want %s", unix.ErrnoName(e), got.result, got.detail, want)
		}
	}
}
