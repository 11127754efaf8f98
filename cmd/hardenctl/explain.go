package main

import (
	"flag"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

var cmdExplain = &command{
	name:    "explain",
	args:    "(--bundle DIR | --spec FILE) [--policy FILE] [flags]",
	summary: "Explain why a container gets its profile and what that profile sets",
	detail: `explain lists each rule the policy tried and whether it matched, the profile
that applies with its extends chain, every control the profile sets
(capabilities, no_new_privileges, non-root, seccomp, AppArmor, SELinux,
resource ceilings, ...) and whether the backend enforces it on this host.
Nothing on disk changes.`,
	examples: []string{
		"hardenctl explain --spec config.json",
		"hardenctl explain --bundle ./bundle --namespace k8s.io --policy ./policy.yaml",
	},
	run: runExplain,
}

// explanation is explain's --json output.
type explanation struct {
	Policy      string             `json:"policy"`
	Spec        string             `json:"spec"`
	Identity    spec.Identity      `json:"identity"`
	Decision    profiles.Decision  `json:"decision"`
	Profiles    []resolvedProfile  `json:"profiles"`
	Enforcement []spec.Enforcement `json:"enforcement"`
	Allowed     bool               `json:"allowed"`
	Refusal     string             `json:"refusal,omitempty"`
}

func runExplain(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	var f outcomeFlags
	f.register(fs)
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(cmd, pos); err != nil {
		return err
	}
	if err := f.in.check(cmd); err != nil {
		return err
	}
	doc, err := f.in.read(c.stdin)
	if err != nil {
		return err
	}
	pc, source, err := f.pol.load()
	if err != nil {
		return err
	}
	host, how := f.host.host()
	id := spec.IdentityFromSpec(doc.Spec)
	f.idf.apply(&id)

	d, chain, derr := pc.Decide(id)
	if derr != nil && !isRefusal(derr) {
		return fmt.Errorf("decide container %s: %w", f.in.name(), derr)
	}
	out, herr := pc.Harden(doc.Spec, id, host) // in memory only
	if herr != nil && !isRefusal(herr) {
		return fmt.Errorf("harden container %s: %w", f.in.name(), herr)
	}
	enf := out.Enforcement
	if len(enf) == 0 {
		// A refused profile selection stops Harden before adaptation;
		// the backend still enforces what it enforces.
		probe, err := spec.Clone(doc.Spec)
		if err != nil {
			return err
		}
		_, enf = spec.Adapt(probe, d.Backend, host)
	}
	ex := explanation{Policy: pc.Source, Spec: f.in.name(), Identity: id, Decision: d, Enforcement: enf, Allowed: herr == nil}
	if herr != nil {
		ex.Refusal = herr.Error()
	}
	for _, r := range chain {
		if r == nil {
			continue
		}
		rp := resolvedProfile{Name: r.Name, Chain: r.Chain}
		body, err := marshalYAML(r.Profile)
		if err != nil {
			return fmt.Errorf("encode profile %s: %w", r.Name, err)
		}
		if err := yaml.Unmarshal(body, &rp.Profile); err != nil {
			return fmt.Errorf("encode profile %s: %w", r.Name, err)
		}
		ex.Profiles = append(ex.Profiles, rp)
	}

	if f.json {
		if err := writeJSON(c.stdout, ex); err != nil {
			return err
		}
	} else {
		printExplanation(c, ex, source, chain, host, how, out, herr)
	}
	if herr != nil {
		return fmt.Errorf("harden container %s: %w", f.in.name(), herr)
	}
	return nil
}

func printExplanation(c *cli, ex explanation, source string, chain []*profiles.Resolved, host spec.Host, how string, out *profiles.Outcome, herr error) {
	w := c.stdout
	t := newTable(w, c.color, 0)
	t.row("policy", source)
	t.row("spec", ex.Spec)
	t.row("container", identityLine(ex.Identity))
	t.row("host", fmt.Sprintf("AppArmor %s, SELinux %s (%s)", yesNo(host.AppArmor), yesNo(host.SELinux), how))
	t.flush()

	fmt.Fprintln(w)
	heading(w, c.color, "Rules, in order (the first that matches decides)")
	for _, why := range ex.Decision.Why {
		color := ""
		if strings.Contains(why, `" matches`) || strings.HasPrefix(why, "no rule matches") {
			color = green
		}
		fmt.Fprintln(w, "  "+paint(c.color, color, why))
	}
	if len(ex.Decision.Why) == 0 {
		fmt.Fprintln(w, "  (the policy has no rules: its defaults apply)")
	}

	fmt.Fprintln(w)
	heading(w, c.color, "Decision")
	d := ex.Decision
	fmt.Fprintf(w, "  rule %s -> profile %s, mode %s, backend %s\n", d.Rule, d.Profile, d.Mode, d.Backend)
	if d.Selected != "" {
		fmt.Fprintf(w, "  profile %s is applied on top, selected by the %s annotation\n", d.Selected, profiles.SelectAnnotation)
	}

	enforced := map[spec.Control]spec.Enforcement{}
	for _, e := range ex.Enforcement {
		enforced[e.Control] = e
	}
	for _, r := range chain {
		if r == nil {
			continue
		}
		fmt.Fprintln(w)
		heading(w, c.color, fmt.Sprintf("Profile %s (extends chain: %s)", r.Name, strings.Join(r.Chain, " -> ")))
		if r.Description != "" {
			fmt.Fprintln(w, "  "+r.Description)
		}
		// What the profile sets goes last: capability lists are long.
		t := newTable(w, c.color, 2)
		t.colored(bold, "CONTROL", "ENFORCED ON "+strings.ToUpper(string(d.Backend)), "PROFILE SETS")
		for _, ctl := range profileControls(r, host) {
			enf, note, color := "by harden", ctl.note, ""
			if ctl.control != "" {
				e := enforced[ctl.control]
				enf, color = yesNo(e.Enforced), green
				if !e.Enforced {
					color = red
				}
				if e.Note != "" {
					note = strings.TrimPrefix(note+"; "+e.Note, "; ")
				}
			}
			value := ctl.value
			if note != "" {
				value += "; " + note
			}
			t.cells(cell{text: ctl.name}, cell{text: enf, color: color}, cell{text: value})
		}
		t.flush()
	}

	fmt.Fprintln(w)
	r := &report{Spec: ex.Spec, Target: "container", Outcome: out, Allowed: herr == nil, Refusal: ex.Refusal}
	r.printResult(c)
	if herr == nil && out.Decision.Mode == spec.Enforce {
		fmt.Fprintln(w, "Run 'hardenctl diff' with the same flags to see each change.")
	}
}

// profileControl is one line of explain's profile table. control is the
// backend control that enforces it, or "" for checks harden itself makes at
// create (refusals).
type profileControl struct {
	name, value, note string
	control           spec.Control
}

func profileControls(r *profiles.Resolved, host spec.Host) []profileControl {
	var cs []profileControl
	add := func(name, value string, ctl spec.Control, note string) {
		cs = append(cs, profileControl{name: name, value: value, control: ctl, note: note})
	}
	flag := func(p *bool, on, off string) string {
		if p != nil && *p {
			return on
		}
		return off
	}

	add("privileged", flag(r.AllowPrivileged, "allowed", "refused (every host device, or CAP_SYS_ADMIN with nothing masked)"), "", "")
	switch {
	case r.Capabilities == nil:
		add("capabilities", "not limited (the engine's set)", spec.CtlCapabilities, "")
	case len(r.Capabilities.Allow) == 0:
		add("capabilities", "none", spec.CtlCapabilities, "all five sets are emptied")
	default:
		add("capabilities", "at most "+strings.Join(r.Capabilities.Allow, ", "), spec.CtlCapabilities, "in all five sets; none is added")
	}
	add("noNewPrivileges", flag(r.NoNewPrivileges, "yes", "no"), spec.CtlNoNewPrivileges, "")
	add("runAsNonRoot", flag(r.RunAsNonRoot, "yes (uid 0 is refused)", "no"), "", "")
	rootfs := flag(r.ReadOnlyRootfs, "yes", "no")
	if r.ReadOnlyRootfs != nil && *r.ReadOnlyRootfs && len(r.ScratchDirs) > 0 {
		rootfs += "; noexec tmpfs at " + strings.Join(r.ScratchDirs, ", ")
		if r.ScratchSize != "" {
			rootfs += " (" + r.ScratchSize + " each)"
		}
	}
	add("readOnlyRootfs", rootfs, spec.CtlReadonlyRootfs, "")
	shared := "none (pid, ipc, network, mount private)"
	if len(r.AllowHostNamespaces) > 0 {
		shared = "may share " + strings.Join(r.AllowHostNamespaces, ", ")
	}
	add("host namespaces", shared, spec.CtlNamespaces, "")
	add("maskedPaths", withExtra(len(spec.DefaultMaskedPaths), r.MaskedPaths), spec.CtlMaskedPaths, "")
	add("readonlyPaths", withExtra(len(spec.DefaultReadonlyPaths), r.ReadonlyPaths), spec.CtlReadonlyPaths, "")
	add("host bind mounts", fmt.Sprintf("%d host paths refused", len(r.DenyHostPaths)), "", "'hardenctl policy show --resolved' lists them")
	add("sysctls", allowList(r.AllowSysctls), "", "")
	add("host devices", allowList(r.AllowDevices), "", "")
	sc := "not set (the engine's filter)"
	if r.Seccomp != nil {
		sc = r.Seccomp.Profile
		for _, a := range r.Seccomp.Allow {
			sc += " +" + a
		}
		for _, d := range r.Seccomp.Deny {
			sc += " -" + d
		}
		if r.Seccomp.Complain != nil && *r.Seccomp.Complain {
			sc += "; COMPLAIN MODE: syscalls it would deny are logged and allowed, the filter protects nothing"
		}
		if r.Seccomp.LogDenials != nil && *r.Seccomp.LogDenials {
			sc += "; denials logged (SECCOMP_FILTER_FLAG_LOG; 'hardenctl denials' reads them)"
		}
	}
	add("seccomp", sc, spec.CtlSeccomp, "")
	aa, aaNote := "not set (the spec's own)", ""
	if r.AppArmor != nil && *r.AppArmor != "" {
		aa = *r.AppArmor
		if !host.AppArmor {
			aaNote = "not written: a label the host cannot enforce would make runc refuse the container"
		}
	}
	add("apparmor", aa, spec.CtlAppArmor, aaNote)
	se, seNote := "not set (the spec's own)", ""
	if r.SELinux != nil && *r.SELinux != (spec.SELinuxLabel{}) {
		var parts []string
		for _, p := range [][2]string{{"user", r.SELinux.User}, {"role", r.SELinux.Role}, {"type", r.SELinux.Type}, {"level", r.SELinux.Level}} {
			if p[1] != "" {
				parts = append(parts, p[0]+" "+p[1])
			}
		}
		se = strings.Join(parts, ", ")
		if !host.SELinux {
			seNote = "not written: a label the host cannot enforce would make runc refuse the container"
		}
	}
	add("selinux", se, spec.CtlSELinux, seNote)
	add("resources", ceilings(r.Resources), spec.CtlCgroups, "")
	return cs
}

// allowList is "only a, b allowed" or "none allowed".
func allowList(items []string) string {
	if len(items) == 0 {
		return "none allowed"
	}
	return "only " + joinShort(items, maxValue) + " allowed"
}

func withExtra(standard int, extra []string) string {
	s := fmt.Sprintf("the %d standard paths", standard)
	if len(extra) > 0 {
		s += " + " + joinShort(extra, maxValue)
	}
	return s
}

// ceilings renders a profile's resource ceilings.
func ceilings(res *profiles.Resources) string {
	if res == nil {
		return "no ceilings"
	}
	var parts []string
	if res.Memory != "" {
		parts = append(parts, "memory <= "+res.Memory)
	}
	if res.CPU != "" {
		parts = append(parts, "cpu <= "+res.CPU)
	}
	if res.CPUShares != nil {
		parts = append(parts, fmt.Sprintf("cpuShares <= %d", *res.CPUShares))
	}
	if res.Pids != nil {
		parts = append(parts, fmt.Sprintf("pids <= %d", *res.Pids))
	}
	if res.BlkioWeight != nil {
		parts = append(parts, fmt.Sprintf("blkioWeight <= %d", *res.BlkioWeight))
	}
	if len(parts) == 0 {
		return "no ceilings"
	}
	onExceed := res.OnExceed
	if onExceed == "" {
		onExceed = string(spec.Lower)
	}
	return strings.Join(parts, ", ") + "; above: " + onExceed
}
