package profiles

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestWeakerConditions(t *testing.T) {
	const nsFlags = 0x7E020000
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
