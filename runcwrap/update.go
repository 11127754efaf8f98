package runcwrap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// update holds `update` at or below the container's profile ceilings
// (profiles.HardenUpdate, as the shim does): above a ceiling a value is
// lowered, or the update refused, as the profile's onExceed says.
func (w *Wrapper) update(inv *Invocation, cfg node.Config, lg *logger) (*plan, error) {
	c, err := lookupExisting(inv, cfg)
	if err != nil {
		w.recordFailure(cfg, lg, node.EventUpdate, inv, err)
		return nil, err
	}
	rec := w.newRecord(node.EventUpdate, c)
	u := updateInput{inv: inv, pol: c.pol, identity: c.identity, stdin: w.Stdin, readFile: os.ReadFile}
	rw, pass, out, herr := u.harden()
	if err := w.finish(cfg, lg, rec, out, herr); err != nil {
		return nil, err
	}
	if pass != nil {
		path, err := passFile("resources", pass, 3) // update starts no process
		if err != nil {
			return nil, fmt.Errorf("hand the resources to the runtime: %w", err)
		}
		rw.set(inv, "resources", path)
	}
	return &plan{runtime: c.runtime, args: inv.apply(rw)}, nil
}

type updateInput struct {
	inv      *Invocation
	pol      *profiles.Compiled
	identity spec.Identity
	stdin    io.Reader
	readFile func(string) ([]byte, error)
}

// maxResourcesSize bounds an update's resources document.
const maxResourcesSize = 1 << 20

// The update flags that carry a resource runc sets (update.go). With -r,
// runc ignores them.
var resourceFlags = []string{
	"blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share", "cpu-rt-period", "cpu-rt-runtime",
	"cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory", "cpu-idle",
	"memory-reservation", "memory-swap", "pids-limit",
}

// harden returns the command line change and, when the runtime must read a
// new resources document, its content (the caller passes it as -r).
func (u updateInput) harden() (*rewrite, []byte, *profiles.Outcome, error) {
	if src, _ := u.inv.Value("resources"); src != "" {
		return u.document(src)
	}
	return u.flags()
}

// document hardens `update -r FILE` and `update -r -` (stdin). The runtime
// always gets a new file: the hardened document, or the bytes harden read
// when nothing changed (audit mode included).
func (u updateInput) document(src string) (*rewrite, []byte, *profiles.Outcome, error) {
	var data []byte
	var err error
	if src == "-" {
		data, err = readLimited(u.stdin, maxResourcesSize)
	} else {
		data, err = u.readFile(src)
		if err == nil && len(data) > maxResourcesSize {
			err = fmt.Errorf("larger than the %d byte limit", maxResourcesSize)
		}
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read resources %s: %w", src, err)
	}
	raw, err := firstJSON(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("resources %s: %w", src, err)
	}
	doc, err := spec.Parse(wrapJSON(raw, "linux", "resources"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("resources %s: %w", src, err)
	}
	var res *specs.LinuxResources
	if doc.Spec.Linux != nil {
		res = doc.Spec.Linux.Resources
	}
	out, herr := u.pol.HardenUpdate(res, u.identity)
	if herr != nil {
		return nil, nil, out, herr
	}
	// The runtime reads the document harden read, never src again: a pipe
	// or stdin cannot be read twice, and a file could change in between.
	rw := newRewrite()
	pass := data
	if out.Decision.Mode == spec.Enforce && (len(out.Changes) > 0 || doc.Ambiguous()) {
		b, err := doc.Marshal()
		if err != nil {
			return nil, nil, out, err
		}
		if pass, err = member(b, "linux", "resources"); err != nil {
			return nil, nil, out, err
		}
	}
	if out.Decision.Mode == spec.Enforce {
		rw.dropAll(u.inv, resourceFlags...)
	}
	return rw, pass, out, nil
}

// flags hardens an update given as flags (--memory, --pids-limit, ...):
// the values are read as runc reads them, hardened, and the flags whose
// value changed are set to the hardened value. Should the flags not
// express the result, the whole update goes to the runtime as -r.
func (u updateInput) flags() (*rewrite, []byte, *profiles.Outcome, error) {
	asked, err := resourcesFromFlags(u.inv)
	if err != nil {
		return nil, nil, nil, err
	}
	cp, err := spec.Clone(&specs.Spec{Linux: &specs.Linux{Resources: asked}})
	if err != nil {
		return nil, nil, nil, err
	}
	want := cp.Linux.Resources
	out, herr := u.pol.HardenUpdate(want, u.identity)
	if herr != nil || out.Decision.Mode != spec.Enforce || len(out.Changes) == 0 {
		return nil, nil, out, herr
	}
	rw := newRewrite()
	for _, v := range []struct {
		flag        string
		asked, want any
	}{
		{"memory", asked.Memory.Limit, want.Memory.Limit},
		{"memory-swap", asked.Memory.Swap, want.Memory.Swap},
		{"pids-limit", asked.Pids.Limit, want.Pids.Limit},
		{"cpu-quota", asked.CPU.Quota, want.CPU.Quota},
		{"cpu-period", asked.CPU.Period, want.CPU.Period},
		{"cpu-share", asked.CPU.Shares, want.CPU.Shares},
		{"blkio-weight", asked.BlockIO.Weight, want.BlockIO.Weight},
	} {
		if s := deref(v.want); s != deref(v.asked) && s != "" {
			rw.set(u.inv, v.flag, s)
		}
	}
	if again, err := Parse(u.inv.apply(rw)); err == nil && again.Err == nil {
		if got, err := resourcesFromFlags(again); err == nil && reflect.DeepEqual(got, want) {
			return rw, nil, out, nil
		}
	}
	rw = newRewrite()
	rw.dropAll(u.inv, resourceFlags...)
	pass, err := json.Marshal(want)
	return rw, pass, out, err
}

// deref prints a pointer to a number, or "" for nil.
func deref(v any) string {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.IsNil() {
		return ""
	}
	return fmt.Sprint(rv.Elem().Interface())
}

// resourcesFromFlags is runc v1.4.0's update.go for an update without -r:
// the resources its flags describe, from the same starting value.
func resourcesFromFlags(inv *Invocation) (*specs.LinuxResources, error) {
	f := false
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{CheckBeforeUpdate: &f},
		CPU:     &specs.LinuxCPU{},
		BlockIO: &specs.LinuxBlockIO{},
		Pids:    &specs.LinuxPids{},
	}
	// IntFlags are parsed by Go's flag package: base prefixes allowed.
	if v, ok := inv.Value("blkio-weight"); ok {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -blkio-weight: %w", v, err)
		}
		if n != 0 {
			w := uint16(n)
			r.BlockIO.Weight = &w
		}
	}
	if v, _ := inv.Value("cpuset-cpus"); v != "" {
		r.CPU.Cpus = v
	}
	if v, _ := inv.Value("cpuset-mems"); v != "" {
		r.CPU.Mems = v
	}
	if v, _ := inv.Value("cpu-idle"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for cpu-idle: %w", err)
		}
		r.CPU.Idle = &n
	}
	for _, p := range []struct {
		opt  string
		dest **uint64
	}{
		{"cpu-burst", &r.CPU.Burst}, {"cpu-period", &r.CPU.Period},
		{"cpu-rt-period", &r.CPU.RealtimePeriod}, {"cpu-share", &r.CPU.Shares},
	} {
		if v, _ := inv.Value(p.opt); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", p.opt, err)
			}
			*p.dest = &n
		}
	}
	for _, p := range []struct {
		opt  string
		dest **int64
	}{
		{"cpu-quota", &r.CPU.Quota}, {"cpu-rt-runtime", &r.CPU.RealtimeRuntime},
	} {
		if v, _ := inv.Value(p.opt); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", p.opt, err)
			}
			*p.dest = &n
		}
	}
	for _, p := range []struct {
		opt  string
		dest **int64
	}{
		{"memory", &r.Memory.Limit}, {"memory-swap", &r.Memory.Swap},
		{"kernel-memory", &r.Memory.Kernel}, //nolint:staticcheck // runc still reads it
		{"kernel-memory-tcp", &r.Memory.KernelTCP}, {"memory-reservation", &r.Memory.Reservation},
	} {
		if v, _ := inv.Value(p.opt); v != "" {
			n := int64(-1)
			if v != "-1" {
				var err error
				if n, err = units.RAMInBytes(v); err != nil {
					return nil, fmt.Errorf("invalid value for %s: %w", p.opt, err)
				}
			}
			*p.dest = &n
		}
	}
	if v, ok := inv.Value("pids-limit"); ok {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -pids-limit: %w", v, err)
		}
		r.Pids.Limit = &n
	}
	return r, nil
}
