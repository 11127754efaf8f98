package spec

import (
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func uintp(v uint) *uint { return &v }

// denyingFilter has every kind of action a built filter carries: an errno
// default, allow rules, a kill rule, a trap rule, an EPERM rule, and
// moby's clone3 ENOSYS rule.
func denyingFilter() *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(uint(syscall.EPERM)),
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			{Names: []string{"ptrace"}, Action: specs.ActKillProcess},
			{Names: []string{"acct"}, Action: specs.ActTrap},
			{Names: []string{"memfd_create"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(syscall.EPERM))},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(syscall.ENOSYS))},
			{Names: []string{"mkdir"}, Action: specs.ActLog},
		},
	}
}

func TestComplainSeccomp(t *testing.T) {
	in := denyingFilter()
	orig, _ := Clone(&specs.Spec{Linux: &specs.Linux{Seccomp: in}})
	got, converted := ComplainSeccomp(in)
	if !reflect.DeepEqual(in, orig.Linux.Seccomp) {
		t.Fatal("ComplainSeccomp changed its input")
	}
	if got.DefaultAction != specs.ActLog || got.DefaultErrnoRet != nil {
		t.Errorf("default %s errnoRet %v, want SCMP_ACT_LOG and none", got.DefaultAction, got.DefaultErrnoRet)
	}
	want := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActLog, specs.ActLog, specs.ActLog, specs.ActErrno, specs.ActLog}
	for i, r := range got.Syscalls {
		if r.Action != want[i] {
			t.Errorf("rule %v: %s, want %s", r.Names, r.Action, want[i])
		}
		if r.Action == specs.ActLog && r.ErrnoRet != nil {
			t.Errorf("rule %v keeps errnoRet under SCMP_ACT_LOG", r.Names)
		}
	}
	if len(converted) != 4 || !strings.HasPrefix(converted[0], "defaultAction SCMP_ACT_ERRNO") {
		t.Errorf("converted = %v", converted)
	}
	// Only actions change: names, arguments, architectures stay.
	for i := range got.Syscalls {
		if !slices.Equal(got.Syscalls[i].Names, in.Syscalls[i].Names) {
			t.Errorf("rule %d names changed", i)
		}
	}
	if again, conv := ComplainSeccomp(got); !reflect.DeepEqual(again, got) || len(conv) != 0 {
		t.Errorf("not idempotent: %v", conv)
	}
}

func TestSetSeccompComplainAndLog(t *testing.T) {
	build := func(*specs.Spec) (*specs.LinuxSeccomp, error) { return denyingFilter(), nil }
	m := SetSeccompProfile("seccomp.profile", "test", build, Complain("seccomp.complain"), LogDenials("seccomp.log-denials"))
	s := fullSpec()
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno} // the engine's
	before, _ := Clone(s)
	changes, err := m.Mutate(s)
	if err != nil {
		t.Fatal(err)
	}
	rules := []string{}
	for _, c := range changes {
		rules = append(rules, c.Rule)
	}
	if !slices.Equal(rules, []string{"seccomp.profile", "seccomp.complain", "seccomp.log-denials"}) {
		t.Fatalf("changes %v", changes)
	}
	if !strings.Contains(changes[1].Reason, "ALLOWED") {
		t.Errorf("complain reason %q does not say the syscalls are allowed", changes[1].Reason)
	}
	sc := s.Linux.Seccomp
	if sc.DefaultAction != specs.ActLog || !slices.Equal(sc.Flags, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}) {
		t.Errorf("filter default %s flags %v", sc.DefaultAction, sc.Flags)
	}
	// Never widen: only with the exception, and only as far as LOG.
	if err := NeverWidens(before, s); err == nil || !strings.Contains(err.Error(), "defaultAction") {
		t.Errorf("complain without the exception: %v", err)
	}
	if err := NeverWidens(before, s, SeccompComplain); err != nil {
		t.Errorf("complain with the exception: %v", err)
	}
	// Idempotent.
	if again, _ := m.Mutate(s); len(again) != 0 {
		t.Errorf("second run: %v", again)
	}
	// LogDenials alone leaves the actions.
	s = fullSpec()
	if _, err := SetSeccompProfile("p", "t", build, LogDenials("l")).Mutate(s); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp.DefaultAction != specs.ActErrno || s.Linux.Seccomp.Syscalls[1].Action != specs.ActKillProcess {
		t.Errorf("logDenials changed actions: %+v", s.Linux.Seccomp)
	}
}

func TestNeverWidensSeccomp(t *testing.T) {
	for _, tc := range []struct {
		name       string
		before     *specs.LinuxSeccomp
		after      *specs.LinuxSeccomp
		exceptions []Exception
		widens     bool
	}{
		{"errno to allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, nil, true},
		{"errno to allow, complain", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, []Exception{SeccompComplain}, true},
		{"kill to log", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}, &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, nil, true},
		{"kill to log, complain", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}, &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, []Exception{SeccompComplain}, false},
		{"errno to notify", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, []Exception{SeccompComplain}, true},
		{"kill to errno", &specs.LinuxSeccomp{DefaultAction: specs.ActKill}, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil, false},
		{"allow to errno", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil, false},
		{"none to log", nil, &specs.LinuxSeccomp{DefaultAction: specs.ActLog}, nil, false},
		{"spec_allow added", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}}, nil, true},
		{"log flag added", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &specs.Spec{Linux: &specs.Linux{Seccomp: tc.before}}
			a := &specs.Spec{Linux: &specs.Linux{Seccomp: tc.after}}
			if err := NeverWidens(b, a, tc.exceptions...); (err != nil) != tc.widens {
				t.Fatalf("NeverWidens = %v, want widening %v", err, tc.widens)
			}
		})
	}
}

func TestAdaptSeccompLogFlag(t *testing.T) {
	withFlag := func() *specs.Spec {
		return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		}}}
	}
	s := withFlag()
	changes, enf := Adapt(s, Runsc, Host{RunscOCISeccomp: true})
	if len(s.Linux.Seccomp.Flags) != 0 || len(changes) != 1 || changes[0].Rule != "backend.runsc" || changes[0].Path != "linux.seccomp.flags" {
		t.Fatalf("runsc: flags %v changes %v", s.Linux.Seccomp.Flags, changes)
	}
	for _, e := range enf {
		if e.Control == CtlSeccomp && !strings.Contains(e.Note, "not logged") {
			t.Errorf("runsc seccomp note %q", e.Note)
		}
	}
	for _, b := range []Backend{Runc, Crun} {
		s := withFlag()
		if changes, _ := Adapt(s, b, Host{}); len(changes) != 0 || len(s.Linux.Seccomp.Flags) != 1 {
			t.Errorf("%s changed the flags: %v", b, changes)
		}
	}
	// A runc known not to apply the flag (1.1 refuses any): the flag goes,
	// the filter stays, and the record says denials are not logged.
	s = withFlag()
	changes, enf = Adapt(s, Runc, Host{NoSeccompFlagLog: true, Runtime: "runc-1.1"})
	if len(s.Linux.Seccomp.Flags) != 0 || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(changes) != 1 ||
		changes[0].Rule != "backend.runc" || changes[0].Op != OpRemove || !strings.Contains(changes[0].Reason, "runc-1.1 does not apply seccomp flags") {
		t.Fatalf("runc without the flag: flags %v changes %+v", s.Linux.Seccomp.Flags, changes)
	}
	for _, e := range enf {
		if e.Control == CtlSeccomp && (!e.Enforced || !strings.Contains(e.Note, "denials are not logged")) {
			t.Errorf("runc without the flag: seccomp enforcement %+v", e)
		}
	}
	// Nothing to drop: no change.
	s = withFlag()
	s.Linux.Seccomp.Flags = nil
	if changes, _ := Adapt(s, Runc, Host{NoSeccompFlagLog: true}); len(changes) != 0 {
		t.Errorf("no flag, yet changes %+v", changes)
	}
}

// TestSeccompOptionsInvariants holds the seccomp options to the mutator
// promises on every spec shape: no panic, idempotent, never widen (complain
// with its exception, which it needs only where the engine's filter
// denied by default).
func TestSeccompOptionsInvariants(t *testing.T) {
	build := func(*specs.Spec) (*specs.LinuxSeccomp, error) { return denyingFilter(), nil }
	for name, m := range map[string]struct {
		m   Mutator
		exc []Exception
	}{
		"log":          {SetSeccompProfile("p", "t", build, LogDenials("l")), nil},
		"complain":     {SetSeccompProfile("p", "t", build, Complain("c")), []Exception{SeccompComplain}},
		"complain+log": {SetSeccompProfile("p", "t", build, Complain("c"), LogDenials("l")), []Exception{SeccompComplain}},
	} {
		for sname, s := range shapes() {
			t.Run(name+"/"+sname, func(t *testing.T) {
				before, _ := Clone(s)
				if _, err := m.m.Mutate(s); err != nil {
					t.Fatal(err)
				}
				if err := NeverWidens(before, s, m.exc...); err != nil {
					t.Fatalf("widened: %v", err)
				}
				if again, _ := m.m.Mutate(s); len(again) != 0 {
					t.Fatalf("not idempotent: %v", again)
				}
			})
		}
	}
}

// TestIntersectSeccomp: the profile's filter never allows a syscall the
// engine's filter denied (critest's "should support seccomp localhost
// profile": a pod's profile that allows everything but chmod kept chmod
// allowed under harden's runtime-default before this).
func TestIntersectSeccomp(t *testing.T) {
	eperm, enosys := uint(1), uint(38)
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "write", "chmod", "fchmodat", "personality", "clone3", "mount"}, Action: specs.ActAllow},
		{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
	}}
	denylist := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"chmod", "fchmodat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
	}}
	allowlist := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "write", "chmod", "fchmodat", "socket"}, Action: specs.ActAllow},
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}},
		{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
	}}
	allowed := func(f *specs.LinuxSeccomp) (out []string) {
		for _, r := range f.Syscalls {
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				out = append(out, r.Names...)
			}
		}
		slices.Sort(out)
		return out
	}
	for name, tc := range map[string]struct {
		engine       *specs.LinuxSeccomp
		wantAllowed  []string
		wantNarrowed []string
	}{
		"no engine filter":  {nil, []string{"chmod", "clone3", "fchmodat", "mount", "personality", "read", "write"}, nil},
		"engine denylist":   {denylist, []string{"clone3", "mount", "personality", "read", "write"}, []string{"chmod", "fchmodat"}},
		"engine allowlist":  {allowlist, []string{"chmod", "fchmodat", "read", "write"}, []string{"personality", "clone3", "mount"}},
		"the same filter":   {profile, []string{"chmod", "clone3", "fchmodat", "mount", "personality", "read", "write"}, nil},
		"engine allows all": {&specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, []string{"chmod", "clone3", "fchmodat", "mount", "personality", "read", "write"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			got, narrowed := IntersectSeccomp(profile, tc.engine)
			if a := allowed(got); !slices.Equal(a, tc.wantAllowed) || !slices.Equal(narrowed, tc.wantNarrowed) {
				t.Fatalf("allowed %v narrowed %v, want %v %v", a, narrowed, tc.wantAllowed, tc.wantNarrowed)
			}
			if tc.engine != nil {
				if err := NeverWidens(&specs.Spec{Linux: &specs.Linux{Seccomp: tc.engine}}, &specs.Spec{Linux: &specs.Linux{Seccomp: got}}); err != nil {
					t.Fatalf("the narrowed filter widens: %v", err)
				}
				if err := NeverWidens(&specs.Spec{Linux: &specs.Linux{Seccomp: tc.engine}}, &specs.Spec{Linux: &specs.Linux{Seccomp: profile}}); (err == nil) != (len(tc.wantNarrowed) == 0) {
					t.Fatalf("never-widen on the profile itself: %v", err)
				}
			}
			// Idempotent: narrowing again against the result changes nothing.
			if again, n := IntersectSeccomp(profile, got); n != nil && !reflect.DeepEqual(again, got) {
				t.Fatalf("second pass narrowed %v", n)
			}
		})
	}
	// What the engine denied by a rule keeps the engine's action (ENOSYS
	// steers libc from clone3 to clone); what it allowed only with
	// arguments keeps those conditions.
	got, _ := IntersectSeccomp(profile, allowlist)
	var clone3, personality bool
	for _, r := range got.Syscalls {
		if slices.Equal(r.Names, []string{"clone3"}) && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == enosys {
			clone3 = true
		}
		if slices.Equal(r.Names, []string{"personality"}) && r.Action == specs.ActAllow && len(r.Args) == 1 {
			personality = true
		}
	}
	if !clone3 || !personality {
		t.Fatalf("engine rules not carried over: %+v", got.Syscalls)
	}
	if profile.Syscalls[0].Names[2] != "chmod" || len(profile.Syscalls) != 2 {
		t.Fatal("the profile's filter was modified")
	}
}

// TestIntersectSeccompKeepsNotify: a syscall the engine hands to its
// seccomp agent stays with the agent, whose socket comes along.
func TestIntersectSeccompKeepsNotify(t *testing.T) {
	eperm := uint(1)
	profile := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "write", "mkdir"}, Action: specs.ActAllow}}}
	engine := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock", ListenerMetadata: "m",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	got, narrowed := IntersectSeccomp(profile, engine)
	if !slices.Equal(narrowed, []string{"mkdir"}) || got.ListenerPath != "/run/agent.sock" || got.ListenerMetadata != "m" {
		t.Fatalf("narrowed %v, listener %q %q", narrowed, got.ListenerPath, got.ListenerMetadata)
	}
	if profile.ListenerPath != "" {
		t.Fatal("the profile's filter was modified")
	}
}
