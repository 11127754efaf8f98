package main

import (
	"flag"
	"fmt"

	"github.com/harden-dev/harden/profiles"
)

var cmdPolicyValidate = &command{
	name:    "policy validate",
	args:    "[--json] FILE...",
	summary: "Check policy files the way the shim and harden-runc load them",
	detail: `Each FILE is decoded strictly (an unknown field is an error that names its
line), every profile is resolved and its seccomp filter compiled with
libseccomp, and every rule is checked. The file must be owned by root (or by
you) and not writable by group or others, as for the shim. "-" reads stdin.
Exit status 1 if any file fails.`,
	examples: []string{
		"hardenctl policy validate /etc/harden/policy.yaml",
		"hardenctl policy validate --json policies/*.yaml",
		"kubectl get cm harden-policy -o jsonpath='{.data.policy\\.yaml}' | hardenctl policy validate -",
	},
	run: runPolicyValidate,
}

// validation is one file's result in --json output.
type validation struct {
	File     string `json:"file"`
	OK       bool   `json:"ok"`
	Rules    int    `json:"rules"`
	Profiles int    `json:"profiles"`
	Error    string `json:"error,omitempty"`
}

func runPolicyValidate(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	jsonOut := fs.Bool("json", false, "print results as JSON")
	files, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef(cmd, "give at least one policy FILE (- for stdin)")
	}
	results := make([]validation, 0, len(files))
	failed := 0
	for _, f := range files {
		v := validation{File: f}
		pc, err := loadPolicyFile(c, f)
		if err != nil {
			failed++
			v.Error = err.Error()
			if !*jsonOut {
				fmt.Fprintf(c.stderr, "hardenctl: %v\n", err)
			}
		} else {
			v.OK, v.Rules, v.Profiles = true, len(pc.Policy.Rules), len(pc.Policy.Profiles)
			if !*jsonOut {
				fmt.Fprintf(c.stdout, "%s: %s (%s, %s)\n", displayName(f), paint(c.color, green, "ok"),
					plural(v.Rules, "rule", "rules"), plural(v.Profiles, "profile", "profiles"))
			}
		}
		results = append(results, v)
	}
	if *jsonOut {
		if err := writeJSON(c.stdout, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		if *jsonOut {
			return &exitStatus{code: exitFailure, err: fmt.Errorf("validate policy: %d of %d files failed", failed, len(files))}
		}
		return &exitStatus{code: exitFailure}
	}
	return nil
}

// loadPolicyFile loads a policy with profiles.Load semantics; "-" is stdin,
// which has no owner or mode to check.
func loadPolicyFile(c *cli, name string) (*profiles.Compiled, error) {
	if name != "-" {
		return profiles.Load(name)
	}
	data, err := readInput(name, c.stdin, profiles.MaxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	pc, err := profiles.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load policy <stdin>: %w", err)
	}
	pc.Source = "<stdin>"
	return pc, nil
}

func displayName(f string) string {
	if f == "-" {
		return "<stdin>"
	}
	return f
}
