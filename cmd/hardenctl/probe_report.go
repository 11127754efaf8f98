package main

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/harden-dev/harden/probe"
)

// resultMissing marks a vector the probe did not report (it died, or it
// is older than hardenctl).
const resultMissing = "missing"

// probeReport is what probe prints: where the probe ran, and per vector
// what it found and which of harden's rules is expected to stop it.
type probeReport struct {
	Engine string `json:"engine"`
	// Address is the engine socket; empty for the CLI's default.
	Address        string `json:"address,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	Runtime        string `json:"runtime,omitempty"`
	RuntimeHandler string `json:"runtimeHandler,omitempty"`
	User           string `json:"user,omitempty"`
	Image          string `json:"image"`
	// Probe is the harden-probe binary that ran (a copy of it).
	Probe string `json:"probe"`
	// Container is the container's name (ID); it is removed.
	Container string        `json:"container"`
	Summary   probeSummary  `json:"summary"`
	Vectors   []probeResult `json:"vectors"`
	// Other is what the container printed besides the probe's results.
	Other []string `json:"other,omitempty"`
}

// probeResult is one vector's row.
type probeResult struct {
	Vector string `json:"vector"`
	// Result is open, blocked, n/a, or missing (not reported).
	Result string `json:"result"`
	Detail string `json:"detail"`
	// Description, Rules and How come from package probe: what the vector
	// stands for and what is expected to stop it.
	Description string   `json:"description,omitempty"`
	Rules       []string `json:"rules,omitempty"`
	How         string   `json:"how,omitempty"`
}

// probeSummary counts the results.
type probeSummary struct {
	Total         int `json:"total"`
	Open          int `json:"open"`
	Blocked       int `json:"blocked"`
	NotApplicable int `json:"notApplicable"`
	Missing       int `json:"missing"`
	// ProbeErrors are vectors the probe failed to measure (n/a with a
	// "probe error:" detail).
	ProbeErrors int      `json:"probeErrors"`
	OpenVectors []string `json:"openVectors"`
}

// newProbeReport matches the probe's output lines with the vectors of
// package probe, in the probe's order. A vector hardenctl does not know (a
// newer probe) is listed after the others without metadata.
func newProbeReport(o probeOptions, container string, lines, other []string) *probeReport {
	r := &probeReport{
		Engine: o.engine, Address: o.address, Namespace: o.namespace, Runtime: o.runtime,
		RuntimeHandler: o.handler, User: o.user, Image: o.image, Probe: o.probe, Container: container,
		Other: other,
	}
	found := map[string]probe.Finding{}
	var order []string
	for _, l := range lines {
		f, err := probe.ParseFinding([]byte(l))
		if err != nil {
			r.Other = append(r.Other, l)
			continue
		}
		if _, dup := found[f.Vector]; dup {
			r.Other = append(r.Other, l)
			continue
		}
		found[f.Vector] = f
		order = append(order, f.Vector)
	}
	add := func(row probeResult) {
		r.Vectors = append(r.Vectors, row)
		s := &r.Summary
		s.Total++
		switch row.Result {
		case probe.Open:
			s.Open++
			s.OpenVectors = append(s.OpenVectors, row.Vector)
		case probe.Blocked:
			s.Blocked++
		case probe.NotApplicable:
			s.NotApplicable++
			if strings.HasPrefix(row.Detail, probe.ErrorPrefix) {
				s.ProbeErrors++
			}
		case resultMissing:
			s.Missing++
		}
	}
	for _, v := range probe.Vectors() {
		row := probeResult{Vector: v.ID, Description: v.Desc, Rules: v.Rules, How: v.How}
		if f, ok := found[v.ID]; ok {
			row.Result, row.Detail = f.Result, f.Detail
			delete(found, v.ID)
		} else {
			row.Result, row.Detail = resultMissing, "the probe did not report it"
		}
		add(row)
	}
	for _, id := range order {
		if f, ok := found[id]; ok {
			add(probeResult{Vector: id, Result: f.Result, Detail: f.Detail})
		}
	}
	if r.Summary.OpenVectors == nil {
		r.Summary.OpenVectors = []string{}
	}
	return r
}

// control is the "stopped by" cell.
func (p probeResult) control() string {
	if len(p.Rules) == 0 {
		return "?"
	}
	return strings.Join(p.Rules, ", ") + ": " + p.How
}

// resultColors are the result cells' colours.
var resultColors = map[string]string{
	probe.Open:          red,
	probe.Blocked:       green,
	probe.NotApplicable: dim,
	resultMissing:       yellow,
}

// print renders the report for a person: where it ran, one row per
// vector, and the counts.
func (r *probeReport) print(c *cli) {
	w := c.stdout
	t := newTable(w, c.color, 0)
	engine := fmt.Sprintf("%s (%s)", r.Engine, probeEngines[r.Engine])
	if r.Address != "" {
		engine += ", socket " + r.Address
	}
	if r.Namespace != "" {
		engine += ", namespace " + r.Namespace
	}
	t.row("engine", engine)
	switch {
	case r.Runtime != "":
		t.row("runtime", r.Runtime)
	case r.RuntimeHandler != "":
		t.row("runtime", "handler "+r.RuntimeHandler)
	default:
		t.row("runtime", "the engine's default")
	}
	t.row("image", r.Image)
	if r.User != "" {
		t.row("user", r.User)
	}
	t.row("container", r.Container+" (removed)")
	t.row("probe", r.Probe)
	t.flush()
	fmt.Fprintln(w)

	// The detail is last and cut to what the terminal has left (to
	// maxString when stdout is not a terminal; --json has it whole).
	wVec, wRes, wCtl := len("VECTOR"), len("RESULT"), len("STOPPED BY")
	for _, v := range r.Vectors {
		wVec = max(wVec, utf8.RuneCountInString(v.Vector))
		wRes = max(wRes, utf8.RuneCountInString(v.Result))
		wCtl = max(wCtl, utf8.RuneCountInString(v.control()))
	}
	detailWidth := maxString
	if c.width > 0 {
		detailWidth = max(c.width-(wVec+wRes+wCtl+6), 30)
	}
	t = newTable(w, c.color, 0)
	t.colored(bold, "VECTOR", "RESULT", "STOPPED BY", "DETAIL")
	for _, v := range r.Vectors {
		t.cells(cell{text: v.Vector}, cell{text: v.Result, color: resultColors[v.Result]},
			cell{text: v.control()}, cell{text: truncate(v.Detail, detailWidth)})
	}
	t.flush()
	fmt.Fprintln(w)

	s := r.Summary
	if s.Open == 0 {
		fmt.Fprintln(w, paint(c.color, green, fmt.Sprintf("no vector open, of %d", s.Total)))
	} else {
		fmt.Fprintln(w, paint(c.color, red, fmt.Sprintf("%d of %d vectors open: %s", s.Open, s.Total, strings.Join(s.OpenVectors, ", "))))
	}
	counts := fmt.Sprintf("%d blocked, %d n/a", s.Blocked, s.NotApplicable)
	if s.ProbeErrors > 0 {
		counts += fmt.Sprintf(" (%d not measured: probe error)", s.ProbeErrors)
	}
	if s.Missing > 0 {
		counts += fmt.Sprintf(", %d missing", s.Missing)
	}
	fmt.Fprintln(w, counts)
	if len(r.Other) > 0 {
		fmt.Fprintln(w)
		heading(w, c.color, "The container also printed:")
		for _, l := range r.Other {
			fmt.Fprintln(w, "  "+truncate(l, 160))
		}
	}
}
