package spec

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mutator is one hardening step over a spec. Mutate changes s in place and
// returns the changes it made. It returns a Violations error for what the
// policy forbids (the caller decides whether that refuses the container) and
// any other error for input it cannot handle.
//
// Every Mutator must be nil-safe (a spec with no process, no linux section,
// no capabilities), idempotent (a second run returns no changes) and must
// never widen: it only removes privileges.
type Mutator interface {
	Mutate(s *specs.Spec) ([]Change, error)
}

// MutatorFunc adapts a function to the Mutator interface.
type MutatorFunc func(s *specs.Spec) ([]Change, error)

// Mutate calls f(s).
func (f MutatorFunc) Mutate(s *specs.Spec) ([]Change, error) { return f(s) }

// Mode says whether a decision is applied or only recorded.
type Mode string

// The two modes a rule can run in.
const (
	// Enforce writes the hardened spec and refuses violations.
	Enforce Mode = "enforce"
	// Audit leaves the spec byte-identical and records what Enforce would do.
	Audit Mode = "audit"
)

// ParseMode checks a mode name from a policy or flag.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case Enforce, Audit:
		return Mode(s), nil
	case "":
		return Enforce, nil
	}
	return "", fmt.Errorf("unknown mode %q (want %q or %q)", s, Enforce, Audit)
}

// Result is what Apply did or, in audit mode, would have done.
type Result struct {
	Changes    []Change    `json:"changes"`
	Violations []Violation `json:"violations,omitempty"`
}

// Apply runs the mutators in order over s.
//
// In Enforce mode s is changed in place; if any mutator reports a violation
// Apply still runs the rest (so the user sees every reason at once) and
// returns a *ViolationError. In Audit mode s is left untouched: the mutators
// run on a copy and the result lists what Enforce would have done, with no
// error for violations.
//
// Order matters and is the caller's: capabilities before user and
// no_new_privileges, then mounts, paths and namespaces, then resources, then
// LSM labels, and seccomp last because the default seccomp profile depends on
// the final capability set (moby/profiles GetDefaultProfile reads
// Process.Capabilities).
func Apply(s *specs.Spec, mode Mode, ms ...Mutator) (*Result, error) {
	if s == nil {
		return nil, errors.New("apply: nil spec")
	}
	target := s
	if mode == Audit {
		c, err := Clone(s)
		if err != nil {
			return nil, err
		}
		target = c
	}
	res := &Result{Changes: []Change{}}
	for _, m := range ms {
		changes, err := m.Mutate(target)
		res.Changes = append(res.Changes, changes...)
		if err != nil {
			var v Violations
			if !errors.As(err, &v) {
				return res, err
			}
			res.Violations = append(res.Violations, v...)
		}
	}
	if mode == Enforce && len(res.Violations) > 0 {
		return res, &ViolationError{Violations: res.Violations}
	}
	return res, nil
}

// Clone returns a deep copy of s. It walks the value by reflection, so a
// field a future runtime-spec version adds is copied too, never shared: a
// shared pointer would let audit mode change the engine's spec. It is several
// times faster than a JSON round trip, which matters on the start path.
func Clone(s *specs.Spec) (*specs.Spec, error) {
	if s == nil {
		return nil, errors.New("copy spec: nil spec")
	}
	c := deepCopy(reflect.ValueOf(s)).Interface().(*specs.Spec)
	return c, nil
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // scalars; unexported fields (none in runtime-spec) stay shallow
		for i := 0; i < v.NumField(); i++ {
			if f := c.Field(i); f.CanSet() {
				switch f.Kind() {
				case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Struct, reflect.Interface:
					f.Set(deepCopy(v.Field(i)))
				}
			}
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		switch v.Type().Elem().Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Struct, reflect.Interface:
			for i := 0; i < v.Len(); i++ {
				c.Index(i).Set(deepCopy(v.Index(i)))
			}
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(deepCopy(v.Elem()))
		return c
	}
	return v
}

// ErrPolicyViolation is the sentinel every refusal wraps, so callers can tell
// "the policy said no" from "something broke" with errors.Is.
var ErrPolicyViolation = errors.New("policy violation")

// Violation is one thing the spec asks for that the policy forbids. Rule is
// the stable rule ID, Field the spec path that carries the offending value.
type Violation struct {
	Rule   string `json:"rule"`
	Field  string `json:"field"`
	Value  any    `json:"value,omitempty"`
	Reason string `json:"reason"`
}

// String renders "rule privileged.deny: linux.resources.devices: access to all host devices".
func (v Violation) String() string {
	s := fmt.Sprintf("rule %s: %s", v.Rule, v.Field)
	if _, isList := v.Value.([]string); v.Value != nil && !isList {
		s += " " + short(v.Value)
	}
	return s + ": " + v.Reason
}

// Violations is the error a Mutator returns for forbidden input.
type Violations []Violation

func (vs Violations) Error() string { return joinViolations(vs) }

// Is makes errors.Is(err, ErrPolicyViolation) true.
func (vs Violations) Is(target error) bool { return target == ErrPolicyViolation }

// ViolationError is what Apply returns in Enforce mode when the container must
// not start. Its message names every rule and field.
type ViolationError struct {
	Violations []Violation
}

func (e *ViolationError) Error() string { return joinViolations(e.Violations) }

// Unwrap makes errors.Is(err, ErrPolicyViolation) true.
func (e *ViolationError) Unwrap() error { return ErrPolicyViolation }

func joinViolations(vs []Violation) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return "harden: " + ErrPolicyViolation.Error() + ": " + strings.Join(parts, "; ")
}

// refuse builds the one-violation error mutators return.
func refuse(rule, field string, value any, format string, args ...any) Violations {
	return Violations{{Rule: rule, Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}}
}
