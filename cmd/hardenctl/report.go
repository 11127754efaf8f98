package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// report is what diff and apply print: the outcome harden computed plus
// where the inputs came from and what became of the result. In --json the
// Outcome's fields (identity, decision, changes, violations, enforcement)
// appear at the top level under their own JSON names.
type report struct {
	Policy string `json:"policy"`
	Spec   string `json:"spec"`
	// Target is what was hardened: container, exec or update.
	Target string `json:"target"`
	// Input is the exec process or update file (target exec or update).
	Input string `json:"input,omitempty"`
	*profiles.Outcome
	Host spec.Host `json:"host"`
	// Allowed is false when the container (exec, update) would be refused.
	Allowed bool `json:"allowed"`
	// Refusal is the message the engine would show the user.
	Refusal string `json:"refusal,omitempty"`
	// Written says whether apply wrote the bundle's config.json.
	Written *bool `json:"written,omitempty"`
	// Patch is the unified diff of the spec (--unified).
	Patch string   `json:"patch,omitempty"`
	Notes []string `json:"notes,omitempty"`

	hostHow    string // "detected" or "from flags"
	policyText string // where the policy came from, for a person
	applied    bool   // apply, not diff: "did" rather than "would"
}

// targets names what a report is about, for the result line.
var targets = map[string]struct{ noun, starts string }{
	"container": {"the container", "would start"},
	"exec":      {"the exec", "would run"},
	"update":    {"the update", "would be applied"},
}

// changeCount counts edits, leaving out refusals (OpRefuse), which the
// report lists from Violations.
func changeCount(cs []spec.Change) int {
	n := 0
	for _, ch := range cs {
		if ch.Op != spec.OpRefuse {
			n++
		}
	}
	return n
}

// print renders the report for a person.
func (r *report) print(c *cli) {
	w := c.stdout
	o := r.Outcome
	t := newTable(w, c.color, 0)
	t.row("policy", r.policyText)
	t.row("spec", r.Spec)
	t.row("container", identityLine(o.Identity))
	if r.Input != "" {
		t.row(r.Target, r.Input)
	}
	sel := ""
	if o.Decision.Selected != "" {
		sel = " + " + o.Decision.Selected + " (selected by annotation)"
	}
	modeColor := ""
	if o.Decision.Mode == spec.Audit {
		modeColor = yellow
	}
	t.cells(cell{text: "decision"}, cell{text: fmt.Sprintf("rule %s, profile %s%s, mode %s, backend %s",
		o.Decision.Rule, o.Decision.Profile, sel, o.Decision.Mode, o.Decision.Backend), color: modeColor})
	if r.Target != "update" {
		t.row("host", fmt.Sprintf("AppArmor %s, SELinux %s (%s)", yesNo(r.Host.AppArmor), yesNo(r.Host.SELinux), r.hostHow))
	}
	t.flush()

	fmt.Fprintln(w)
	n := changeCount(o.Changes)
	title := fmt.Sprintf("Changes: %d", n)
	switch {
	case o.Decision.Mode == spec.Audit:
		title = fmt.Sprintf("Changes enforce mode would make: %d (audit mode changes nothing)", n)
	case !r.Allowed && n > 0:
		title += " (none is written: the " + r.Target + " is refused)"
	}
	heading(w, c.color, title)
	if n == 0 {
		fmt.Fprintln(w, "  (none)")
	} else {
		printChanges(c, o.Changes)
	}

	if len(o.Violations) > 0 {
		fmt.Fprintln(w)
		heading(w, c.color, paint(c.color, red, fmt.Sprintf("Refusals: %d", len(o.Violations))))
		t := newTable(w, c.color, 2)
		t.colored(bold, "RULE", "FIELD", "VALUE", "REASON")
		for _, v := range o.Violations {
			val := ""
			if v.Value != nil {
				val = formatValue(v.Value)
			}
			t.colored(red, v.Rule, v.Field, val, v.Reason)
		}
		t.flush()
	}

	if len(o.Enforcement) > 0 {
		fmt.Fprintln(w)
		heading(w, c.color, "Enforcement on "+string(o.Decision.Backend))
		printEnforcement(c, o.Enforcement)
	}

	for _, n := range r.Notes {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "note: "+n)
	}
	fmt.Fprintln(w)
	r.printResult(c)
	if r.Patch != "" {
		fmt.Fprintln(w)
		printPatch(c, r.Patch, true)
	}
}

// printChanges is the change table: one row per change, so that grep finds
// a rule with its reason. On a terminal too narrow for that, each reason
// goes on a line of its own under its row.
func printChanges(c *cli, cs []spec.Change) {
	var rows [][]cell
	var reasons []string
	groups := groupChanges(cs)
	for _, g := range groups {
		rows = append(rows, []cell{{text: g.Rule}, {text: string(g.Op), color: opColor(g.Op)}, {text: g.Path}, {text: changeText(g)}})
		reasons = append(reasons, g.Reason)
	}
	render := func(color, withReason bool) []string {
		var b bytes.Buffer
		t := newTable(&b, color, 2)
		header := []string{"RULE", "OP", "PATH", "CHANGE"}
		if withReason {
			header = append(header, "REASON")
		}
		t.colored(bold, header...)
		for i, row := range rows {
			if withReason {
				row = append(row[:len(row):len(row)], cell{text: reasons[i]})
			}
			t.cells(row...)
		}
		t.flush()
		return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	}
	wide := c.width == 0 // not a terminal: keep one line per change
	if !wide {
		wide = true
		for _, line := range render(false, true) {
			if len([]rune(line)) > c.width {
				wide = false
				break
			}
		}
	}
	if !wide {
		// Cut the CHANGE cells to what is left of the terminal's width.
		lines := render(false, false)
		if avail := c.width - strings.Index(lines[0], "CHANGE"); avail >= 20 {
			for i, row := range rows {
				row[3].text = truncate(changeTextIn(groups[i], avail, avail, true), avail)
			}
		}
	}
	lines := render(c.color, wide)
	if wide {
		fmt.Fprintln(c.stdout, strings.Join(lines, "\n"))
		return
	}
	fmt.Fprintln(c.stdout, lines[0])
	for i, line := range lines[1:] {
		fmt.Fprintln(c.stdout, line)
		fmt.Fprintln(c.stdout, "      "+paint(c.color, dim, reasons[i]))
	}
}

// groupChanges merges consecutive changes that differ only in the last
// element of their path, for the person reading: dropping a capability
// from bounding, effective and permitted is one row,
// "process.capabilities.{bounding,effective,permitted}". --json keeps
// every change. Refusals are left out: the report lists them from the
// violations.
func groupChanges(cs []spec.Change) []spec.Change {
	var out []spec.Change
	var leaves [][]string
	for _, ch := range cs {
		if ch.Op == spec.OpRefuse {
			continue
		}
		dir, leaf := splitPath(ch.Path)
		if n := len(out); n > 0 {
			prev := out[n-1]
			pdir, _ := splitPath(prev.Path)
			if prev.Rule == ch.Rule && prev.Op == ch.Op && prev.Reason == ch.Reason && pdir == dir && dir != "" &&
				formatValue(prev.Before) == formatValue(ch.Before) && formatValue(prev.After) == formatValue(ch.After) {
				leaves[n-1] = append(leaves[n-1], leaf)
				continue
			}
		}
		out = append(out, ch)
		leaves = append(leaves, []string{leaf})
	}
	for i := range out {
		if len(leaves[i]) > 1 {
			dir, _ := splitPath(out[i].Path)
			out[i].Path = dir + ".{" + strings.Join(leaves[i], ",") + "}"
		}
	}
	return out
}

func splitPath(p string) (dir, leaf string) {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func opColor(op spec.Op) string {
	switch op {
	case spec.OpRemove:
		return yellow
	case spec.OpAdd:
		return green
	case spec.OpSet:
		return cyan
	}
	return red
}

// changeText is the CHANGE cell: "- a, b" for removals, "+ a, b" for
// additions, "before -> after" for a set.
func changeText(ch spec.Change) string { return changeTextIn(ch, maxValue, maxString, false) }

// changeTextIn is changeText with lists cut at list characters and strings
// at str; with fit, a set's old and new values share str between them, the
// old one giving way first.
func changeTextIn(ch spec.Change, list, str int, fit bool) string {
	switch ch.Op {
	case spec.OpRemove:
		return "- " + formatValueIn(ch.Before, list-2, str-2)
	case spec.OpAdd:
		return "+ " + formatValueIn(ch.After, list-2, str-2)
	}
	after := formatValueIn(ch.After, list, str)
	if !fit {
		return formatValueIn(ch.Before, list, maxValue) + " -> " + after
	}
	room := max(str-len(" -> ")-len([]rune(after)), 12)
	return formatValueIn(ch.Before, min(list, room), min(str, room)) + " -> " + after
}

func printEnforcement(c *cli, enf []spec.Enforcement) {
	t := newTable(c.stdout, c.color, 2)
	t.colored(bold, "CONTROL", "ENFORCED", "NOTE")
	for _, e := range enf {
		color := green
		if !e.Enforced {
			color = red
		}
		t.cells(cell{text: string(e.Control)}, cell{text: yesNo(e.Enforced), color: color}, cell{text: e.Note})
	}
	t.flush()
}

// printResult is the last line: would it start, and what the user sees.
func (r *report) printResult(c *cli) {
	w := c.stdout
	o := r.Outcome
	tg := targets[r.Target]
	n := plural(changeCount(o.Changes), "change", "changes")
	switch {
	case !r.Allowed:
		fmt.Fprintf(w, "%s %s %s. The user would see:\n", paint(c.color, red, "REFUSED:"), tg.noun, strings.Replace(tg.starts, "would", "would not", 1))
		fmt.Fprintf(w, "  %s\n", paint(c.color, red, r.Refusal))
		if r.applied {
			fmt.Fprintf(w, "%s was left untouched.\n", r.Spec)
		}
	case o.Decision.Mode == spec.Audit:
		what := fmt.Sprintf("enforce mode would make %s", n)
		if len(o.Violations) > 0 {
			what += " and refuse it"
		}
		fmt.Fprintf(w, "%s %s %s unchanged; %s.\n", paint(c.color, yellow, "AUDIT:"), tg.noun, tg.starts, what)
		if r.applied {
			fmt.Fprintf(w, "Nothing was written to %s.\n", r.Spec)
		}
	case r.applied && r.Written != nil && *r.Written:
		fmt.Fprintf(w, "%s wrote %s to %s.\n", paint(c.color, green, "HARDENED:"), n, r.Spec)
	case r.applied:
		fmt.Fprintf(w, "%s nothing to change; %s was left as it was.\n", paint(c.color, green, "OK:"), r.Spec)
	default:
		fmt.Fprintf(w, "%s %s %s, with %s.\n", paint(c.color, green, "OK:"), tg.noun, tg.starts, n)
	}
}

// identityLine renders the fields of an identity that are set.
func identityLine(id spec.Identity) string {
	var parts []string
	for _, f := range []struct{ k, v string }{
		{"id", id.ID}, {"engine", id.Engine}, {"engineNamespace", id.EngineNamespace},
		{"runtimeHandler", id.RuntimeHandler}, {"type", id.ContainerType},
		{"namespace", id.Namespace}, {"pod", id.Pod}, {"container", id.Container}, {"image", id.Image},
	} {
		if f.v != "" {
			parts = append(parts, f.k+"="+f.v)
		}
	}
	if sel := id.Annotations[profiles.SelectAnnotation]; sel != "" {
		parts = append(parts, profiles.SelectAnnotation+"="+sel)
	}
	return strings.Join(parts, " ")
}
