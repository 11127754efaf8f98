package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

// measurePolicy has a complain profile for one namespace and a logging one
// for the rest.
const measurePolicy = header + `
profiles:
- name: measure
  extends: baseline
  seccomp: {complain: true, logDenials: true}
- name: logged
  extends: restricted
  seccomp: {logDenials: true}
rules:
- {name: measuring, match: {namespaces: [measure]}, profile: measure, selectable: [strict]}
- {name: audited, match: {namespaces: [audit]}, profile: measure, mode: audit}
defaults: {profile: logged}
`

// withDockerSeccomp gives a spec the default action Docker's and
// containerd's RuntimeDefault filters have: deny with EPERM.
func withDockerSeccomp(s *specs.Spec) *specs.Spec {
	eperm := uint(1)
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}}}
	return s
}

func changeRules(out *Outcome) []string {
	var rules []string
	for _, c := range out.Changes {
		rules = append(rules, c.Rule)
	}
	return rules
}

func TestSeccompComplainMode(t *testing.T) {
	c := mustParse(t, measurePolicy)
	s := withDockerSeccomp(engineSpec("measure", "web", 0))
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil {
		t.Fatalf("complain mode refused: %v", err)
	}
	rules := changeRules(out)
	if !slices.Contains(rules, RuleSeccompComplain) || !slices.Contains(rules, RuleSeccompLog) {
		t.Fatalf("the record lacks the complain or log change: %v", rules)
	}
	for _, ch := range out.Changes {
		if ch.Rule == RuleSeccompComplain && (ch.After != string(specs.ActLog) || !strings.Contains(ch.Reason, "ALLOWED")) {
			t.Errorf("complain change %+v", ch)
		}
	}
	f := s.Linux.Seccomp
	if f.DefaultAction != specs.ActLog || !slices.Contains(f.Flags, specs.LinuxSeccompFlagLog) {
		t.Fatalf("filter default %s flags %v", f.DefaultAction, f.Flags)
	}
	for _, r := range f.Syscalls {
		if spec.DeniesSyscall(r.Action) && !(r.Action == specs.ActErrno && slices.Equal(r.Names, []string{"clone3"})) {
			t.Errorf("rule %v still denies with %s", r.Names, r.Action)
		}
	}
	if !slices.ContainsFunc(f.Syscalls, func(r specs.LinuxSyscall) bool {
		return slices.Contains(r.Names, "clone3") && r.Action == specs.ActErrno
	}) {
		t.Error("clone3's ENOSYS rule is gone: libc would use clone3, which the filter cannot inspect")
	}
	// The allowed set is the profile's enforce filter's: complain changes
	// actions only. (Enforce also narrows the profile's filter to what the
	// engine's allowed, spec.IntersectSeccomp; complain does not.)
	enforce := mustParse(t, header+"defaults: {profile: baseline}\n")
	e := engineSpec("measure", "web", 0)
	if _, err := enforce.Harden(e, spec.IdentityFromSpec(e), spec.Host{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(allowedNames(f), allowedNames(e.Linux.Seccomp)) || len(f.Syscalls) != len(e.Linux.Seccomp.Syscalls) {
		t.Error("complain changed which syscalls the rules name")
	}
	for _, e := range out.Enforcement {
		if e.Control == spec.CtlSeccomp && (e.Enforced || !strings.Contains(e.Note, "complain")) {
			t.Errorf("a complain filter reported as %+v", e)
		}
	}
	again, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil || len(again.Changes) != 0 {
		t.Fatalf("second pass: %v %v", again.Changes, err)
	}

	// Audit mode: nothing changes, the record says what complain would do.
	s = withDockerSeccomp(engineSpec("audit", "web", 0))
	orig, _ := spec.Clone(s)
	out, err = c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil || !slices.Contains(changeRules(out), RuleSeccompComplain) {
		t.Fatalf("audit: %v %v", changeRules(out), err)
	}
	if s.Linux.Seccomp.DefaultAction != orig.Linux.Seccomp.DefaultAction || s.Linux.Seccomp.Flags != nil {
		t.Fatal("audit mode changed the filter")
	}

	// logDenials alone keeps every action and adds the flag.
	s = withDockerSeccomp(engineSpec("other", "web", 1000))
	out, err = c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil || slices.Contains(changeRules(out), RuleSeccompComplain) || !slices.Contains(changeRules(out), RuleSeccompLog) {
		t.Fatalf("logged: %v %v", changeRules(out), err)
	}
	if s.Linux.Seccomp.DefaultAction != specs.ActErrno || !slices.Equal(s.Linux.Seccomp.Flags, []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}) {
		t.Fatalf("logged filter: %s %v", s.Linux.Seccomp.DefaultAction, s.Linux.Seccomp.Flags)
	}
}

// TestComplainIsThePolicysChoice: only the rule's own profile can switch
// complain mode on; nothing the workload controls can.
func TestComplainIsThePolicysChoice(t *testing.T) {
	c := mustParse(t, measurePolicy)

	// A selected profile on top of a complain rule enforces again, and
	// the never-widen check then gets no complain exception. (No engine
	// filter here: strict is narrowed against the complain filter, which
	// allows everything, so against a stricter engine filter the
	// never-widen check refuses the container; docs/architecture.md,
	// known gaps.)
	s := engineSpec("measure", "web", 1000)
	s.Annotations[SelectAnnotation] = Strict
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("selected strict left complain mode on: %s (%v)", s.Linux.Seccomp.DefaultAction, changeRules(out))
	}
	// The rule's denial logging stays: the workload cannot turn it off by
	// selecting a profile that does not set it.
	if !slices.Contains(s.Linux.Seccomp.Flags, specs.LinuxSeccompFlagLog) {
		t.Fatalf("selected strict dropped the rule's logDenials: flags %v", s.Linux.Seccomp.Flags)
	}
	_, chain, _ := c.Decide(spec.IdentityFromSpec(s))
	if exc := seccompExceptions(chain); len(exc) != 0 {
		t.Fatalf("exceptions %v for a chain that ends in strict", exc)
	}
	measure, _ := c.Profile("measure")
	if exc := seccompExceptions([]*Resolved{measure}); !slices.Equal(exc, []spec.Exception{spec.SeccompComplain}) {
		t.Fatalf("exceptions %v for the complain profile", exc)
	}

	// The annotation cannot pick the complain profile where the rule does
	// not list it.
	s = withDockerSeccomp(engineSpec("other", "web", 1000))
	s.Annotations[SelectAnnotation] = "measure"
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{}); !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), RuleSelect) {
		t.Fatalf("selecting the complain profile: %v", err)
	}

	// An engine (or workload) filter that already logs instead of denying
	// is replaced by the policy's, which denies.
	s = engineSpec("other", "web", 1000)
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActLog}
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{}); err != nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("engine's SCMP_ACT_LOG filter: %v %v", s.Linux.Seccomp.DefaultAction, err)
	}
}

// TestNeverWidensGuardsSeccompDefault: a filter that would let syscalls
// through where the engine's denied them is refused, unless it is the
// policy's complain mode.
func TestNeverWidensGuardsSeccompDefault(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log.json")
	if err := os.WriteFile(p, []byte(`{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, header+"profiles:\n- {name: f, extends: baseline, seccomp: {profile: "+p+"}}\n- {name: fc, extends: f, seccomp: {complain: true}}\n"+
		"rules:\n- {name: file, match: {namespaces: [file]}, profile: f}\n- {name: complain, match: {namespaces: [complain]}, profile: fc}\n")

	s := withDockerSeccomp(engineSpec("file", "web", 0))
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), RuleInvariant) || !strings.Contains(err.Error(), "defaultAction") {
		t.Fatalf("a SCMP_ACT_LOG file over Docker's filter: %v", err)
	}
	if out.Violations[len(out.Violations)-1].Rule != RuleInvariant {
		t.Errorf("violations %v", out.Violations)
	}
	// Without an engine filter, nothing is widened.
	s = engineSpec("file", "web", 0)
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{}); err != nil {
		t.Fatal(err)
	}
	// The same file with complain: true is the policy's explicit choice.
	s = withDockerSeccomp(engineSpec("complain", "web", 0))
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{}); err != nil {
		t.Fatalf("complain: %v", err)
	}
	if s.Linux.Seccomp.Syscalls[0].Action != specs.ActLog {
		t.Errorf("ptrace rule: %s", s.Linux.Seccomp.Syscalls[0].Action)
	}
	// runsc rejects SCMP_ACT_LOG: such a file cannot be a runsc rule's.
	if _, err := Parse([]byte(header + "profiles:\n- {name: f, extends: baseline, seccomp: {profile: " + p + "}}\nrules:\n- {name: g, profile: f, backend: runsc}\n")); err == nil || !strings.Contains(err.Error(), "SCMP_ACT_LOG") {
		t.Fatalf("runsc with a SCMP_ACT_LOG file: %v", err)
	}
}

func TestLogDenialsOnOtherBackends(t *testing.T) {
	c := mustParse(t, header+"profiles:\n- {name: logged, extends: restricted, seccomp: {logDenials: true}}\n"+
		"rules:\n- {name: g, match: {namespaces: [g]}, profile: logged, backend: runsc}\n- {name: k, match: {namespaces: [k]}, profile: logged, backend: kata}\n")
	s := engineSpec("g", "web", 1000)
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{RunscOCISeccomp: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Seccomp.Flags) != 0 {
		t.Fatalf("runsc spec keeps flags runsc ignores: %v", s.Linux.Seccomp.Flags)
	}
	last := out.Changes[len(out.Changes)-1]
	if last.Rule != "backend.runsc" || last.Path != "linux.seccomp.flags" {
		t.Fatalf("last change %+v, want the runsc adaptation", last)
	}
	s = engineSpec("k", "web", 1000)
	out, err = c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Enforcement {
		if e.Control == spec.CtlSeccomp && (e.Enforced || !strings.Contains(e.Note, "guest kernel")) {
			t.Errorf("kata seccomp enforcement %+v", e)
		}
	}
}

// TestGoldenSeccompLog hardens captured engine specs with a complain
// profile and a logging one, and compares spec and changes with
// testdata/golden/seccomp-log. Refresh with:
// go test ./profiles -run TestGoldenSeccompLog -update
func TestGoldenSeccompLog(t *testing.T) {
	variants := map[string]string{
		"complain":   "profiles:\n- {name: v, extends: baseline, seccomp: {complain: true, logDenials: true}}\ndefaults: {profile: v}\n",
		"logdenials": "profiles:\n- {name: v, extends: strict, seccomp: {logDenials: true}}\ndefaults: {profile: v}\n",
	}
	for _, input := range []string{"docker29-default", "ctr-run-default", "cri-container"} {
		for variant, policy := range variants {
			t.Run(input+"/"+variant, func(t *testing.T) {
				data, err := os.ReadFile(filepath.Join("..", "spec", "testdata", "engines", input+".json"))
				if err != nil {
					t.Fatal(err)
				}
				doc, err := spec.Parse(data)
				if err != nil {
					t.Fatal(err)
				}
				doc.Spec.Process.User.UID = 1000 // strict refuses root
				c := mustParse(t, header+policy)
				out, err := c.Harden(doc.Spec, spec.IdentityFromSpec(doc.Spec), goldenHost)
				if err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join("testdata", "golden", "seccomp-log", input)
				changes, _ := json.MarshalIndent(out.Changes, "", "  ")
				assertGolden(t, filepath.Join(dir, variant+".changes.json"), append(changes, '\n'))
				hardened, err := doc.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, hardened, "", "  "); err != nil {
					t.Fatal(err)
				}
				assertGolden(t, filepath.Join(dir, variant+".out.json"), append(pretty.Bytes(), '\n'))
				if again, err := c.Harden(doc.Spec, spec.IdentityFromSpec(doc.Spec), goldenHost); err != nil || len(again.Changes) != 0 {
					t.Fatalf("second pass: %v %v", again.Changes, err)
				}
			})
		}
	}
}
