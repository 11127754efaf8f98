package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/harden-dev/harden/spec"
)

var cmdApply = &command{
	name:    "apply",
	args:    "--bundle DIR [--policy FILE] [--json]",
	summary: "Harden a bundle's config.json in place, as the shim does at create",
	detail: `apply hardens DIR/config.json with the policy and replaces it atomically
(temporary file, fsync, rename), then prints the same report as diff. Fields
this version of the runtime spec does not know are kept.

In audit mode nothing is written. If harden refuses the container, the file is
left untouched and the exit status is 1. A spec that is already hardened is
not rewritten: applying twice makes no second change.`,
	examples: []string{
		"hardenctl apply --bundle ./bundle",
		"hardenctl apply --bundle ./bundle --policy ./policy.yaml --json",
	},
	run: runApply,
}

func runApply(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	var f outcomeFlags
	f.register(fs)
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(cmd, pos); err != nil {
		return err
	}
	if f.in.file != "" {
		return usagef(cmd, "apply writes a bundle: give --bundle DIR (use diff for a spec file)")
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
	r := &report{Policy: pc.Source, policyText: source, Spec: f.in.name(), Target: "container", Host: host, hostHow: how, applied: true}
	written := false
	r.Written = &written

	id := spec.IdentityFromSpec(doc.Spec)
	f.idf.apply(&id)
	before, err := json.Marshal(doc.Spec)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	out, herr := pc.Harden(doc.Spec, id, host)
	if herr != nil && !isRefusal(herr) {
		return fmt.Errorf("harden container %s: %w", r.Spec, herr)
	}
	r.setOutcome(out, herr)
	if herr == nil && out.Decision.Mode == spec.Enforce {
		after, err := json.Marshal(doc.Spec)
		if err != nil {
			return fmt.Errorf("encode spec: %w", err)
		}
		// Rewrite only when something changed: the file keeps its bytes
		// (and its formatting) when it is already hardened.
		if !bytes.Equal(before, after) {
			if err := doc.WriteBundle(f.in.bundle); err != nil {
				return err // "write bundle config: ..."
			}
			written = true
		}
	}
	if err := r.emit(c, f.json, false); err != nil {
		return err
	}
	if herr != nil {
		return fmt.Errorf("harden container %s: %w", r.Spec, herr)
	}
	return nil
}
