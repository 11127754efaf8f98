package runcwrap

import "slices"

// rewrite is a change to the command line: arguments to drop (by their
// index in Invocation.Argv) and flags to insert right after the
// subcommand. Inserting there is valid for every subcommand harden changes:
// it is before the container ID, where runc reads flags whether or not the
// command reorders its arguments.
type rewrite struct {
	drop   map[int]bool
	insert []string
}

func newRewrite() *rewrite { return &rewrite{drop: map[int]bool{}} }

// dropFlag removes a flag and its separate value.
func (r *rewrite) dropFlag(fl Flag) {
	r.drop[fl.Index] = true
	if fl.ValueIndex >= 0 {
		r.drop[fl.ValueIndex] = true
	}
}

// dropAll removes every occurrence of the named subcommand flags.
func (r *rewrite) dropAll(inv *Invocation, names ...string) {
	for _, fl := range inv.Flags {
		if slices.Contains(names, fl.Name) {
			r.dropFlag(fl)
		}
	}
}

// set replaces every occurrence of a subcommand flag by one "--name=value".
func (r *rewrite) set(inv *Invocation, name, value string) {
	r.dropAll(inv, name)
	r.insert = append(r.insert, "--"+name+"="+value)
}

// changed reports whether the rewrite changes anything.
func (r *rewrite) changed() bool { return len(r.drop) > 0 || len(r.insert) > 0 }

// apply returns the runtime's command line (without the program name):
// inv.Argv with harden's own global flags removed and r applied.
func (inv *Invocation) apply(r *rewrite) []string {
	drop := map[int]bool{}
	for _, fl := range inv.Global {
		if fl.Name == flagHardenConfig || fl.Name == flagHardenRuntime {
			drop[fl.Index] = true
			if fl.ValueIndex >= 0 {
				drop[fl.ValueIndex] = true
			}
		}
	}
	var insert []string
	if r != nil {
		for i := range r.drop {
			drop[i] = true
		}
		insert = r.insert
	}
	out := make([]string, 0, len(inv.Argv)+len(insert))
	for i, a := range inv.Argv {
		if !drop[i] {
			out = append(out, a)
		}
		if i == inv.SubIndex {
			out = append(out, insert...)
		}
	}
	return out
}
