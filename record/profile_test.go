package record

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

func TestKnownSyscalls(t *testing.T) {
	names, err := KnownSyscalls()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"read", "write", "openat", "execve", "exit_group", "unshare", "mount"} {
		if !slices.Contains(names, want) {
			t.Errorf("KnownSyscalls lacks %s", want)
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Error("KnownSyscalls is not sorted and unique")
	}
}

func TestRecordingProfile(t *testing.T) {
	f, err := RecordingProfile("/run/harden-record.x/notify.sock", "token")
	if err != nil {
		t.Fatal(err)
	}
	if f.ListenerPath != "/run/harden-record.x/notify.sock" || f.ListenerMetadata != "token" {
		t.Errorf("listener = %q %q", f.ListenerPath, f.ListenerMetadata)
	}
	if f.DefaultAction != specs.ActErrno || f.DefaultErrnoRet == nil || *f.DefaultErrnoRet != 1 {
		t.Errorf("default action %s %v, want SCMP_ACT_ERRNO 1", f.DefaultAction, f.DefaultErrnoRet)
	}
	arches, _ := Arches()
	if !slices.Equal(f.Architectures, arches) {
		t.Errorf("architectures %v, want %v", f.Architectures, arches)
	}
	var notify, allow []string
	for _, r := range f.Syscalls {
		switch r.Action {
		case specs.ActNotify:
			notify = append(notify, r.Names...)
		case specs.ActAllow:
			allow = append(allow, r.Names...)
		default:
			t.Errorf("unexpected rule %s %v", r.Action, r.Names)
		}
	}
	// runc refuses SCMP_ACT_NOTIFY on write (libcontainer/seccomp InitSeccomp).
	if slices.Contains(notify, "write") || !slices.Equal(allow, []string{"write"}) {
		t.Errorf("write must be allowed, not notified: allow %v", allow)
	}
	known, _ := KnownSyscalls()
	if len(notify) != len(known)-1 {
		t.Errorf("%d names notified, want every known syscall but write (%d)", len(notify), len(known)-1)
	}
	// runc and libseccomp must accept it as is.
	if err := profiles.Compile(f, true); err != nil {
		t.Errorf("the recording profile does not compile: %v", err)
	}
	for _, bad := range []string{"", "notify.sock", "./x"} {
		if _, err := RecordingProfile(bad, ""); err == nil {
			t.Errorf("listener path %q accepted", bad)
		}
	}
}

func TestProfile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		names  []string
		arches []specs.Arch
		want   []string // besides AlwaysAllowed
	}{
		{"nothing recorded", nil, nil, nil},
		{"sorted and unique", []string{"openat", "brk", "openat", "execve", "write"}, nil, []string{"brk", "execve", "openat"}},
		{"given arches", []string{"getdents64"}, []specs.Arch{specs.ArchX86_64}, []string{"getdents64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Profile(tc.names, tc.arches)
			if err != nil {
				t.Fatal(err)
			}
			want := append(slices.Clone(tc.want), AlwaysAllowed...)
			slices.Sort(want)
			want = slices.Compact(want)
			if len(f.Syscalls) != 1 || f.Syscalls[0].Action != specs.ActAllow || !slices.Equal(f.Syscalls[0].Names, want) {
				t.Errorf("syscalls = %+v, want one ALLOW rule for %v", f.Syscalls, want)
			}
			if f.DefaultAction != specs.ActErrno || *f.DefaultErrnoRet != 1 || f.ListenerPath != "" {
				t.Errorf("default %s %d listener %q", f.DefaultAction, *f.DefaultErrnoRet, f.ListenerPath)
			}
			wantArches := tc.arches
			if len(wantArches) == 0 {
				wantArches, _ = Arches()
			}
			if !slices.Equal(f.Architectures, wantArches) {
				t.Errorf("architectures %v, want %v", f.Architectures, wantArches)
			}
			if err := profiles.Compile(f, true); err != nil {
				t.Errorf("does not compile: %v", err)
			}
			// Profiles do not share state: editing one leaves the next alone.
			*f.DefaultErrnoRet = 38
			g, _ := Profile(nil, nil)
			if *g.DefaultErrnoRet != 1 {
				t.Error("profiles share their errno")
			}
		})
	}
}

// TestWrittenProfileLoads: a written profile is what a harden policy
// accepts as seccomp.profile, and the filter harden builds from it allows
// exactly the recorded names.
func TestWrittenProfileLoads(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rec.json")
	f, err := Profile([]string{"openat", "execve", "getdents64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteProfile(p, f); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %04o, want 0644", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(p)
	var back specs.LinuxSeccomp
	if err := json.Unmarshal(b, &back); err != nil || !strings.HasSuffix(string(b), "}\n") {
		t.Fatalf("not one JSON object and a newline: %v\n%s", err, b)
	}
	pol := "apiVersion: harden.dev/v1alpha1\nkind: Policy\nprofiles:\n- name: rec\n  extends: baseline\n  seccomp: {profile: " + p + "}\nrules:\n- name: r\n  profile: rec\n"
	c, err := profiles.Parse([]byte(pol))
	if err != nil {
		t.Fatalf("a policy naming the profile does not load: %v", err)
	}
	s := &specs.Spec{Process: &specs.Process{Args: []string{"sh"}}, Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "network"}, {Type: "mount"}, {Type: "uts"}}}}
	if _, err := c.Harden(s, spec.Identity{}, spec.Host{}); err != nil {
		t.Fatal(err)
	}
	got := s.Linux.Seccomp
	if got == nil || got.DefaultAction != specs.ActErrno || len(got.Syscalls) != 1 || !slices.Equal(got.Syscalls[0].Names, f.Syscalls[0].Names) {
		t.Errorf("harden installed %+v, want the recorded profile", got)
	}

	// Overwriting a profile keeps it loadable; a file others can write is
	// refused, not replaced.
	if err := WriteProfile(p, f); err != nil {
		t.Errorf("overwrite: %v", err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WriteProfile(p, f); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("group-writable target: err = %v", err)
	}
	if err := WriteProfile(dir, f); err == nil {
		t.Error("a directory as target was accepted")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
