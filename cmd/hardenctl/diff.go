package main

import (
	"encoding/json"
	"flag"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

var cmdDiff = &command{
	name:    "diff",
	args:    "(--bundle DIR | --spec FILE) [--exec-process FILE | --update FILE] [flags]",
	summary: "Show what the policy would do to a container spec, without writing anything",
	detail: `diff reads the spec, finds the rule and profile the policy picks for the
container, and prints every change harden would make, every refusal, and which
controls the backend enforces. Nothing on disk changes.

With --exec-process it hardens an exec's process (the JSON that
"runc exec --process" takes) against the container; with --update it checks a
resources update ("runc update -r") against the profile's ceilings.

Exit status 0 if the container (exec, update) would be allowed, 1 if harden
would refuse it; the refusal is the message the engine would show the user.`,
	examples: []string{
		"hardenctl diff --bundle /run/containerd/io.containerd.runtime.v2.task/default/web",
		"hardenctl diff --spec config.json --unified",
		"hardenctl diff --spec config.json --namespace k8s.io --policy ./policy.yaml --json",
		"hardenctl diff --bundle ./bundle --exec-process process.json",
		"hardenctl diff --bundle ./bundle --update resources.json",
	},
	run: runDiff,
}

// outcomeFlags are the flags diff and apply share.
type outcomeFlags struct {
	in   specInput
	pol  policyFlag
	idf  identityFlags
	host hostFlags
	json bool
}

func (f *outcomeFlags) register(fs *flag.FlagSet) {
	f.in.register(fs)
	f.pol.register(fs)
	f.idf.register(fs)
	f.host.register(fs)
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
}

func runDiff(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	var f outcomeFlags
	f.register(fs)
	execFile := fs.String("exec-process", "", "harden this exec process `FILE` (a runtime-spec Process, as runc exec --process takes)")
	updateFile := fs.String("update", "", "check this resources update `FILE` (a runtime-spec LinuxResources, as runc update -r takes)")
	unified := fs.Bool("unified", false, "also print a unified diff of the spec before and after")
	output := fs.String("output", "report", "`FORMAT`: report, or patch for the unified diff alone")
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
	switch {
	case *execFile != "" && *updateFile != "":
		return usagef(cmd, "give --exec-process or --update, not both")
	case (*execFile == "-" || *updateFile == "-") && f.in.file == "-":
		return usagef(cmd, "only one input can come from stdin")
	}
	patchOnly := false
	switch *output {
	case "report":
	case "patch":
		patchOnly = true
		*unified = true
	default:
		return usagef(cmd, "--output %q: want report or patch", *output)
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
	r := &report{Policy: pc.Source, policyText: source, Spec: f.in.name(), Host: host, hostHow: how}

	var herr error
	switch {
	case *execFile != "":
		herr, err = diffExec(c, pc, doc, f.idf, *execFile, host, r, *unified)
	case *updateFile != "":
		herr, err = diffUpdate(c, pc, doc, f.idf, *updateFile, r, *unified)
	default:
		herr, err = diffContainer(pc, doc, f.idf, host, r, *unified)
	}
	if err != nil {
		return err
	}
	if err := r.emit(c, f.json, patchOnly); err != nil {
		return err
	}
	if herr != nil {
		return fmt.Errorf("harden %s %s: %w", r.Target, f.in.name(), herr)
	}
	return nil
}

// emit prints the report as JSON, as a patch alone, or for a person.
func (r *report) emit(c *cli, jsonOut, patchOnly bool) error {
	switch {
	case jsonOut:
		return writeJSON(c.stdout, r)
	case patchOnly:
		printPatch(c, r.Patch, false)
	default:
		r.print(c)
	}
	return nil
}

// diffContainer hardens the spec in memory. It returns the refusal (if
// harden would refuse the container) separately from failures.
func diffContainer(pc *profiles.Compiled, doc *spec.Document, idf identityFlags, host spec.Host, r *report, unified bool) (refusal, err error) {
	r.Target = "container"
	id := spec.IdentityFromSpec(doc.Spec)
	idf.apply(&id)
	before, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	out, herr := pc.Harden(doc.Spec, id, host)
	if herr != nil && !isRefusal(herr) {
		return nil, fmt.Errorf("harden container %s: %w", r.Spec, herr)
	}
	r.setOutcome(out, herr)
	if !unified {
		return herr, nil
	}
	if herr != nil {
		r.Patch = "# refused: harden would write no spec\n"
		return herr, nil
	}
	// In audit mode harden writes the spec unchanged; the patch shows
	// what enforce mode would write, which is what the reader asks.
	after, err := doc.Marshal()
	if err != nil {
		return nil, err
	}
	if out.Decision.Mode == spec.Audit {
		if after, err = enforcedSpec(pc, before, id, host); err != nil {
			return nil, err
		}
		r.Notes = append(r.Notes, "audit mode: the patch shows what enforce mode would write; audit mode writes the spec unchanged")
	}
	return herr, r.setPatch(r.Spec, before, after)
}

// enforcedSpec hardens a copy of the spec under the same policy with every
// rule in enforce mode.
func enforcedSpec(pc *profiles.Compiled, orig []byte, id spec.Identity, host spec.Host) ([]byte, error) {
	enf, err := enforcing(pc)
	if err != nil {
		return nil, err
	}
	d, err := spec.Parse(orig)
	if err != nil {
		return nil, err
	}
	if _, err := enf.Harden(d.Spec, id, host); err != nil {
		if isRefusal(err) {
			return orig, nil
		}
		return nil, fmt.Errorf("harden container in enforce mode: %w", err)
	}
	return d.Marshal()
}

// enforcing recompiles the policy with every rule and the defaults in
// enforce mode; matching does not depend on the mode, so each container
// gets the same decision.
func enforcing(pc *profiles.Compiled) (*profiles.Compiled, error) {
	p := pc.Policy
	p.Defaults.Mode = string(spec.Enforce)
	p.Rules = append([]profiles.Rule(nil), p.Rules...)
	for i := range p.Rules {
		p.Rules[i].Mode = string(spec.Enforce)
	}
	c, err := p.Compile()
	if err != nil {
		return nil, fmt.Errorf("compile policy in enforce mode: %w", err)
	}
	c.Source = pc.Source
	return c, nil
}

func (r *report) setOutcome(out *profiles.Outcome, herr error) {
	r.Outcome = out
	r.Allowed = herr == nil
	if herr != nil {
		r.Refusal = herr.Error()
	}
}

func (r *report) setPatch(name string, before, after []byte) error {
	p, err := jsonPatch(name, name+" (hardened)", before, after)
	if err != nil {
		return err
	}
	if p == "" {
		p = "# no changes: the spec is already hardened\n"
	}
	r.Patch = p
	return nil
}

// diffExec hardens an exec process against the container. The shim hardens
// exec processes against the hardened bundle, so the container spec is
// hardened in memory first (a no-op for a bundle harden already wrote).
func diffExec(c *cli, pc *profiles.Compiled, doc *spec.Document, idf identityFlags, file string, host spec.Host, r *report, unified bool) (refusal, err error) {
	id := spec.IdentityFromSpec(doc.Spec)
	idf.apply(&id)
	r.Target, r.Input = "exec", displayName(file)
	data, err := readInput(file, c.stdin, spec.MaxSpecSize)
	if err != nil {
		return nil, fmt.Errorf("read exec process: %w", err)
	}
	var proc specs.Process
	if err := json.Unmarshal(data, &proc); err != nil {
		return nil, fmt.Errorf("read exec process %s: %w", displayName(file), err)
	}
	container, err := spec.Clone(doc.Spec)
	if err != nil {
		return nil, err
	}
	if _, cerr := pc.Harden(container, id, host); cerr != nil {
		if !isRefusal(cerr) {
			return nil, fmt.Errorf("harden container %s: %w", r.Spec, cerr)
		}
		r.Notes = append(r.Notes, "the container itself would be refused at create ("+cerr.Error()+"); the exec is checked against its spec as given")
		if container, err = spec.Clone(doc.Spec); err != nil {
			return nil, err
		}
	}
	before, err := json.Marshal(&proc)
	if err != nil {
		return nil, err
	}
	out, herr := pc.HardenExec(&proc, container, id, host)
	if herr != nil && !isRefusal(herr) {
		return nil, fmt.Errorf("harden exec %s: %w", displayName(file), herr)
	}
	r.setOutcome(out, herr)
	if !unified {
		return herr, nil
	}
	if herr != nil {
		r.Patch = "# refused: the exec would not run\n"
		return herr, nil
	}
	after, err := json.Marshal(&proc)
	if err != nil {
		return nil, err
	}
	if out.Decision.Mode == spec.Audit {
		enf, err := enforcing(pc)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(before, &p); err != nil {
			return nil, err
		}
		if _, err := enf.HardenExec(&p, container, id, host); err == nil {
			if after, err = json.Marshal(&p); err != nil {
				return nil, err
			}
		}
		r.Notes = append(r.Notes, "audit mode: the patch shows what enforce mode would do; audit mode leaves the process unchanged")
	}
	return herr, r.setPatch(displayName(file), before, after)
}

// diffUpdate checks a resources update against the profile's ceilings.
func diffUpdate(c *cli, pc *profiles.Compiled, doc *spec.Document, idf identityFlags, file string, r *report, unified bool) (refusal, err error) {
	id := spec.IdentityFromSpec(doc.Spec)
	idf.apply(&id)
	r.Target, r.Input = "update", displayName(file)
	data, err := readInput(file, c.stdin, spec.MaxSpecSize)
	if err != nil {
		return nil, fmt.Errorf("read update: %w", err)
	}
	var res specs.LinuxResources
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("read update %s: %w", displayName(file), err)
	}
	before, err := json.Marshal(&res)
	if err != nil {
		return nil, err
	}
	out, herr := pc.HardenUpdate(&res, id)
	if herr != nil && !isRefusal(herr) {
		return nil, fmt.Errorf("check update %s: %w", displayName(file), herr)
	}
	r.setOutcome(out, herr)
	if !unified {
		return herr, nil
	}
	if herr != nil {
		r.Patch = "# refused: the update would not be applied\n"
		return herr, nil
	}
	after, err := json.Marshal(&res)
	if err != nil {
		return nil, err
	}
	if out.Decision.Mode == spec.Audit {
		enf, err := enforcing(pc)
		if err != nil {
			return nil, err
		}
		var u specs.LinuxResources
		if err := json.Unmarshal(before, &u); err != nil {
			return nil, err
		}
		if _, err := enf.HardenUpdate(&u, id); err == nil {
			if after, err = json.Marshal(&u); err != nil {
				return nil, err
			}
		}
		r.Notes = append(r.Notes, "audit mode: the patch shows what enforce mode would do; audit mode leaves the update unchanged")
	}
	return herr, r.setPatch(displayName(file), before, after)
}
