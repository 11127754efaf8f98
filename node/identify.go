package node

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// Identify builds a container's identity from its spec and what only the
// entry point knows: the container ID, the engine namespace (the containerd
// namespace; "moby" is Docker's) and the runtime handler the configuration
// names. The shim and harden-runc identify a container the same way, so a
// rule matches it whichever way it was started.
func Identify(s *specs.Spec, id, ns string, cfg Config) spec.Identity {
	ident := spec.IdentityFromSpec(s)
	ident.ID, ident.EngineNamespace = id, ns
	if ident.RuntimeHandler == "" {
		ident.RuntimeHandler = cfg.RuntimeHandler
	}
	if ident.Engine == spec.EngineUnknown && ns == "moby" {
		ident.Engine = spec.EngineDocker
	}
	return ident
}

// AllowUnhardened applies failurePolicy to err, an error hardening a
// container: it reports whether the container may run unhardened. A refusal
// (spec.ErrPolicyViolation) never may. The configuration's FailurePolicy
// decides when it is set or when the policy could not be loaded (pol is
// nil); otherwise the policy's own failurePolicy does.
func (c Config) AllowUnhardened(pol *profiles.Compiled, err error) bool {
	if err == nil || errors.Is(err, spec.ErrPolicyViolation) {
		return false
	}
	if c.FailurePolicy == "" && pol != nil {
		return pol.FailurePolicy == profiles.FailAllow
	}
	return c.FailurePolicy == string(profiles.FailAllow)
}

// HardenBundle hardens <bundle>/config.json for a container about to be
// created: read it, identify the container (identify adds what the entry
// point knows to the spec's annotations), decide, harden for the decided
// backend's host, and in enforce mode write the result back atomically.
// Audit mode leaves the file as it was. It fills rec's Policy, Outcome,
// Result and Error, and returns the identity and the spec as the runtime
// will run it (hardened, or as read in audit mode). The error wraps
// spec.ErrPolicyViolation when the policy refuses the container.
func HardenBundle(pol *profiles.Compiled, cfg Config, bundle string, identify func(*specs.Spec) spec.Identity, rec *Record) (spec.Identity, *specs.Spec, error) {
	rec.Policy = pol.Source
	doc, err := spec.ReadBundle(bundle)
	if err != nil {
		rec.Result, rec.Error = ResultError, err.Error()
		return spec.Identity{}, nil, err
	}
	id := identify(doc.Spec)
	d, _, _ := pol.Decide(id)
	out, herr := pol.Harden(doc.Spec, id, cfg.HostFor(d.Backend, pol))
	rec.Outcome = out
	rec.Result = ResultOf(out, herr)
	if herr != nil {
		rec.Error = herr.Error()
		return id, nil, herr
	}
	if out.Decision.Mode == spec.Enforce {
		if err := doc.WriteBundle(bundle); err != nil {
			rec.Result, rec.Error = ResultError, err.Error()
			return id, nil, err
		}
	}
	return id, doc.Spec, nil
}
