package profiles

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

// Stable rule IDs. They appear in changes, refusals, logs and docs.
const (
	RulePrivileged     = "privileged.deny"
	RuleUnconfinedLSM  = "lsm.deny-unconfined"
	RuleCaps           = "caps.drop"
	RuleNoNewPrivs     = "process.no-new-privileges"
	RuleNonRoot        = "user.non-root"
	RuleHostNamespaces = "namespaces.host"
	RuleHostMounts     = "mounts.deny-host-path"
	RuleSysctls        = "sysctls.safe"
	RuleDevices        = "devices.deny-host"
	RuleMaskPaths      = "paths.mask"
	RuleReadonlyPaths  = "paths.readonly"
	RuleReadonlyRootfs = "rootfs.readonly"
	RuleScratch        = "rootfs.scratch"
	RuleResources      = "resources.ceiling"
	RuleAppArmor       = "apparmor.profile"
	RuleSELinux        = "selinux.label"
	RuleSeccomp        = "seccomp.profile"
	// RuleSeccompComplain records that the filter runs in complain mode.
	RuleSeccompComplain = "seccomp.complain"
	// RuleSeccompLog records SECCOMP_FILTER_FLAG_LOG on the filter.
	RuleSeccompLog = "seccomp.log-denials"
	RuleSelect     = "profile.select"
	RuleInvariant  = "invariant.never-widen"
)

// Mutators returns the profile's mutators in the order Apply must run them:
// refusals that read the engine's original intent first (privileged looks at
// the capabilities before they are dropped), then capabilities, user and
// no_new_privileges, namespaces, mounts and paths, resources, LSM labels,
// and seccomp last because its filter depends on the final capabilities.
// LSM labels are set only where the host enforces that LSM: a label on a
// host without it would make runc refuse the container for no protection.
//
// The list depends only on the profile and the host, so it is built once per
// host and reused: mutators hold no per-container state.
func (r *Resolved) Mutators(h spec.Host) []spec.Mutator {
	if v, ok := r.mutators.Load(h); ok {
		return v.([]spec.Mutator)
	}
	ms := r.buildMutators(h)
	r.mutators.Store(h, ms)
	return ms
}

func (r *Resolved) buildMutators(h spec.Host) []spec.Mutator {
	var ms []spec.Mutator
	if r.AllowPrivileged == nil || !*r.AllowPrivileged {
		ms = append(ms, spec.DenyPrivileged(RulePrivileged))
	}
	if r.AllowUnconfinedLSM == nil || !*r.AllowUnconfinedLSM {
		ms = append(ms, spec.DenyUnconfinedLSM(RuleUnconfinedLSM, spec.PodSecuritySELinuxTypes))
	}
	if r.caps != nil {
		ms = append(ms, spec.DropCapabilities(RuleCaps, r.caps))
	}
	if r.NoNewPrivileges != nil && *r.NoNewPrivileges {
		ms = append(ms, spec.SetNoNewPrivileges(RuleNoNewPrivs))
	}
	if r.RunAsNonRoot != nil && *r.RunAsNonRoot {
		ms = append(ms, spec.RequireNonRoot(RuleNonRoot))
	}
	ms = append(ms,
		spec.DenyHostNamespaces(RuleHostNamespaces, r.required),
		spec.DenyHostMounts(RuleHostMounts, r.DenyHostPaths, r.AllowHostPaths),
		spec.RestrictSysctls(RuleSysctls, r.AllowSysctls),
		spec.RestrictDevices(RuleDevices, r.AllowDevices),
		spec.MaskPaths(RuleMaskPaths, append(slices.Clone(spec.DefaultMaskedPaths), r.MaskedPaths...)),
		spec.ReadonlyPaths(RuleReadonlyPaths, append(slices.Clone(spec.DefaultReadonlyPaths), r.ReadonlyPaths...)),
	)
	if r.ReadOnlyRootfs != nil && *r.ReadOnlyRootfs {
		ms = append(ms, spec.SetReadonlyRootfs(RuleReadonlyRootfs), spec.AddScratchTmpfs(RuleScratch, r.ScratchDirs, r.ScratchSize))
	}
	ms = append(ms, spec.LimitResources(RuleResources, r.ceilings, r.onExceed, true))
	ms = append(ms, r.lsmMutators(h, nil)...)
	if r.seccomp != nil {
		ms = append(ms, spec.SetSeccompProfile(RuleSeccomp, r.seccomp.name, r.seccomp.build, r.seccomp.options()...))
	}
	return ms
}

// lsmMutators sets the AppArmor profile and SELinux label. For an exec the
// container's own labels win, so the new process lands in the same domain.
func (r *Resolved) lsmMutators(h spec.Host, container *specs.Process) []spec.Mutator {
	var ms []spec.Mutator
	apparmor := ""
	if r.AppArmor != nil {
		apparmor = *r.AppArmor
	}
	if container != nil && container.ApparmorProfile != "" {
		apparmor = container.ApparmorProfile
	}
	if h.AppArmor && apparmor != "" {
		ms = append(ms, spec.SetAppArmorProfile(RuleAppArmor, apparmor))
	}
	var label spec.SELinuxLabel
	if r.SELinux != nil {
		label = *r.SELinux
	}
	if container != nil && container.SelinuxLabel != "" {
		label = parseLabel(container.SelinuxLabel)
	}
	if h.SELinux && label != (spec.SELinuxLabel{}) {
		ms = append(ms, spec.SetSELinuxLabel(RuleSELinux, label))
	}
	return ms
}

func parseLabel(s string) spec.SELinuxLabel {
	var l spec.SELinuxLabel
	parts := strings.SplitN(s, ":", 4)
	for i, p := range parts {
		switch i {
		case 0:
			l.User = p
		case 1:
			l.Role = p
		case 2:
			l.Type = p
		case 3:
			l.Level = p
		}
	}
	return l
}

// Decide finds the rule for a container: the first rule whose match fits,
// else the defaults. A profile selected by annotation is checked against the
// rule's selectable list.
func (c *Compiled) Decide(id spec.Identity) (Decision, []*Resolved, error) {
	rule := c.defaults
	var why []string
	for _, r := range c.rules {
		ok, w := r.Match.matches(id)
		if ok {
			rule = r
			why = append(why, fmt.Sprintf("rule %q matches: %v", r.Name, w))
			break
		}
		why = append(why, fmt.Sprintf("rule %q does not match: %v", r.Name, w))
	}
	if rule.Name == "defaults" {
		why = append(why, "no rule matches: the policy's defaults apply")
	}
	d := Decision{Rule: rule.Name, Profile: rule.Profile, Mode: rule.mode, Backend: rule.backend, Why: why}
	chain := []*Resolved{c.profiles[rule.Profile]}
	if sel := id.Annotations[SelectAnnotation]; sel != "" && sel != rule.Profile {
		if !slices.Contains(rule.Selectable, sel) {
			return d, chain, spec.Violations{{
				Rule: RuleSelect, Field: "annotations." + SelectAnnotation, Value: sel,
				Reason: fmt.Sprintf("rule %q does not let workloads select this profile (selectable: %v)", rule.Name, rule.Selectable),
			}}
		}
		d.Selected = sel
		d.Why = append(d.Why, fmt.Sprintf("annotation %s selects profile %q on top of %q", SelectAnnotation, sel, rule.Profile))
		chain = append(chain, rule.selected[sel])
	}
	return d, chain, nil
}

// Outcome is the full account of one hardening: who, which rule, what
// changed or would change, what was refused, what the backend enforces.
type Outcome struct {
	Identity    spec.Identity      `json:"identity"`
	Decision    Decision           `json:"decision"`
	Changes     []spec.Change      `json:"changes"`
	Violations  []spec.Violation   `json:"violations,omitempty"`
	Enforcement []spec.Enforcement `json:"enforcement,omitempty"`
}

// Harden decides and applies the policy to s. In enforce mode s is replaced
// by the hardened spec (only when the result is allowed); in audit mode it is
// left as it was and the outcome lists what enforce mode would do. The error
// is a *spec.ViolationError (errors.Is spec.ErrPolicyViolation) when the
// container must not start.
func (c *Compiled) Harden(s *specs.Spec, id spec.Identity, h spec.Host) (*Outcome, error) {
	d, chain, err := c.Decide(id)
	out := &Outcome{Identity: id, Decision: d, Changes: []spec.Change{}}
	refused, err := selectRefusal(out, err)
	if err != nil {
		return out, err
	}
	work, err := spec.Clone(s)
	if err != nil {
		return out, err
	}
	ms := chain[0].Mutators(h)
	for _, r := range chain[1:] {
		ms = append(ms[:len(ms):len(ms)], r.Mutators(h)...)
	}
	res, err := spec.Apply(work, spec.Enforce, ms...)
	out.Changes, out.Violations = res.Changes, append(refused, res.Violations...)
	if err != nil && !isViolation(err) {
		return out, err
	}
	if werr := spec.NeverWidens(s, work, seccompExceptions(chain)...); werr != nil {
		// A bug in a mutator, never the workload's doing: fail closed.
		out.Violations = append(out.Violations, spec.Violation{Rule: RuleInvariant, Field: "spec", Reason: werr.Error()})
		return out, &spec.ViolationError{Violations: out.Violations}
	}
	adaptChanges, enf := spec.Adapt(work, d.Backend, h)
	out.Changes = append(out.Changes, adaptChanges...)
	out.Enforcement = enf
	if d.Mode == spec.Audit {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	*s = *work
	return out, nil
}

// seccompExceptions are the widenings NeverWidens must accept for chain:
// complain mode, when the filter that ends up in the spec (the last
// profile's that sets one) asks for it. A rule's complain profile under a
// selected profile that enforces gets no exception.
func seccompExceptions(chain []*Resolved) []spec.Exception {
	for i := len(chain) - 1; i >= 0; i-- {
		if src := chain[i].seccomp; src != nil {
			if src.complain {
				return []spec.Exception{spec.SeccompComplain}
			}
			return nil
		}
	}
	return nil
}

// selectRefusal takes Decide's error. A refused harden.dev/profile
// selection is recorded in out; in audit mode it is returned, so that the
// caller goes on with the rule's own profile (Decide's chain holds only it)
// and records both. Otherwise, and for any other error, it returns the
// error to stop with.
func selectRefusal(out *Outcome, err error) (spec.Violations, error) {
	if err == nil {
		return nil, nil
	}
	vs, ok := err.(spec.Violations)
	if !ok {
		return nil, err
	}
	out.Violations = vs
	if out.Decision.Mode == spec.Audit {
		return vs, nil
	}
	return nil, &spec.ViolationError{Violations: vs}
}

func isViolation(err error) bool {
	_, ok := err.(*spec.ViolationError)
	return ok
}

// HardenExec hardens the process of an exec (ctr task exec, crictl exec,
// docker exec, runc exec --process). Exec requests are built by the engine
// from the spec it stored, not from the hardened bundle, so they can carry
// every capability the engine would have granted. The process gets at most
// the capabilities the container itself has after hardening (container is
// the hardened bundle spec), keeps no_new_privileges, and runs in the
// container's AppArmor profile and SELinux label. id must be the identity
// the container was created with (IdentityFromSpec of the container plus
// what the entry point adds), so exec is decided by the same rule as create.
func (c *Compiled) HardenExec(proc *specs.Process, container *specs.Spec, id spec.Identity, h spec.Host) (*Outcome, error) {
	d, chain, err := c.Decide(id)
	out := &Outcome{Identity: id, Decision: d, Changes: []spec.Change{}}
	refused, err := selectRefusal(out, err)
	if err != nil {
		return out, err
	}
	work, err := spec.Clone(&specs.Spec{Process: proc})
	if err != nil {
		return out, err
	}
	if work.Process == nil {
		return out, fmt.Errorf("exec: no process")
	}
	var cp *specs.Process
	if container != nil {
		cp = container.Process
	}
	var ms []spec.Mutator
	if cp != nil && cp.Capabilities != nil {
		ms = append(ms, spec.DropCapabilities(RuleCaps, cp.Capabilities.Bounding))
	} else if cp != nil {
		ms = append(ms, spec.DropCapabilities(RuleCaps, nil))
	}
	if cp != nil && cp.NoNewPrivileges {
		ms = append(ms, spec.SetNoNewPrivileges(RuleNoNewPrivs))
	}
	for _, r := range chain {
		if r.caps != nil {
			ms = append(ms, spec.DropCapabilities(RuleCaps, r.caps))
		}
		if r.NoNewPrivileges != nil && *r.NoNewPrivileges {
			ms = append(ms, spec.SetNoNewPrivileges(RuleNoNewPrivs))
		}
		if r.RunAsNonRoot != nil && *r.RunAsNonRoot {
			ms = append(ms, spec.RequireNonRoot(RuleNonRoot))
		}
		ms = append(ms, r.lsmMutators(h, cp)...)
	}
	res, err := spec.Apply(work, spec.Enforce, ms...)
	out.Changes, out.Violations = res.Changes, append(refused, res.Violations...)
	if err != nil && !isViolation(err) {
		return out, err
	}
	if werr := spec.NeverWidens(&specs.Spec{Process: proc}, work); werr != nil {
		out.Violations = append(out.Violations, spec.Violation{Rule: RuleInvariant, Field: "process", Reason: werr.Error()})
		return out, &spec.ViolationError{Violations: out.Violations}
	}
	if d.Mode == spec.Audit {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	*proc = *work.Process
	return out, nil
}

// HardenUpdate holds a resource update (runc update -r, the shim's Update)
// at or below the ceilings of the container's profile. id is the
// container's identity, as for HardenExec.
func (c *Compiled) HardenUpdate(r *specs.LinuxResources, id spec.Identity) (*Outcome, error) {
	d, chain, err := c.Decide(id)
	out := &Outcome{Identity: id, Decision: d, Changes: []spec.Change{}}
	refused, err := selectRefusal(out, err)
	if err != nil {
		return out, err
	}
	if r == nil {
		return out, nil
	}
	target := r
	if d.Mode == spec.Audit {
		cp, err := spec.Clone(&specs.Spec{Linux: &specs.Linux{Resources: r}})
		if err != nil {
			return out, err
		}
		target = cp.Linux.Resources
	}
	var vs spec.Violations
	for _, p := range chain {
		changes, err := spec.LimitUpdate(RuleResources, target, p.ceilings, p.onExceed)
		out.Changes = append(out.Changes, changes...)
		if v, ok := err.(spec.Violations); ok {
			vs = append(vs, v...)
		} else if err != nil {
			return out, err
		}
	}
	out.Violations = append(refused, vs...)
	if len(vs) > 0 && d.Mode == spec.Enforce {
		return out, &spec.ViolationError{Violations: vs}
	}
	return out, nil
}
