// Package spec hardens OCI runtime specs. It is pure: mutators take a
// *specs.Spec, change it in place and return the changes they made as data.
// Nothing here logs, reads global state or talks to a daemon; the shim, the
// runc-compatible wrapper and hardenctl decide what to do with the result.
package spec

import (
	"encoding/json"
	"fmt"
)

// Op says what a Change did to the field at Path.
type Op string

// The operations a Change can record.
const (
	OpSet    Op = "set"    // a field got a new value (it may have had none)
	OpRemove Op = "remove" // a value was removed from a list or a field was cleared
	OpAdd    Op = "add"    // a value was appended to a list
	OpRefuse Op = "refuse" // the spec asks for something the policy forbids
)

// Change is one edit a mutator made (or, in audit mode, would have made).
// Path is a JSON-pointer-like path into the OCI spec, e.g.
// "process.capabilities.bounding" or "linux.resources.pids.limit".
type Change struct {
	Rule   string `json:"rule"`
	Path   string `json:"path"`
	Op     Op     `json:"op"`
	Before any    `json:"before,omitempty"`
	After  any    `json:"after,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// String renders a change for a person: "caps.drop: remove process.capabilities.bounding [CAP_NET_RAW]".
func (c Change) String() string {
	s := fmt.Sprintf("%s: %s %s", c.Rule, c.Op, c.Path)
	switch c.Op {
	case OpRemove, OpAdd, OpRefuse:
		if v := c.After; v != nil {
			s += " " + short(v)
		} else if c.Before != nil {
			s += " " + short(c.Before)
		}
	default:
		s += " " + short(c.Before) + " -> " + short(c.After)
	}
	return s
}

// short renders a value compactly for one-line output.
func short(v any) string {
	if v == nil {
		return "(unset)"
	}
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}
