package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Ceilings are the highest cgroup limits a profile allows. A nil field sets
// no ceiling. A spec that asks for less keeps its value.
type Ceilings struct {
	MemoryBytes *int64  `json:"memoryBytes,omitempty"`
	CPUMillis   *int64  `json:"cpuMillis,omitempty"` // CPU time as thousandths of a core (quota / period)
	CPUShares   *uint64 `json:"cpuShares,omitempty"`
	Pids        *int64  `json:"pids,omitempty"`
	BlkioWeight *uint16 `json:"blkioWeight,omitempty"`
}

// OnExceed says what to do with a limit above the ceiling.
type OnExceed string

// What a resource ceiling does to a spec that asks for more.
const (
	Lower  OnExceed = "lower"  // set the limit to the ceiling and record it
	Reject OnExceed = "refuse" // refuse the container (or the update)
)

// ParseOnExceed checks an onExceed value from a policy.
func ParseOnExceed(s string) (OnExceed, error) {
	switch OnExceed(s) {
	case "":
		return Lower, nil
	case Lower, Reject:
		return OnExceed(s), nil
	}
	return "", fmt.Errorf("unknown onExceed %q (want %q or %q)", s, Lower, Reject)
}

// defaultCPUPeriod is the CFS period runc and the kernel use when the spec
// sets none (100ms).
const defaultCPUPeriod = 100000

// LimitResources holds the spec's cgroup limits at or below c.
//
// At create (fillUnset true) a missing or unlimited value gets the ceiling:
// no limit at all is the most a container can ask for. For `runc update`
// (fillUnset false) a missing field means "leave as is", so only values the
// update names are checked; an explicit "unlimited" (<= 0) still exceeds.
func LimitResources(rule string, c Ceilings, onExceed OnExceed, fillUnset bool) Mutator {
	return MutatorFunc(func(s *specs.Spec) ([]Change, error) {
		if s.Linux == nil && !fillUnset {
			return nil, nil
		}
		l := ensureLinux(s)
		if l.Resources == nil {
			if !fillUnset {
				return nil, nil
			}
			l.Resources = &specs.LinuxResources{}
		}
		return limit(rule, l.Resources, c, onExceed, fillUnset)
	})
}

// LimitUpdate applies the ceilings to a `runc update -r` resources document.
func LimitUpdate(rule string, r *specs.LinuxResources, c Ceilings, onExceed OnExceed) ([]Change, error) {
	if r == nil {
		return nil, nil
	}
	return limit(rule, r, c, onExceed, false)
}

// limiter tracks the changes and refusals of one limit pass.
type limiter struct {
	rule     string
	onExceed OnExceed
	fill     bool
	changes  []Change
	vs       Violations
}

// check decides one value: unset is nil, "unlimited" is <= 0 for signed
// limits. It returns the value to keep and whether to write it.
func (lm *limiter) check(path string, cur *int64, ceiling int64, unit string) (int64, bool) {
	switch {
	case cur == nil && !lm.fill:
		return 0, false
	case cur == nil || *cur <= 0:
		var before any
		if cur != nil {
			before = *cur
		}
		if lm.onExceed == Reject && cur != nil {
			lm.vs = append(lm.vs, Violation{Rule: lm.rule, Field: path, Value: *cur, Reason: fmt.Sprintf("unlimited, above the profile's ceiling of %d%s", ceiling, unit)})
			lm.changes = append(lm.changes, Change{Rule: lm.rule, Path: path, Op: OpRefuse, After: *cur, Reason: "unlimited, above the ceiling"})
			return 0, false
		}
		lm.changes = append(lm.changes, Change{Rule: lm.rule, Path: path, Op: OpSet, Before: before, After: ceiling, Reason: "no limit set: apply the profile's ceiling"})
		return ceiling, true
	case *cur > ceiling:
		if lm.onExceed == Reject {
			lm.vs = append(lm.vs, Violation{Rule: lm.rule, Field: path, Value: *cur, Reason: fmt.Sprintf("above the profile's ceiling of %d%s", ceiling, unit)})
			lm.changes = append(lm.changes, Change{Rule: lm.rule, Path: path, Op: OpRefuse, After: *cur, Reason: "above the ceiling"})
			return 0, false
		}
		lm.changes = append(lm.changes, Change{Rule: lm.rule, Path: path, Op: OpSet, Before: *cur, After: ceiling, Reason: "above the profile's ceiling: lowered"})
		return ceiling, true
	}
	return 0, false
}

func limit(rule string, r *specs.LinuxResources, c Ceilings, onExceed OnExceed, fill bool) ([]Change, error) {
	lm := &limiter{rule: rule, onExceed: onExceed, fill: fill}

	if c.MemoryBytes != nil {
		var cur *int64
		if r.Memory != nil {
			cur = r.Memory.Limit
		}
		if v, ok := lm.check("linux.resources.memory.limit", cur, *c.MemoryBytes, " bytes"); ok {
			if r.Memory == nil {
				r.Memory = &specs.LinuxMemory{}
			}
			// memory.swap is memory+swap. Keep the swap share no larger
			// than before: on cgroup v2 runc writes swap-limit as
			// memory.swap.max, which would grow if only the limit shrank.
			if sw := r.Memory.Swap; sw != nil && *sw > 0 {
				old := int64(0)
				if cur != nil && *cur > 0 {
					old = *cur
				}
				newSwap := v + max(*sw-old, 0)
				if old == 0 {
					newSwap = min(*sw, v)
				}
				if newSwap != *sw {
					lm.changes = append(lm.changes, Change{Rule: lm.rule, Path: "linux.resources.memory.swap", Op: OpSet, Before: *sw, After: newSwap, Reason: "memory+swap follows the lowered memory limit"})
					r.Memory.Swap = &newSwap
				}
			}
			r.Memory.Limit = &v
		}
	}

	if c.Pids != nil {
		var cur *int64
		if r.Pids != nil {
			cur = r.Pids.Limit
		}
		if v, ok := lm.check("linux.resources.pids.limit", cur, *c.Pids, " processes"); ok {
			if r.Pids == nil {
				r.Pids = &specs.LinuxPids{}
			}
			r.Pids.Limit = &v
		}
	}

	if c.CPUMillis != nil {
		period := uint64(defaultCPUPeriod)
		if r.CPU != nil && r.CPU.Period != nil && *r.CPU.Period > 0 {
			period = *r.CPU.Period
		}
		maxQuota := *c.CPUMillis * int64(period) / 1000
		var cur *int64
		if r.CPU != nil {
			cur = r.CPU.Quota
		}
		if v, ok := lm.check("linux.resources.cpu.quota", cur, maxQuota, "us per "+fmt.Sprint(period)+"us period"); ok {
			if r.CPU == nil {
				r.CPU = &specs.LinuxCPU{}
			}
			r.CPU.Quota = &v
			if r.CPU.Period == nil {
				r.CPU.Period = &period
			}
		}
	}

	if c.CPUShares != nil && r.CPU != nil && r.CPU.Shares != nil && *r.CPU.Shares > *c.CPUShares {
		cur := int64(*r.CPU.Shares)
		if v, ok := lm.check("linux.resources.cpu.shares", &cur, int64(*c.CPUShares), ""); ok {
			u := uint64(v)
			r.CPU.Shares = &u
		}
	}

	if c.BlkioWeight != nil && r.BlockIO != nil && r.BlockIO.Weight != nil && *r.BlockIO.Weight > *c.BlkioWeight {
		cur := int64(*r.BlockIO.Weight)
		if v, ok := lm.check("linux.resources.blockIO.weight", &cur, int64(*c.BlkioWeight), ""); ok {
			u := uint16(v)
			r.BlockIO.Weight = &u
		}
	}

	if len(lm.vs) > 0 {
		return lm.changes, lm.vs
	}
	return lm.changes, nil
}
