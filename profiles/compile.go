package profiles

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

// Compiled is a validated policy, ready to decide and harden containers.
// It is immutable after Parse and safe for concurrent use.
type Compiled struct {
	// Source is the file the policy came from, or "(embedded default)".
	Source        string
	Policy        Policy
	FailurePolicy FailurePolicy
	profiles      map[string]*Resolved
	rules         []compiledRule
	defaults      compiledRule
}

type compiledRule struct {
	Rule
	mode    spec.Mode
	backend spec.Backend
	// selected holds, per selectable profile, the profile applied when a
	// workload selects it: the profile itself, or a copy that keeps the
	// rule's seccomp.logDenials (withLogDenials).
	selected map[string]*Resolved
}

// Resolved is a profile with every field set (its extends chain merged) and
// its seccomp filter loaded and compiled.
type Resolved struct {
	Profile
	// Chain lists the profiles it extends, itself first.
	Chain    []string
	caps     []string // normalized allow list; nil keeps every capability
	required []specs.LinuxNamespaceType
	ceilings spec.Ceilings
	onExceed spec.OnExceed
	seccomp  *seccompSource
	mutators sync.Map // spec.Host -> []spec.Mutator, built once per host
}

// LogsDenials reports whether a profile of the policy sets
// seccomp.logDenials (SECCOMP_FILTER_FLAG_LOG), so that an entry point asks
// the runtime whether it applies the flag only when it matters.
func (c *Compiled) LogsDenials() bool {
	for _, r := range c.profiles {
		if r.seccomp != nil && r.seccomp.logDenials {
			return true
		}
	}
	return false
}

// Compile validates p and resolves its profiles and rules.
func (p Policy) Compile() (*Compiled, error) {
	if p.APIVersion != APIVersion {
		return nil, fmt.Errorf("apiVersion: %q is not supported (want %q)", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		return nil, fmt.Errorf("kind: %q is not supported (want %q)", p.Kind, Kind)
	}
	c := &Compiled{Policy: p, FailurePolicy: p.FailurePolicy, profiles: map[string]*Resolved{}}
	switch c.FailurePolicy {
	case "":
		c.FailurePolicy = FailDeny
	case FailDeny, FailAllow:
	default:
		return nil, fmt.Errorf("failurePolicy: %q is not deny or allow", p.FailurePolicy)
	}

	raw := builtins()
	for i, up := range p.Profiles {
		field := fmt.Sprintf("profiles[%d]", i)
		if up.Name == "" {
			return nil, fmt.Errorf("%s.name: empty", field)
		}
		if _, dup := raw[up.Name]; dup {
			if slices.Contains(BuiltinNames, up.Name) {
				return nil, fmt.Errorf("%s.name: %q is a built-in profile; extend it under another name", field, up.Name)
			}
			return nil, fmt.Errorf("%s.name: %q is defined twice", field, up.Name)
		}
		if up.Extends == "" {
			return nil, fmt.Errorf("%s (%s).extends: empty; a user profile extends baseline, restricted, strict or another user profile", field, up.Name)
		}
		raw[up.Name] = up
	}
	for _, name := range sortedProfileNames(raw) {
		if _, err := c.resolve(name, raw, nil); err != nil {
			return nil, err
		}
	}

	d := p.Defaults
	if d.Profile == "" {
		d.Profile = Baseline
	}
	var err error
	if c.defaults, err = c.compileRule(Rule{Name: "defaults", Profile: d.Profile, Mode: d.Mode, Backend: d.Backend, Selectable: d.Selectable}, "defaults"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, r := range p.Rules {
		field := fmt.Sprintf("rules[%d]", i)
		if r.Name == "" {
			return nil, fmt.Errorf("%s.name: empty", field)
		}
		if r.Name == "defaults" {
			return nil, fmt.Errorf("%s.name: %q is reserved for the policy's defaults", field, r.Name)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("%s.name: %q is used twice", field, r.Name)
		}
		seen[r.Name] = true
		cr, err := c.compileRule(r, field+" ("+r.Name+")")
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, cr)
	}
	return c, nil
}

func sortedProfileNames(m map[string]Profile) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// resolve merges a profile's extends chain and validates the result.
func (c *Compiled) resolve(name string, raw map[string]Profile, visiting []string) (*Resolved, error) {
	if r, ok := c.profiles[name]; ok {
		return r, nil
	}
	if slices.Contains(visiting, name) {
		return nil, fmt.Errorf("profile %q: extends loop %s", name, strings.Join(append(visiting, name), " -> "))
	}
	p, ok := raw[name]
	if !ok {
		return nil, fmt.Errorf("profile %q does not exist", name)
	}
	merged, chain := p, []string{name}
	if !slices.Contains(BuiltinNames, name) {
		if err := checkPaths(p); err != nil {
			return nil, fmt.Errorf("profile %q: %w", name, err)
		}
		parent, err := c.resolve(p.Extends, raw, append(visiting, name))
		if err != nil {
			return nil, fmt.Errorf("profile %q: extends: %w", name, err)
		}
		merged = merge(parent.Profile, p)
		chain = append(chain, parent.Chain...)
	} else if p.Extends != "" {
		// Built-ins are complete already; only the chain is inherited.
		parent, err := c.resolve(p.Extends, raw, append(visiting, name))
		if err != nil {
			return nil, err
		}
		chain = append(chain, parent.Chain...)
	}
	r, err := validateProfile(merged)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", name, err)
	}
	r.Chain = chain
	c.profiles[name] = r
	return r, nil
}

// checkPaths checks that the path lists of p are absolute. resolve runs it
// on a profile's own lists before they are merged with its parent's, so an
// error is indexed as the user wrote the list, and validateProfile on the
// merged result.
func checkPaths(p Profile) error {
	for i, d := range p.ScratchDirs {
		if !strings.HasPrefix(d, "/") {
			return fmt.Errorf("scratchDirs[%d]: %q is not an absolute path", i, d)
		}
	}
	for _, l := range []struct {
		field string
		paths []spec.HostPath
	}{{"denyHostPaths", p.DenyHostPaths}, {"allowHostPaths", p.AllowHostPaths}} {
		for i, hp := range l.paths {
			if !strings.HasPrefix(hp.Path, "/") {
				return fmt.Errorf("%s[%d].path: %q is not an absolute path", l.field, i, hp.Path)
			}
		}
	}
	for _, l := range []struct {
		field string
		paths []string
	}{{"maskedPaths", p.MaskedPaths}, {"readonlyPaths", p.ReadonlyPaths}, {"allowDevices", p.AllowDevices}} {
		for i, x := range l.paths {
			if !strings.HasPrefix(x, "/") {
				return fmt.Errorf("%s[%d]: %q is not an absolute path", l.field, i, x)
			}
		}
	}
	return nil
}

func validateProfile(p Profile) (*Resolved, error) {
	r := &Resolved{Profile: p}
	if p.Capabilities != nil {
		for i, name := range p.Capabilities.Allow {
			n, err := spec.NormalizeCapability(name)
			if err != nil {
				return nil, fmt.Errorf("capabilities.allow[%d]: %w", i, err)
			}
			if n == "ALL" {
				r.caps = nil
				break
			}
			r.caps = append(r.caps, n)
		}
		if r.caps == nil && !slices.ContainsFunc(p.Capabilities.Allow, func(s string) bool { return strings.EqualFold(s, "ALL") }) {
			r.caps = []string{}
		}
	}
	r.required = slices.Clone(spec.HostNamespaces)
	for i, ns := range p.AllowHostNamespaces {
		t := map[string]specs.LinuxNamespaceType{"pid": specs.PIDNamespace, "ipc": specs.IPCNamespace, "network": specs.NetworkNamespace}[ns]
		if t == "" {
			return nil, fmt.Errorf("allowHostNamespaces[%d]: %q is not pid, ipc or network", i, ns)
		}
		r.required = slices.DeleteFunc(r.required, func(x specs.LinuxNamespaceType) bool { return x == t })
	}
	if err := checkPaths(p); err != nil {
		return nil, err
	}
	if p.ScratchSize != "" && !validTmpfsSize(p.ScratchSize) {
		return nil, fmt.Errorf("scratchSize: %q is not a tmpfs size (bytes with an optional k, m or g suffix, e.g. 64m)", p.ScratchSize)
	}
	if p.AppArmor != nil && *p.AppArmor != "" && !validAppArmorName(*p.AppArmor) {
		return nil, fmt.Errorf("apparmor: invalid profile name %q", *p.AppArmor)
	}
	if p.AppArmor != nil && *p.AppArmor == "unconfined" {
		return nil, errors.New(`apparmor: "unconfined" is not a confinement; leave the field empty to keep the engine's profile`)
	}
	if p.SELinux != nil && slices.Contains(unconfinedSELinuxTypes, p.SELinux.Type) {
		return nil, fmt.Errorf("selinux.type: %q runs the container unconfined", p.SELinux.Type)
	}
	if p.SELinux != nil {
		for _, f := range []struct{ name, v string }{{"user", p.SELinux.User}, {"role", p.SELinux.Role}, {"type", p.SELinux.Type}} {
			if strings.ContainsAny(f.v, ": \t\n") {
				return nil, fmt.Errorf("selinux.%s: %q must not contain ':' or spaces", f.name, f.v)
			}
		}
	}
	if res := p.Resources; res != nil {
		var err error
		if r.onExceed, err = spec.ParseOnExceed(res.OnExceed); err != nil {
			return nil, fmt.Errorf("resources.onExceed: %w", err)
		}
		if res.Memory != "" {
			v, err := ParseBytes(res.Memory)
			if err != nil {
				return nil, fmt.Errorf("resources.memory: %w", err)
			}
			r.ceilings.MemoryBytes = &v
		}
		if res.CPU != "" {
			v, err := ParseCPU(res.CPU)
			if err != nil {
				return nil, fmt.Errorf("resources.cpu: %w", err)
			}
			r.ceilings.CPUMillis = &v
		}
		if res.Pids != nil {
			if *res.Pids <= 0 {
				return nil, fmt.Errorf("resources.pids: %d must be positive", *res.Pids)
			}
			r.ceilings.Pids = res.Pids
		}
		if res.CPUShares != nil {
			if *res.CPUShares < 2 {
				return nil, fmt.Errorf("resources.cpuShares: %d is below the kernel minimum of 2", *res.CPUShares)
			}
			r.ceilings.CPUShares = res.CPUShares
		}
		if res.BlkioWeight != nil {
			if *res.BlkioWeight < 10 || *res.BlkioWeight > 1000 {
				return nil, fmt.Errorf("resources.blkioWeight: %d is outside 10..1000", *res.BlkioWeight)
			}
			r.ceilings.BlkioWeight = res.BlkioWeight
		}
	}
	if p.Seccomp != nil {
		src, err := newSeccompSource(*p.Seccomp, r.caps)
		if err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		r.seccomp = src
	}
	return r, nil
}

// unconfinedSELinuxTypes are SELinux types that switch confinement off; a
// profile may not set them (engines that do are refused by lsm.deny-unconfined).
var unconfinedSELinuxTypes = []string{"spc_t", "unconfined_t", "unconfined_service_t", "kernel_t", "init_t"}

// validTmpfsSize reports whether s is what the kernel's tmpfs size= option
// accepts (a number with an optional k, m, g suffix, either case, or a
// percentage of RAM): `^[1-9][0-9]*[kKmMgG%]?$`.
func validTmpfsSize(s string) bool {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return false
	}
	if n := len(s); n > 1 && strings.IndexByte("kKmMgG%", s[n-1]) >= 0 {
		s = s[:n-1]
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (c *Compiled) compileRule(r Rule, field string) (compiledRule, error) {
	cr := compiledRule{Rule: r}
	var err error
	if cr.mode, err = spec.ParseMode(r.Mode); err != nil {
		return cr, fmt.Errorf("%s.mode: %w", field, err)
	}
	if cr.backend, err = spec.ParseBackend(r.Backend); err != nil {
		return cr, fmt.Errorf("%s.backend: %w", field, err)
	}
	base, ok := c.profiles[r.Profile]
	if !ok {
		return cr, fmt.Errorf("%s.profile: %q does not exist (built-in: %s)", field, r.Profile, strings.Join(BuiltinNames, ", "))
	}
	if r.Match.ContainerType != "" && r.Match.ContainerType != spec.TypeSandbox && r.Match.ContainerType != spec.TypeContainer {
		return cr, fmt.Errorf("%s.match.containerType: %q is not sandbox or container", field, r.Match.ContainerType)
	}
	// Annotations are written by whoever creates the container (Docker,
	// Podman, ctr: the user; Kubernetes: the pod author, where the runtime
	// passes them through). A rule that switches seccomp to complain mode
	// must not be chosen by them.
	if base.seccomp != nil && base.seccomp.complain && len(r.Match.Annotations) > 0 {
		return cr, fmt.Errorf("%s.match.annotations: profile %q sets seccomp.complain, and annotations are chosen by the workload; match it on runtimeHandlers, engineNamespaces or namespaces instead", field, r.Profile)
	}
	// runsc rejects SCMP_ACT_LOG ("invalid action"), and gVisor's Sentry
	// would not report to the host's audit log anyway: complain mode
	// there would neither run nor measure anything.
	if cr.backend == spec.Runsc && base.seccomp != nil {
		if base.seccomp.complain {
			return cr, fmt.Errorf("%s: profile %q sets seccomp.complain, which backend runsc cannot run (runsc rejects SCMP_ACT_LOG and gVisor does not log to the host's audit log)", field, r.Profile)
		}
		if base.seccomp.file != nil {
			f, err := base.seccomp.generate(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: base.caps}}})
			if err != nil {
				return cr, fmt.Errorf("%s: profile %q: %w", field, r.Profile, err)
			}
			if usesAction(f, specs.ActLog) {
				return cr, fmt.Errorf("%s: profile %q: seccomp profile %s uses SCMP_ACT_LOG, which backend runsc rejects", field, r.Profile, base.seccomp.name)
			}
		}
	}
	for i, s := range r.Selectable {
		sel, ok := c.profiles[s]
		if !ok {
			return cr, fmt.Errorf("%s.selectable[%d]: profile %q does not exist", field, i, s)
		}
		if err := tightens(base, sel); err != nil {
			return cr, fmt.Errorf("%s.selectable[%d]: profile %q cannot be selected under profile %q: %w", field, i, s, r.Profile, err)
		}
		if cr.selected == nil {
			cr.selected = map[string]*Resolved{}
		}
		cr.selected[s] = sel
		if base.seccomp != nil && base.seccomp.logDenials && sel.seccomp != nil && !sel.seccomp.logDenials {
			cr.selected[s] = sel.withLogDenials()
		}
	}
	return cr, nil
}

// withLogDenials is r with its seccomp filter flagged for logging. The
// denial log is the operator's: a profile a workload selects replaces the
// rule's filter, and must not take the rule's logging away with it.
func (r *Resolved) withLogDenials() *Resolved {
	p := r.Profile
	sc := *p.Seccomp
	on := true
	sc.LogDenials = &on
	p.Seccomp = &sc
	src := r.seccomp
	return &Resolved{
		Profile: p, Chain: r.Chain, caps: r.caps, required: r.required, ceilings: r.ceilings, onExceed: r.onExceed,
		seccomp: &seccompSource{name: src.name, base: src.base, file: src.file, allow: src.allow, deny: src.deny, complain: src.complain, logDenials: true},
	}
}

// tightens checks that applying sel on top of base cannot loosen the parts
// where sel replaces rather than narrows: the seccomp filter and the LSM
// labels. Everything else composes by intersection.
func tightens(base, sel *Resolved) error {
	// Complain mode logs what it should deny: a workload must not be able
	// to switch its own filter off by selecting a profile.
	if sel.seccomp != nil && sel.seccomp.complain && (base.seccomp == nil || !base.seccomp.complain) {
		return errors.New("it sets seccomp complain mode (syscalls logged, not denied) and the rule's profile does not")
	}
	if base.seccomp != nil && sel.seccomp != nil && base.seccomp.pureBuiltin() && sel.seccomp.pureBuiltin() {
		if !builtinTightens(base.seccomp.base, sel.seccomp.base) {
			return fmt.Errorf("its seccomp filter %s allows syscalls the rule's %s does not", sel.seccomp.base, base.seccomp.base)
		}
	} else if base.seccomp != nil && sel.seccomp != nil {
		caps := base.caps
		probe := func(src *seccompSource) (*specs.LinuxSeccomp, error) {
			return src.generate(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
		}
		bf, err := probe(base.seccomp)
		if err != nil {
			return err
		}
		sf, err := probe(sel.seccomp)
		if err != nil {
			return err
		}
		if extra := missing(allowedNames(bf), allowedNames(sf)); len(extra) > 0 {
			return fmt.Errorf("its seccomp filter allows syscalls the rule's does not: %s", strings.Join(extra, ", "))
		}
		if weaker := weakerConditions(bf, sf); len(weaker) > 0 {
			return fmt.Errorf("its seccomp filter allows %s under weaker argument conditions than the rule's (which allows them only with the conditions it sets)", strings.Join(weaker, ", "))
		}
		bd, sd, err := defaultActions(base.seccomp, sel.seccomp, caps)
		if err != nil {
			return err
		}
		if actionRank(sd) < actionRank(bd) {
			return fmt.Errorf("its seccomp default action %s is weaker than the rule's %s", sd, bd)
		}
	}
	if base.AppArmor != nil && *base.AppArmor != "" && (sel.AppArmor == nil || *sel.AppArmor != *base.AppArmor) {
		return fmt.Errorf("its AppArmor profile differs from the rule's %q", *base.AppArmor)
	}
	if base.SELinux != nil && base.SELinux.Type != "" && (sel.SELinux == nil || sel.SELinux.Type != base.SELinux.Type) {
		return fmt.Errorf("its SELinux type differs from the rule's %q", base.SELinux.Type)
	}
	return nil
}

// allowConditions maps each syscall name f allows (ActAllow or ActLog) to
// the argument conditions of every rule that allows it; an empty list is
// an unconditional allow.
func allowConditions(f *specs.LinuxSeccomp) map[string][][]specs.LinuxSeccompArg {
	out := map[string][][]specs.LinuxSeccompArg{}
	for _, r := range f.Syscalls {
		if r.Action != specs.ActAllow && r.Action != specs.ActLog {
			continue
		}
		for _, n := range r.Names {
			out[n] = append(out[n], r.Args)
		}
	}
	return out
}

// weakerConditions returns, sorted, the syscalls that base allows only
// under argument conditions (socket's address families, clone without
// namespace flags) and sel allows by a rule that does not imply one of
// base's rules for it: a rule allows a call when all its conditions hold,
// so sel's rule must allow no call that every one of base's rules refuses.
// The check is conservative (condImplies): a sel rule it cannot prove
// narrower counts as weaker, and the profile is refused at load with the
// syscall named. Names base does not allow at all are missing's to report.
func weakerConditions(base, sel *specs.LinuxSeccomp) []string {
	b := allowConditions(base)
	var out []string
	for name, sconds := range allowConditions(sel) {
		bconds, ok := b[name]
		if !ok || slices.ContainsFunc(bconds, func(c []specs.LinuxSeccompArg) bool { return len(c) == 0 }) {
			continue
		}
		for _, sc := range sconds {
			if !slices.ContainsFunc(bconds, func(bc []specs.LinuxSeccompArg) bool { return rulesImply(sc, bc) }) {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// rulesImply reports whether every call the conditions sc allow, bc
// allow too: each condition of bc follows from one condition of sc on the
// same argument.
func rulesImply(sc, bc []specs.LinuxSeccompArg) bool {
	for _, b := range bc {
		if !slices.ContainsFunc(sc, func(s specs.LinuxSeccompArg) bool { return s.Index == b.Index && condImplies(s, b) }) {
			return false
		}
	}
	return true
}

// condImplies reports whether an argument that satisfies s satisfies b,
// for the cases harden's and moby's profiles use: the same condition; s an
// equality, which fixes the value (socket's AF_UNIX implies moby's "not
// AF_VSOCK"); and two masked equalities where s checks at least b's bits
// (strict's clone mask against moby's). Anything else is "not known".
func condImplies(s, b specs.LinuxSeccompArg) bool {
	switch {
	case s == b:
		return true
	case s.Op == specs.OpEqualTo:
		return condHolds(b, s.Value)
	case s.Op == specs.OpMaskedEqual && b.Op == specs.OpMaskedEqual:
		return b.Value&^s.Value == 0 && s.ValueTwo&b.Value == b.ValueTwo
	}
	return false
}

// condHolds evaluates condition c on the argument value x, as the kernel
// filter libseccomp builds does (64-bit comparisons).
func condHolds(c specs.LinuxSeccompArg, x uint64) bool {
	switch c.Op {
	case specs.OpEqualTo:
		return x == c.Value
	case specs.OpNotEqual:
		return x != c.Value
	case specs.OpLessThan:
		return x < c.Value
	case specs.OpLessEqual:
		return x <= c.Value
	case specs.OpGreaterThan:
		return x > c.Value
	case specs.OpGreaterEqual:
		return x >= c.Value
	case specs.OpMaskedEqual:
		return x&c.Value == c.ValueTwo
	}
	return false
}

// usesAction reports whether a is f's default action or any rule's.
func usesAction(f *specs.LinuxSeccomp, a specs.LinuxSeccompAction) bool {
	return f.DefaultAction == a || slices.ContainsFunc(f.Syscalls, func(r specs.LinuxSyscall) bool { return r.Action == a })
}

func defaultActions(base, sel *seccompSource, caps []string) (specs.LinuxSeccompAction, specs.LinuxSeccompAction, error) {
	probe := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	bf, err := base.generate(probe)
	if err != nil {
		return "", "", err
	}
	sf, err := sel.generate(probe)
	if err != nil {
		return "", "", err
	}
	return bf.DefaultAction, sf.DefaultAction, nil
}

// actionRank orders seccomp actions from letting a syscall through to
// stopping it; a selectable profile's default must rank at least as high.
func actionRank(a specs.LinuxSeccompAction) int {
	switch a {
	case specs.ActAllow, specs.ActLog:
		return 0
	case specs.ActNotify, specs.ActTrace:
		return 1
	case specs.ActErrno, specs.ActTrap:
		return 2
	}
	return 3 // kill
}

func missing(have, want []string) []string {
	var out []string
	for _, x := range want {
		if _, ok := slices.BinarySearch(have, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

// Profile returns a resolved profile by name.
func (c *Compiled) Profile(name string) (*Resolved, bool) {
	r, ok := c.profiles[name]
	return r, ok
}

// ProfileNames lists every profile the policy knows, built-ins first.
func (c *Compiled) ProfileNames() []string {
	names := slices.Clone(BuiltinNames)
	for _, p := range c.Policy.Profiles {
		names = append(names, p.Name)
	}
	return names
}
