package profiles

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWeakerConditions(t *testing.T) {
	arg := func(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
	}
	allow := func(name string, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args}
	}
	filter := func(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: rules}
	}
	notVsock := arg(0, specs.OpNotEqual, 40, 0)
	unix := arg(0, specs.OpEqualTo, 1, 0)
	for _, tc := range []struct {
		name      string
		base, sel *specs.LinuxSeccomp
		want      []string
	}{
		{"same conditions", filter(allow("socket", unix)), filter(allow("socket", unix)), nil},
		{"unconditional in base", filter(allow("socket")), filter(allow("socket")), nil},
		{"condition dropped", filter(allow("socket", unix)), filter(allow("socket")), []string{"socket"}},
		{"another family", filter(allow("socket", unix)), filter(allow("socket", arg(0, specs.OpEqualTo, 17, 0))), []string{"socket"}},
		{"equality implies not-equal", filter(allow("socket", notVsock)), filter(allow("socket", unix)), nil},
		{"equality to the excluded value", filter(allow("socket", notVsock)), filter(allow("socket", arg(0, specs.OpEqualTo, 40, 0))), []string{"socket"}},
		{"another argument", filter(allow("socket", unix)), filter(allow("socket", arg(1, specs.OpEqualTo, 1, 0))), []string{"socket"}},
		{"an extra condition narrows", filter(allow("socket", unix)), filter(allow("socket", unix, arg(1, specs.OpEqualTo, 1, 0))), nil},
		{"one of two rules", filter(allow("socket", unix), allow("socket", arg(0, specs.OpEqualTo, 2, 0))), filter(allow("socket", arg(0, specs.OpEqualTo, 2, 0))), nil},
		{"wider mask implies", filter(allow("clone", arg(0, specs.OpMaskedEqual, nsFlags, 0))), filter(allow("clone", arg(0, specs.OpMaskedEqual, nsFlags|0x80, 0))), nil},
		{"narrower mask does not", filter(allow("clone", arg(0, specs.OpMaskedEqual, nsFlags, 0))), filter(allow("clone", arg(0, specs.OpMaskedEqual, 0x20000000, 0))), []string{"clone"}},
		{"an operator it cannot compare", filter(allow("clone", arg(0, specs.OpMaskedEqual, nsFlags, 0))), filter(allow("clone", arg(0, specs.OpLessThan, 1, 0))), []string{"clone"}},
		{"names base lacks are not its business", filter(allow("socket", unix)), filter(allow("mount")), nil},
		{"log counts as allow", filter(allow("socket", unix)), filter(specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActLog}), []string{"socket"}},
		{"errno rules are not allows", filter(allow("socket", unix)), filter(specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActErrno}), nil},
		{"sorted", filter(allow("socket", unix), allow("clone", arg(0, specs.OpMaskedEqual, nsFlags, 0))), filter(allow("socket"), allow("clone")), []string{"clone", "socket"}},
	} {
		if got := weakerConditions(tc.base, tc.sel); !slices.Equal(got, tc.want) {
			t.Errorf("%s: weakerConditions = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSelectableUnderBaseline: strict, and a profile that extends strict,
// may be selected under baseline: strict's socket and clone conditions
// imply moby's (an address family other than AF_VSOCK; a clone mask with
// every namespace bit moby checks).
func TestSelectableUnderBaseline(t *testing.T) {
	policy := "apiVersion: harden.dev/v1alpha1\nkind: Policy\nprofiles:\n- {name: narrow, extends: strict, seccomp: {deny: [mount]}}\nrules:\n- {name: b, profile: baseline, selectable: [strict, narrow]}\n"
	if _, err := Parse([]byte(policy)); err != nil {
		t.Fatal(err)
	}
}

// TestRestrictCloneArch: strict's clone rule checks argument 1 on s390 and
// s390x, where clone takes the stack first, and argument 0 elsewhere; a
// filter for both kinds is refused, since on the others argument 1 is a
// stack pointer the caller picks.
func TestRestrictCloneArch(t *testing.T) {
	for _, tc := range []struct {
		arches  []specs.Arch
		goarch  string
		want    uint
		refused bool
	}{
		{[]specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, "amd64", 0, false},
		{[]specs.Arch{specs.ArchAARCH64, specs.ArchARM}, "arm64", 0, false},
		{[]specs.Arch{specs.ArchS390X, specs.ArchS390}, "s390x", 1, false},
		{[]specs.Arch{specs.ArchS390X}, "amd64", 1, false},
		{nil, "s390x", 1, false},
		{nil, "amd64", 0, false},
		{[]specs.Arch{specs.ArchX86_64, specs.ArchS390X}, "amd64", 0, true},
	} {
		f := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: tc.arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"clone", "read"}, Action: specs.ActAllow}}}
		idx, err := cloneFlagsArg(tc.arches, tc.goarch)
		if tc.refused {
			if err == nil || !strings.Contains(err.Error(), "s390") {
				t.Errorf("%v: err %v, want a refusal naming s390", tc.arches, err)
			}
			continue
		}
		if err != nil || idx != tc.want {
			t.Errorf("%v on %s: index %d (%v), want %d", tc.arches, tc.goarch, idx, err, tc.want)
		}
		if tc.goarch != runtime.GOARCH && len(tc.arches) == 0 {
			continue // restrictClone uses this process's GOARCH
		}
		if err := restrictClone(f); err != nil {
			t.Fatalf("%v: restrictClone: %v", tc.arches, err)
		}
		conds := allowConditions(f)["clone"]
		if len(conds) != 1 || len(conds[0]) != 1 || conds[0][0].Index != tc.want || conds[0][0].Op != specs.OpMaskedEqual || conds[0][0].Value != nsFlags {
			t.Errorf("%v: clone allowed under %v, want flags (argument %d) without namespace bits", tc.arches, conds, tc.want)
		}
	}
}
