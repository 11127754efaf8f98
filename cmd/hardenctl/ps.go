package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

var cmdPs = &command{
	name:    "ps",
	args:    "[--config FILE] [--json]",
	summary: "List the containers harden created, with the posture the kernel reports for each",
	detail: `ps reads the records the shim and harden-runc keep for each container they
created (StateDir/containers, default /run/harden) and, for each running one,
what the kernel says about its init process: capabilities, no_new_privileges,
seccomp mode. A container whose kernel view disagrees with its decision is
flagged.`,
	examples: []string{"hardenctl ps", "hardenctl ps --json"},
	run:      runPs,
}

var cmdInspect = &command{
	name:    "inspect",
	args:    "ID [--namespace NS] [--config FILE] [--json]",
	summary: "Show one container's decision and its effective posture",
	examples: []string{
		"hardenctl inspect web-1",
		"hardenctl inspect --namespace k8s.io 3f2a... --json",
	},
	run: runInspect,
}

// psEntry is one container in ps and inspect output.
type psEntry struct {
	Record  node.Record   `json:"record"`
	Running bool          `json:"running"`
	Posture *node.Posture `json:"posture,omitempty"`
	// Mismatches list where the kernel disagrees with the decision.
	Mismatches []string `json:"mismatches,omitempty"`
}

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("HARDEN_CONFIG")
	if def == "" {
		def = node.DefaultConfigPath
	}
	return fs.String("config", def, "harden's node configuration `FILE` (its StateDir holds the records)")
}

func loadEntries(configPath string) ([]psEntry, error) {
	cfg, err := node.LoadConfig(configPath, true)
	if err != nil {
		return nil, err
	}
	recs, err := cfg.Recorder().States()
	if err != nil {
		return nil, err
	}
	out := make([]psEntry, 0, len(recs))
	for _, r := range recs {
		e := psEntry{Record: r}
		if pid := r.Pid(); pid > 0 {
			if p, err := node.ReadPosture(pid); err == nil {
				e.Running, e.Posture = true, &p
				e.Mismatches = mismatches(r, p)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// mismatches compares a running container with what its decision promised.
func mismatches(r node.Record, p node.Posture) []string {
	if r.Outcome == nil || r.Result != node.ResultHardened {
		return nil
	}
	var out []string
	enforced := map[spec.Control]bool{}
	for _, e := range r.Enforcement {
		enforced[e.Control] = e.Enforced
	}
	if enforced[spec.CtlSeccomp] && hasChange(r, "linux.seccomp") && p.Seccomp != 2 {
		out = append(out, fmt.Sprintf("seccomp mode is %d, the decision installed a filter", p.Seccomp))
	}
	if hasChange(r, "process.noNewPrivileges") && !p.NoNewPrivs {
		out = append(out, "no_new_privileges is off, the decision turned it on")
	}
	return out
}

// hasRule reports a change (not a refusal) recorded under rule.
func hasRule(r node.Record, rule string) bool {
	if r.Outcome == nil {
		return false
	}
	for _, c := range r.Changes {
		if c.Rule == rule && c.Op != spec.OpRefuse {
			return true
		}
	}
	return false
}

func hasChange(r node.Record, path string) bool {
	for _, c := range r.Changes {
		if c.Path == path && c.Op != spec.OpRefuse {
			return true
		}
	}
	return false
}

func runPs(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	cfgPath := configFlag(fs)
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(cmd, pos); err != nil {
		return err
	}
	entries, err := loadEntries(*cfgPath)
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(c.stdout, entries)
	}
	if len(entries) == 0 {
		fmt.Fprintln(c.stdout, "no containers created through harden are known on this node")
		return nil
	}
	t := newTable(c.stdout, c.color, 0)
	t.row("NAMESPACE", "ID", "PID", "RESULT", "RULE", "PROFILE", "MODE", "BACKEND", "SECCOMP", "NNP", "CAPEFF", "CHANGES")
	for _, e := range entries {
		r := e.Record
		pid, seccomp, nnp, capEff := "-", "-", "-", "-"
		if e.Posture != nil {
			pid, seccomp, nnp, capEff = strconv.Itoa(e.Posture.Pid), seccompMode(e.Posture.Seccomp), yesNo(e.Posture.NoNewPrivs), e.Posture.CapEff
		}
		rule, profile, mode, backend, changes := "-", "-", "-", "-", "-"
		if r.Outcome != nil {
			d := r.Decision
			rule, profile, mode, backend = d.Rule, d.Profile, string(d.Mode), string(d.Backend)
			if d.Selected != "" {
				profile += "+" + d.Selected
			}
			if hasRule(r, profiles.RuleSeccompComplain) {
				mode += "+complain"
			}
			changes = strconv.Itoa(len(r.Changes))
		}
		color := ""
		if len(e.Mismatches) > 0 {
			color = red
		}
		t.colored(color, r.Namespace, short(r.ID), pid, r.Result, rule, profile, mode, backend, seccomp, nnp, capEff, changes)
	}
	t.flush()
	return nil
}

func runInspect(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	cfgPath := configFlag(fs)
	ns := fs.String("namespace", "", "the container's `NAMESPACE` (containerd namespace) when the ID is ambiguous")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "want one container ID")
	}
	entries, err := loadEntries(*cfgPath)
	if err != nil {
		return err
	}
	var found []psEntry
	for _, e := range entries {
		if (e.Record.ID == pos[0] || strings.HasPrefix(e.Record.ID, pos[0])) && (*ns == "" || e.Record.Namespace == *ns) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("inspect: no container %q created through harden on this node", pos[0])
	case 1:
	default:
		return usagef(cmd, "%q matches %d containers; give the full ID or --namespace", pos[0], len(found))
	}
	e := found[0]
	if *jsonOut {
		return writeJSON(c.stdout, e)
	}
	r := e.Record
	t := newTable(c.stdout, c.color, 0)
	t.row("container", r.Namespace+"/"+r.ID)
	t.row("created", r.Time.Format("2006-01-02 15:04:05 MST")+" by "+r.Entry)
	t.row("bundle", r.Bundle)
	t.row("result", r.Result)
	if r.Error != "" {
		t.colored(red, "error", r.Error)
	}
	t.row("policy", r.Policy)
	t.row("runtime", r.Runtime)
	if r.Outcome != nil {
		d := r.Decision
		t.row("decision", fmt.Sprintf("rule %s -> profile %s, mode %s, backend %s", d.Rule, d.Profile, d.Mode, d.Backend))
		if d.Selected != "" {
			t.row("selected", d.Selected+" (by annotation)")
		}
		if hasRule(r, profiles.RuleSeccompComplain) {
			t.colored(red, "seccomp", "COMPLAIN MODE: syscalls the profile denies are logged and allowed ('hardenctl denials "+short(r.ID)+"' lists them)")
		} else if hasRule(r, profiles.RuleSeccompLog) {
			t.row("seccomp", "denials are logged ('hardenctl denials "+short(r.ID)+"' lists them)")
		}
	}
	t.flush()
	if r.Outcome != nil && len(r.Changes) > 0 {
		fmt.Fprintln(c.stdout)
		heading(c.stdout, c.color, "Changes")
		printChanges(c, r.Changes)
	}
	fmt.Fprintln(c.stdout)
	heading(c.stdout, c.color, "What the kernel reports")
	pt := newTable(c.stdout, c.color, 2)
	if e.Posture == nil {
		pt.row("not running", "(no live init process)")
	} else {
		p := e.Posture
		pt.row("pid", strconv.Itoa(p.Pid))
		pt.row("uid", p.UID)
		pt.row("CapBnd", p.CapBnd+"  "+strings.Join(node.CapNames(p.CapBnd, spec.AllCapabilities), ","))
		pt.row("CapEff", p.CapEff+"  "+strings.Join(node.CapNames(p.CapEff, spec.AllCapabilities), ","))
		pt.row("NoNewPrivs", yesNo(p.NoNewPrivs))
		pt.row("Seccomp", seccompMode(p.Seccomp))
		if p.LSM != "" {
			pt.row("LSM label", p.LSM)
		}
	}
	pt.flush()
	for _, m := range e.Mismatches {
		fmt.Fprintln(c.stdout, paint(c.color, red, "MISMATCH: "+m))
	}
	return nil
}

func seccompMode(m int) string {
	switch m {
	case 0:
		return "off"
	case 1:
		return "strict"
	case 2:
		return "filter"
	}
	return strconv.Itoa(m)
}

func short(id string) string {
	if len(id) > 20 {
		return id[:12]
	}
	return id
}
