package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
)

var cmdDenials = &command{
	name:    "denials",
	args:    "[CONTAINER] [--since DURATION] [--config FILE] [--json]",
	summary: "List the syscalls seccomp denied (or, in complain mode, logged), by container",
	detail: `denials reads the seccomp records the kernel wrote (audit type 1326) from every
source this host has: auditd's /var/log/audit/audit.log, the journal's kernel
messages (journalctl -k), and the kernel ring buffer (/dev/kmsg). For each
record it shows when, which process, which syscall (named with libseccomp
for the record's architecture) and what the filter did: errno, trap,
kill_thread, kill_process (denied) or log (complain mode: allowed).

The kernel names only the host pid. While that process lives, its pid
namespace or cgroups tell which container harden created it belongs to; once
it has exited, the container is "unknown (pid gone)". With CONTAINER (an ID,
an ID prefix or NAMESPACE/ID), only records attributed to it are listed.

The kernel logs a denial only when asked: SCMP_ACT_LOG and kill actions
always, errno and trap only for filters with SECCOMP_FILTER_FLAG_LOG (policy:
seccomp.logDenials), and each only if its name is in
/proc/sys/kernel/seccomp/actions_logged. When nothing is found, denials says
which sources it tried and what to enable.`,
	examples: []string{
		"hardenctl denials",
		"hardenctl denials web-1 --since 1h",
		"hardenctl denials k8s.io/3f2a --json",
	},
	run: runDenials,
}

// denialsReport is denials' --json output.
type denialsReport struct {
	Sources      []sourceStatus `json:"sources"`
	Denials      []denial       `json:"denials"`
	Suppressed   int            `json:"suppressed,omitempty"`
	Unattributed int            `json:"unattributed,omitempty"` // left out by the CONTAINER filter
	Hints        []string       `json:"hints,omitempty"`
}

func runDenials(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	cfgPath := configFlag(fs)
	sinceFlag := fs.String("since", "", "only records newer than `DURATION` ago (10m, 2h, 24h)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef(cmd, "want at most one container")
	}
	var since time.Time
	if *sinceFlag != "" {
		d, err := time.ParseDuration(*sinceFlag)
		if err != nil || d <= 0 {
			return usagef(cmd, "--since %q is not a positive duration (10m, 2h, 24h)", *sinceFlag)
		}
		since = time.Now().Add(-d)
	}
	cfg, err := node.LoadConfig(*cfgPath, true)
	if err != nil {
		return err
	}
	recs, err := cfg.Recorder().States()
	if err != nil {
		return err
	}
	src := hostDenialSources()
	rep, err := collectDenials(context.Background(), src, recs, since, strings.Join(pos, ""))
	if err != nil {
		return err
	}
	if *jsonOut {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		printDenials(c, rep, len(pos) > 0)
	}
	for _, s := range rep.Sources {
		if s.Read {
			return nil
		}
	}
	return &exitStatus{code: exitFailure} // reported above: no source could be read
}

// collectDenials reads, attributes and filters the records.
func collectDenials(ctx context.Context, src denialSources, recs []node.Record, since time.Time, container string) (*denialsReport, error) {
	if container != "" {
		if err := matchContainer(recs, container); err != nil {
			return nil, err
		}
	}
	rl := src.read(ctx, since)
	attributeDenials(rl.Denials, recs, src.Proc)
	complain := map[string]bool{}
	for _, r := range recs {
		if r.Result == node.ResultHardened && hasRule(r, profiles.RuleSeccompComplain) {
			complain[(&containerRef{Namespace: r.Namespace, ID: r.ID}).String()] = true
		}
	}
	rep := &denialsReport{Sources: rl.Sources, Denials: []denial{}, Suppressed: rl.Suppressed}
	for _, d := range rl.Denials {
		if container != "" && (d.Container == nil || !refMatches(*d.Container, container)) {
			if d.Container == nil {
				rep.Unattributed++ // might have been this container's
			}
			continue
		}
		d.Note = denialNote(d, d.Container != nil && complain[d.Container.String()])
		rep.Denials = append(rep.Denials, d)
	}
	sort.SliceStable(rep.Denials, func(i, j int) bool {
		if !rep.Denials[i].Time.Equal(rep.Denials[j].Time) {
			return rep.Denials[i].Time.Before(rep.Denials[j].Time)
		}
		return rep.Denials[i].Serial < rep.Denials[j].Serial
	})
	for _, m := range rl.Malformed {
		rep.Hints = append(rep.Hints, "skipped a record: "+m)
	}
	if len(rep.Denials) == 0 || rl.Suppressed > 0 || rl.Lost > 0 {
		rep.Hints = append(rep.Hints, denialHints(readKernelLogging(src.Proc), rl, loggingOf(recs))...)
	}
	return rep, nil
}

// matchContainer checks that the CONTAINER argument names one container
// harden created: a typo must not look like "no denials".
func matchContainer(recs []node.Record, arg string) error {
	var found []string
	for _, r := range recs {
		ref := containerRef{Namespace: r.Namespace, ID: r.ID}
		if refMatches(ref, arg) {
			found = append(found, ref.String())
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("denials: no container %q created through harden on this node ('hardenctl ps' lists them)", arg)
	case 1:
		return nil
	}
	return fmt.Errorf("denials: %q matches %d containers (%s); give the full ID or NAMESPACE/ID", arg, len(found), strings.Join(found, ", "))
}

// refMatches: an ID, an ID prefix, or NAMESPACE/ID (prefix).
func refMatches(ref containerRef, arg string) bool {
	if ns, id, ok := strings.Cut(arg, "/"); ok {
		return ref.Namespace == ns && strings.HasPrefix(ref.ID, id)
	}
	return strings.HasPrefix(ref.ID, arg)
}

// denialNote explains a record where the bare action would mislead.
func denialNote(d denial, complain bool) string {
	switch {
	case d.Action == "log" && complain:
		return "complain mode: the profile denies it; allowed and logged"
	case d.Action == "log":
		return "allowed and logged (SCMP_ACT_LOG)"
	case d.Action == "errno" && d.Syscall == "clone3":
		return "ENOSYS by design: libc falls back to clone, which the filter checks"
	case d.Action == "kill_thread" || d.Action == "kill_process":
		return "the process was killed (SIGSYS)"
	}
	return ""
}

func printDenials(c *cli, rep *denialsReport, filtered bool) {
	w := c.stdout
	if len(rep.Denials) > 0 {
		t := newTable(w, c.color, 0)
		t.row("TIME", "CONTAINER", "PID", "COMM", "SYSCALL", "ACTION", "NOTE")
		for _, d := range rep.Denials {
			ctr := d.Attribution
			if d.Container != nil {
				ctr = d.Container.String()
			}
			color := red
			if d.Allowed {
				color = yellow
			}
			t.cells(cell{text: d.Time.Local().Format("2006-01-02 15:04:05")}, cell{text: ctr}, cell{text: strconv.Itoa(d.Pid)},
				cell{text: d.Comm}, cell{text: d.Syscall}, cell{text: d.Action, color: color}, cell{text: d.Note})
		}
		t.flush()
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "no seccomp records found")
	}
	var read, tried []string
	for _, s := range rep.Sources {
		if s.Read {
			read = append(read, fmt.Sprintf("%s (%s, %s)", s.Name, s.Path, plural(s.Records, "record", "records")))
		} else {
			tried = append(tried, fmt.Sprintf("%s (%s): %s", s.Name, s.Path, s.Note))
		}
	}
	if len(read) > 0 {
		fmt.Fprintln(w, "read:      "+strings.Join(read, "; "))
	}
	if len(tried) > 0 {
		fmt.Fprintln(w, "not read:  "+strings.Join(tried, "; "))
	}
	if filtered && rep.Unattributed > 0 {
		fmt.Fprintf(w, "left out:  %s whose process has exited or is not in a container harden created (run without CONTAINER to see them)\n", plural(rep.Unattributed, "record", "records"))
	}
	for _, h := range rep.Hints {
		fmt.Fprintln(w, paint(c.color, yellow, "hint: ")+h)
	}
}
