package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gopkg.in/yaml.v3"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/record"
)

// recordReport is what record prints: the summary, and with --json all of
// it.
type recordReport struct {
	Container string   `json:"container"`
	Image     string   `json:"image"`
	Command   []string `json:"command,omitempty"`
	Runtime   string   `json:"runtime"`
	Profile   string   `json:"profile"`
	Duration  string   `json:"duration"`
	// Stopped: --duration ended the container.
	Stopped  bool `json:"stopped"`
	ExitCode int  `json:"exitCode"`
	// Syscalls are the recorded ones.
	Syscalls []record.Syscall `json:"syscalls"`
	// Added are allowed without having been recorded (record.AlwaysAllowed).
	Added []string `json:"added"`
	// Allowed is the profile's allow list: Syscalls and Added.
	Allowed       []string         `json:"allowed"`
	Architectures []specs.Arch     `json:"architectures"`
	Notifications uint64           `json:"notifications"`
	Sessions      []record.Session `json:"sessions"`
	Rejected      []string         `json:"rejected,omitempty"`
	// Policy is the --print-policy text.
	Policy string `json:"policy,omitempty"`
}

func newRecordReport(o recordOptions, rec *recording, prof *specs.LinuxSeccomp) *recordReport {
	r := &recordReport{
		Container: rec.name, Image: o.image, Command: o.args, Runtime: o.runtime, Profile: o.output,
		Duration: rec.elapsed.Round(100 * time.Millisecond).String(), Stopped: rec.stopped, ExitCode: rec.exitCode,
		Syscalls: rec.res.Syscalls, Architectures: prof.Architectures, Notifications: rec.res.Notifications(),
		Sessions: rec.res.Sessions, Rejected: rec.res.Rejected,
	}
	if r.Syscalls == nil {
		r.Syscalls = []record.Syscall{}
	}
	recorded := rec.res.Names()
	for _, rule := range prof.Syscalls {
		r.Allowed = append(r.Allowed, rule.Names...)
	}
	r.Added = []string{}
	for _, n := range r.Allowed {
		if !slices.Contains(recorded, n) {
			r.Added = append(r.Added, n)
		}
	}
	return r
}

// print is the text summary.
func (r *recordReport) print(c *cli) {
	var runtime, workload []string
	for _, s := range r.Syscalls {
		if s.Runtime {
			runtime = append(runtime, s.Name)
		}
		if s.Workload {
			workload = append(workload, s.Name)
		}
	}
	how := "exited with status " + fmt.Sprint(r.ExitCode)
	if r.Stopped {
		how = "stopped after --duration"
	}
	fmt.Fprintf(c.stdout, "Recorded %s (%s, %s) for %s; it %s.\n", r.Container, r.Image, r.Runtime, r.Duration, how)
	fmt.Fprintf(c.stdout, "%s in %s.\n\n", plural(len(r.Syscalls), "syscall", "syscalls"), plural(int(r.Notifications), "notification", "notifications"))
	t := newTable(c.stdout, c.color, 2)
	width := c.width
	if width == 0 {
		width = 100
	}
	t.row("runtime", fmt.Sprintf("%d", len(runtime)), "before the workload's execve: "+strings.Join(runtime, " "))
	t.row("workload", fmt.Sprintf("%d", len(workload)), strings.Join(workload, " "))
	t.row("added", fmt.Sprintf("%d", len(r.Added)), "not recorded, allowed anyway (docs/recording.md): "+strings.Join(r.Added, " "))
	t.flush()
	arches := make([]string, len(r.Architectures))
	for i, a := range r.Architectures {
		arches[i] = string(a)
	}
	fmt.Fprintf(c.stdout, "\nWrote %s: %s allowed on %s; every other syscall fails with EPERM.\n",
		r.Profile, plural(len(r.Allowed), "syscall", "syscalls"), strings.Join(arches, ", "))
	for _, why := range r.Rejected {
		fmt.Fprintf(c.stdout, "%s a connection to the listener was refused: %s\n", paint(c.color, yellow, "note:"), why)
	}
	if r.Policy != "" {
		fmt.Fprintf(c.stdout, "\n%s", r.Policy)
	}
}

// recordPolicy is a complete policy that uses the recorded profile: a user
// profile extending baseline with seccomp.profile set to the file, and a
// rule that selects it by image. It is checked with the loader before it
// is printed, so what is printed loads.
func recordPolicy(o recordOptions, container string) (string, error) {
	p := profiles.Policy{
		APIVersion: "harden.dev/v1alpha1",
		Kind:       "Policy",
		Profiles: []profiles.Profile{{
			Name:        o.name,
			Extends:     profiles.Baseline,
			Description: fmt.Sprintf("baseline with the seccomp profile hardenctl record wrote for %s", o.image),
			Seccomp:     &profiles.Seccomp{Profile: o.output},
		}},
		Rules: []profiles.Rule{{
			Name:    o.name,
			Match:   profiles.Match{Images: []string{o.image}},
			Profile: o.name,
		}},
	}
	body, err := yaml.Marshal(&p)
	if err != nil {
		return "", fmt.Errorf("record: policy: %w", err)
	}
	if _, err := profiles.Parse(body); err != nil {
		return "", fmt.Errorf("record: the policy for %s does not load: %w", o.output, err)
	}
	head := fmt.Sprintf(`# A harden policy that uses %s (hardenctl record, container %s).
# Merge the profile and the rule into your policy. The rule matches the image name,
# which CRI (Kubernetes) and CRI-O report; for ctr and Docker containers match an
# annotation or engineNamespaces instead (docs/policy.md, section 3).
`, o.output, container)
	return head + string(body), nil
}
