package main

import (
	"go/ast"
	"go/parser"
	"go/token"
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
// has a description, and its function a doc comment saying what attack it
// represents.
func TestVectors(t *testing.T) {
	docs := funcDocs(t)
	idRE := regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)?$`)
	seen := map[string]bool{}
	vs := vectors()
	if len(vs) < 30 {
		t.Errorf("%d vectors, want at least 30", len(vs))
	}
	for i, v := range vs {
		if !idRE.MatchString(v.id) {
			t.Errorf("vector id %q is not of the form area.name", v.id)
		}
		if seen[v.id] {
			t.Errorf("vector id %q appears twice", v.id)
		}
		seen[v.id] = true
		if strings.TrimSpace(v.desc) == "" {
			t.Errorf("vector %s has no description", v.id)
		}
		if v.run == nil {
			t.Fatalf("vector %s has no function", v.id)
		}
		name := runtime.FuncForPC(reflect.ValueOf(v.run).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		if doc := docs[name]; len(strings.Fields(doc)) < 8 {
			t.Errorf("vector %s: function %s has no doc comment saying what attack it represents (%q)", v.id, name, doc)
		}
		if v.id == "fork.bomb" && i != len(vs)-1 {
			t.Errorf("fork.bomb must run last: it exhausts the pids limit on purpose")
		}
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
