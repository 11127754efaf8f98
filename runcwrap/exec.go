package runcwrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// exec hardens the process of `exec` against the container it joins, the
// way the shim hardens an Exec request (profiles.HardenExec): no capability
// outside the container's bounding set or the profile, no_new_privileges
// when the container has it, the container's LSM labels, the profile's
// non-root rule.
func (w *Wrapper) exec(inv *Invocation, cfg node.Config, lg *logger) (*plan, error) {
	if _, ok := inv.Value("process"); !ok && len(inv.Args) < 2 {
		return nil, errors.New("exec args cannot be empty") // runc's words
	}
	c, err := lookupExisting(inv, cfg)
	if err != nil {
		w.recordFailure(cfg, lg, node.EventExec, inv, err)
		return nil, err
	}
	rec := w.newRecord(node.EventExec, c)
	x := execInput{inv: inv, container: c.doc.Spec, pol: c.pol, identity: c.identity, host: cfg.Host(c.decision.Backend), readFile: os.ReadFile}
	rw, pass, out, herr := x.harden()
	if err := w.finish(cfg, lg, rec, out, herr); err != nil {
		return nil, err
	}
	if pass != nil {
		path, err := passFile("process", pass, firstFreeFD(inv, w.Getenv))
		if err != nil {
			return nil, fmt.Errorf("hand the hardened process to the runtime: %w", err)
		}
		rw.set(inv, "process", path)
	}
	return &plan{runtime: c.runtime, args: inv.apply(rw)}, nil
}

// firstFreeFD is the lowest descriptor the runtime does not hand to the
// exec'd process: 3 + --preserve-fds + $LISTEN_FDS (runc's runner).
func firstFreeFD(inv *Invocation, getenv func(string) string) int {
	n := 3
	if v, ok := inv.Value("preserve-fds"); ok {
		if p, err := strconv.ParseInt(v, 0, 32); err == nil && p > 0 {
			n += int(p)
		}
	}
	if p, err := strconv.Atoi(getenv("LISTEN_FDS")); err == nil && p > 0 {
		n += p
	}
	return n
}

// execInput is what hardening one exec needs; harden is pure apart from
// reading the --process file.
type execInput struct {
	inv       *Invocation
	container *specs.Spec // the container's config.json, as hardened at create
	pol       *profiles.Compiled
	identity  spec.Identity
	host      spec.Host
	readFile  func(string) ([]byte, error)
}

// Inline flags runc ignores when --process names the process, and which
// could add privileges under a runtime that does not ignore them.
var inlineProcessFlags = []string{"cap", "user", "additional-gids", "no-new-privs", "apparmor", "process-label"}

// harden returns the command line change and, when the runtime must read a
// new process document, its content (the caller passes it as --process).
// Audit mode changes nothing.
func (x execInput) harden() (*rewrite, []byte, *profiles.Outcome, error) {
	if path, ok := x.inv.Value("process"); ok && path != "" {
		return x.processFile(path)
	}
	return x.inline()
}

// processFile hardens `exec --process FILE`. The caller's file is not
// touched (the runc shim removes it after the exec; Podman's conmon keeps
// its own): the runtime gets a new document, the hardened process or, when
// nothing changed (audit mode included), the bytes harden read. A document
// that names a field twice is always handed over as harden renders it.
func (x execInput) processFile(path string) (*rewrite, []byte, *profiles.Outcome, error) {
	data, err := x.readFile(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read process: %w", err)
	}
	raw, err := firstJSON(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("process %s: %w", path, err)
	}
	// As part of a spec document, the process is decoded the way runc
	// reads it (keys without regard to case), with a key given twice
	// refused and fields this spec version lacks kept.
	doc, err := spec.Parse(wrapJSON(raw, "process"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("process %s: %w", path, err)
	}
	if doc.Spec.Process == nil {
		return nil, nil, nil, fmt.Errorf("process %s: no process", path)
	}
	out, herr := x.pol.HardenExec(doc.Spec.Process, x.container, x.identity, x.host)
	if herr != nil {
		return nil, nil, out, herr
	}
	// From here on the runtime reads the document harden read, never the
	// path again: a pipe (--process <(...)) cannot be read twice, and a
	// file could change between harden's read and the runtime's.
	rw := newRewrite()
	if out.Decision.Mode != spec.Enforce {
		return rw, data, out, nil // audit: the same bytes
	}
	rw.dropAll(x.inv, inlineProcessFlags...)
	if len(out.Changes) == 0 && !doc.Ambiguous() {
		return rw, data, out, nil
	}
	b, err := doc.Marshal()
	if err != nil {
		return nil, nil, out, err
	}
	pass, err := member(b, "process")
	return rw, pass, out, err
}

// inline hardens `exec ID CMD...` with flags. runc builds that process from
// the bundle's config.json (hardened at create) plus the flags, so harden
// builds it the same way (runc v1.4.0 exec.go getProcess), hardens it, and
// then changes only the flags: drops --cap values the container may not
// have, adds --no-new-privs, sets --apparmor and --process-label. If the
// result built from the new flags is not exactly the hardened process (the
// config.json was not hardened: the container was created in audit mode,
// unhardened, or outside harden), the hardened process is passed whole as
// --process instead.
func (x execInput) inline() (*rewrite, []byte, *profiles.Outcome, error) {
	if x.container == nil || x.container.Process == nil {
		return nil, nil, nil, errors.New("the container's config.json has no process")
	}
	asked, err := buildProcess(x.inv, x.container.Process)
	if err != nil {
		return nil, nil, nil, err
	}
	hardenedSpec, err := spec.Clone(&specs.Spec{Process: asked})
	if err != nil {
		return nil, nil, nil, err
	}
	want := hardenedSpec.Process
	out, herr := x.pol.HardenExec(want, x.container, x.identity, x.host)
	if herr != nil || out.Decision.Mode != spec.Enforce || len(out.Changes) == 0 {
		return nil, nil, out, herr
	}
	rw := newRewrite()
	var bounding []string
	if want.Capabilities != nil {
		bounding = want.Capabilities.Bounding
	}
	for _, fl := range x.inv.Flags {
		if fl.Name == "cap" && !slices.Contains(bounding, fl.Value) {
			rw.dropFlag(fl)
		}
	}
	if want.NoNewPrivileges != asked.NoNewPrivileges {
		rw.dropAll(x.inv, "no-new-privs")
		rw.insert = append(rw.insert, "--no-new-privs")
	}
	if want.ApparmorProfile != asked.ApparmorProfile {
		rw.set(x.inv, "apparmor", want.ApparmorProfile)
	}
	if want.SelinuxLabel != asked.SelinuxLabel {
		rw.set(x.inv, "process-label", want.SelinuxLabel)
	}
	if got, err := reparse(x.inv, rw, x.container.Process); err == nil && sameProcess(got, want) {
		return rw, nil, out, nil
	}
	// The flags cannot express it: hand over the whole process.
	rw = newRewrite()
	rw.dropAll(x.inv, inlineProcessFlags...)
	rw.dropAll(x.inv, "cwd", "env", "tty")
	for _, i := range x.inv.ArgIndex[1:] {
		rw.drop[i] = true
	}
	pass, err := json.Marshal(want)
	return rw, pass, out, err
}

// reparse builds the process runc would build from the rewritten command
// line.
func reparse(inv *Invocation, rw *rewrite, base *specs.Process) (*specs.Process, error) {
	again, err := Parse(inv.apply(rw))
	if err != nil {
		return nil, err
	}
	if again.Err != nil || again.Sub != "exec" {
		return nil, fmt.Errorf("rewritten exec does not parse: %v", again.Err)
	}
	return buildProcess(again, base)
}

// buildProcess is runc v1.4.0's getProcess for an exec without --process:
// the container's process with the command and the flags applied.
func buildProcess(inv *Invocation, base *specs.Process) (*specs.Process, error) {
	c, err := spec.Clone(&specs.Spec{Process: base})
	if err != nil {
		return nil, err
	}
	p := c.Process
	if len(inv.Args) < 2 {
		return nil, errors.New("exec args cannot be empty")
	}
	p.Args = slices.Clone(inv.Args[1:])
	if v, _ := inv.Value("cwd"); v != "" {
		p.Cwd = v
	}
	if v, _ := inv.Value("apparmor"); v != "" {
		p.ApparmorProfile = v
	}
	if v, _ := inv.Value("process-label"); v != "" {
		p.SelinuxLabel = v
	}
	if caps := inv.Values("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			// runc would dereference nil here; an empty set is the
			// closest meaning.
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range caps {
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
			// runc sets ambient only when the spec has inheritable ones.
			if p.Capabilities.Inheritable != nil {
				p.Capabilities.Ambient = append(p.Capabilities.Ambient, c)
			}
		}
	}
	p.Env = append(p.Env, inv.Values("env")...)
	p.Terminal, _ = inv.Bool("tty")
	if v, set := inv.Bool("no-new-privs"); set {
		p.NoNewPrivileges = v
	}
	if user, _ := inv.Value("user"); user != "" {
		uids, gids, ok := cutColon(user)
		if ok {
			gid, err := strconv.Atoi(gids)
			if err != nil {
				return nil, fmt.Errorf("bad gid: %w", err)
			}
			p.User.GID = uint32(gid)
		}
		uid, err := strconv.Atoi(uids)
		if err != nil {
			return nil, fmt.Errorf("bad uid: %w", err)
		}
		p.User.UID = uint32(uid)
	}
	for _, g := range inv.Values("additional-gids") {
		// Go's flag package parses Int64Slice values in base 10.
		gid, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -additional-gids: %w", g, err)
		}
		if gid < 0 {
			return nil, fmt.Errorf("additional-gids must be a positive number %d", gid)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	return p, nil
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// sameProcess compares two processes, capability sets as sets.
func sameProcess(a, b *specs.Process) bool {
	norm := func(p *specs.Process) *specs.Process {
		c, err := spec.Clone(&specs.Spec{Process: p})
		if err != nil || c.Process == nil {
			return p
		}
		q := c.Process
		if q.Capabilities != nil {
			for _, set := range []*[]string{&q.Capabilities.Bounding, &q.Capabilities.Effective, &q.Capabilities.Permitted, &q.Capabilities.Inheritable, &q.Capabilities.Ambient} {
				slices.Sort(*set)
				*set = slices.Compact(*set)
				if len(*set) == 0 {
					*set = nil
				}
			}
		}
		return q
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// firstJSON returns the first JSON value in data: runc decodes process and
// resources files with json.Decoder.Decode, which ignores what follows.
func firstJSON(data []byte) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// wrapJSON nests raw under the keys: wrapJSON(r, "linux", "resources") is
// {"linux":{"resources":r}}.
func wrapJSON(raw json.RawMessage, keys ...string) []byte {
	var b bytes.Buffer
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		b.WriteByte('{')
		b.Write(kb)
		b.WriteByte(':')
	}
	b.Write(raw)
	for range keys {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// member extracts the value at keys from a JSON document.
func member(doc []byte, keys ...string) ([]byte, error) {
	cur := json.RawMessage(doc)
	for _, k := range keys {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(cur, &m); err != nil {
			return nil, fmt.Errorf("encode %s: %w", k, err)
		}
		v, ok := m[k]
		if !ok {
			return nil, fmt.Errorf("encode: no %s", k)
		}
		cur = v
	}
	return cur, nil
}
