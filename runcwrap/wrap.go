// Package runcwrap is harden-runc: a runc-compatible command line that
// hardens create, run, restore, exec and update with the same node, policy
// and spec code as the containerd shim, then replaces itself with the real
// runtime (runc, crun, runsc) through syscall.Exec, so signals, stdio and
// exit codes stay the runtime's own. Engines that drive a runtime binary use
// it: Docker with a runtime path, Podman --runtime, CRI-O runtime_path, the
// runc shim's BinaryName.
//
// Every other subcommand goes to the runtime unchanged, without loading the
// policy. harden-runc never writes to stdout; errors go where runc puts
// them (its --log file, in its --log-format, and stderr), so engines show
// them like runc's.
package runcwrap

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// Entry names harden-runc in decision records.
const Entry = "harden-runc"

// ConfigEnv names the node configuration file when --harden-config does
// not; the shim reads the same variable.
const ConfigEnv = "HARDEN_CONFIG"

// Wrapper runs one harden-runc command. The zero value is not usable; New
// returns one wired to the process.
type Wrapper struct {
	Stdin  io.Reader // read by update -r -
	Stderr io.Writer
	Getenv func(string) string
	Now    func() time.Time
	// Exec replaces the process with the runtime: syscall.Exec.
	Exec func(path string, argv, envv []string) error
	// Run runs the runtime as a child (argv[0] included) with this
	// process's stdio, and returns its exit code (for delete, whose record
	// harden removes only once the runtime has deleted the container).
	Run func(path string, argv []string) (int, error)

	// argv0 is the name harden-runc was invoked as, which the runtime
	// gets as its own.
	argv0 string
}

// New returns a Wrapper for this process.
func New() *Wrapper {
	return &Wrapper{
		Stdin: os.Stdin, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now,
		Exec: syscall.Exec, Run: runChild,
	}
}

// Main runs harden-runc with os.Args and returns the exit code when the
// runtime could not be started (otherwise it does not return).
func Main() int {
	return New().Main(os.Args)
}

// Main runs the command line argv (argv[0] is the program name).
func (w *Wrapper) Main(argv []string) int {
	var args []string
	if len(argv) > 0 {
		w.argv0 = argv[0]
	}
	if len(argv) > 1 {
		args = argv[1:]
	}
	inv, perr := Parse(args)
	lg := newLogger(inv, w.Stderr, w.Now)
	cfgPath, explicit := w.configPath(inv)
	cfg, cerr := node.LoadConfig(cfgPath, !explicit)

	if perr != nil {
		return lg.fail(fmt.Errorf("harden-runc: %w", perr))
	}
	if !hardened(inv.Sub) || inv.ShowsHelp() {
		return w.passthrough(inv, cfg, cerr, lg)
	}
	id := inv.ID()
	if inv.Err != nil {
		return lg.fail(fmt.Errorf("harden-runc %s: %w (refused: harden cannot tell what the runtime would run)", inv.Sub, inv.Err))
	}
	if cerr != nil {
		return lg.fail(fmt.Errorf("harden-runc %s %s: %w", inv.Sub, id, cerr))
	}
	var p *plan
	var err error
	switch inv.Sub {
	case "create", "run", "restore":
		p, err = w.create(inv, cfg, lg)
	case "exec":
		p, err = w.exec(inv, cfg, lg)
	case "update":
		p, err = w.update(inv, cfg, lg)
	}
	if err != nil && inv.Sub == "exec" {
		// runc ends every exec that fails after its argument checks with
		// "exec failed: ..." and exit code 255 (exec.go fatalWithCode), so
		// that callers can tell it from the process's own exit code.
		return lg.failWithCode(fmt.Errorf("exec failed: container %s: %w", id, err), execFailed)
	}
	if err != nil {
		return lg.fail(fmt.Errorf("%s %s: %w", inv.Sub, id, err))
	}
	return w.handOver(p, lg)
}

// execFailed is runc's exit code for an exec that could not run.
const execFailed = 255

// plan is where and how the runtime runs.
type plan struct {
	runtime string
	args    []string // without the program name
}

// handOver replaces this process with the runtime.
func (w *Wrapper) handOver(p *plan, lg *logger) int {
	if err := notSelf(p.runtime); err != nil {
		return lg.fail(err)
	}
	err := w.Exec(p.runtime, w.runtimeArgv(p), os.Environ())
	return lg.fail(fmt.Errorf("harden-runc: run %s: %w", p.runtime, err))
}

// runtimeArgv is the runtime's command line. Its argv[0] is the name
// harden-runc was invoked as, so that the runtime's usage, help and error
// messages name the program the caller ran, as they would without harden
// (runc re-executes itself through /proc/self/exe, never argv[0]). A
// runtime whose name selects a mode keeps its own: crun runs as libkrun
// when invoked as krun.
func (w *Wrapper) runtimeArgv(p *plan) []string {
	name := w.argv0
	if name == "" || modeByName[filepath.Base(p.runtime)] {
		name = p.runtime
	}
	return append([]string{name}, p.args...)
}

// modeByName lists the runtime names that select what the runtime does.
var modeByName = map[string]bool{"krun": true}

// notSelf refuses to hand over to harden-runc itself, which would loop:
// an install that puts harden-runc first on PATH as "runc" needs
// BinaryName set to the real runc.
func notSelf(runtime string) error {
	self, err1 := os.Stat("/proc/self/exe")
	rt, err2 := os.Stat(runtime)
	if err1 == nil && err2 == nil && os.SameFile(self, rt) {
		return fmt.Errorf("harden-runc: the runtime %s is harden-runc itself: set BinaryName (or --harden-runtime) to the real runc", runtime)
	}
	return nil
}

func (w *Wrapper) configPath(inv *Invocation) (string, bool) {
	if v, ok := inv.GlobalValue(flagHardenConfig); ok {
		return v, true
	}
	if v := w.Getenv(ConfigEnv); v != "" {
		return v, false
	}
	return node.DefaultConfigPath, false
}

// root returns the runtime's --root as an absolute path, or "" for the
// runtime's default.
func root(inv *Invocation) string {
	r, ok := inv.GlobalValue("root")
	if !ok || r == "" {
		return ""
	}
	if a, err := filepath.Abs(r); err == nil {
		return a
	}
	return r
}

// forcedRuntime resolves --harden-runtime: a backend name (runc, crun,
// runsc: that backend's configured binary, with runsc's flags), a path, or
// a command on PATH.
func forcedRuntime(inv *Invocation, cfg node.Config) (string, bool, error) {
	v, ok := inv.GlobalValue(flagHardenRuntime)
	if !ok {
		return "", false, nil
	}
	if v == "" {
		return "", true, errors.New("--harden-runtime: empty")
	}
	if b, err := spec.ParseBackend(v); err == nil {
		bin, err := cfg.RuntimeBinary(b)
		return bin, true, err
	}
	p, err := exec.LookPath(v)
	if err != nil {
		return "", true, fmt.Errorf("--harden-runtime: %w", err)
	}
	p, err = filepath.Abs(p)
	return p, true, err
}

// existingRuntime is the runtime of a container that exists: the one
// harden handed it to at create (its record in StateDir), else the
// configured runc. --harden-runtime overrides both.
func existingRuntime(inv *Invocation, cfg node.Config, rec node.Record, found bool) (string, error) {
	if bin, ok, err := forcedRuntime(inv, cfg); ok {
		return bin, err
	}
	if found && rec.Runtime != "" {
		return rec.Runtime, nil
	}
	return cfg.RuntimeBinary(spec.Runc)
}

// passthrough hands a subcommand harden does not change to the runtime,
// without loading the policy: this runs on every state, kill and ps the
// engine makes. delete also forgets the container's record.
func (w *Wrapper) passthrough(inv *Invocation, cfg node.Config, cerr error, lg *logger) int {
	var rec node.Record
	found := false
	id := ""
	switch inv.Sub {
	case "state", "start", "kill", "delete", "pause", "resume", "ps", "events", "checkpoint":
		id = inv.ID()
	}
	if cerr != nil {
		// Keep state, kill and delete working with a broken configuration
		// file, on the default runtime, and say so where runc logs.
		lg.log("warning", fmt.Sprintf("harden-runc: %v: using the default runtime", cerr))
		cfg = node.Config{}
	} else if id != "" {
		rec, found, _ = cfg.Recorder().FindState(id, root(inv))
	}
	runtime, err := existingRuntime(inv, cfg, rec, found)
	if err != nil {
		return lg.fail(fmt.Errorf("harden-runc: %w", err))
	}
	p := &plan{runtime: runtime, args: inv.apply(nil)}
	if inv.Sub != "delete" || !found || inv.ShowsHelp() {
		return w.handOver(p, lg)
	}
	if err := notSelf(runtime); err != nil {
		return lg.fail(err)
	}
	code, err := w.Run(runtime, w.runtimeArgv(p))
	if err != nil {
		return lg.fail(fmt.Errorf("harden-runc: run %s: %w", runtime, err))
	}
	if code == 0 {
		if err := cfg.Recorder().RemoveState(rec.Namespace, rec.ID); err != nil {
			lg.log("warning", fmt.Sprintf("harden-runc: remove the record of container %s: %v", id, err))
		}
	}
	return code
}

// runChild runs the runtime with this process's stdio, forwards the
// signals an engine sends to stop it, and returns its exit code (128+N
// when signal N ended it, as a shell reports).
func runChild(path string, argv []string) (int, error) {
	cmd := exec.Command(path)
	cmd.Args = argv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// create hardens the bundle of create, run and restore (restore builds the
// container from <bundle>/config.json too), records the decision and picks
// the runtime: --harden-runtime, else the matched rule's backend.
func (w *Wrapper) create(inv *Invocation, cfg node.Config, lg *logger) (*plan, error) {
	start := w.Now()
	id := inv.ID()
	bundle, _ := inv.Value("bundle")
	if bundle == "" {
		bundle = "."
	}
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	pidFile, _ := inv.Value("pid-file")
	if pidFile != "" {
		if pidFile, err = filepath.Abs(pidFile); err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
	}
	rt := root(inv)
	ns := namespaceHint(rt, bundle)
	// A fast-path file left by an earlier container of this bundle must not
	// outlive this create, whatever its outcome.
	fast := fastPathFile(inv, bundle)
	if err := removeFast(fast); err != nil {
		return nil, fmt.Errorf("remove %s: %w", fast, err)
	}
	rec := node.Record{Time: start.UTC(), Event: node.EventCreate, Entry: Entry, ID: id, Namespace: ns,
		Bundle: bundle, PidFile: pidFile, Root: rt, Policy: cfg.Policy()}
	rc := cfg.Recorder()

	pol, herr := node.NewPolicyCache(cfg.Policy()).Get()
	if herr != nil {
		rec.Result, rec.Error = node.ResultError, herr.Error()
	} else {
		_, _, herr = node.HardenBundle(pol, cfg, bundle, func(s *specs.Spec) spec.Identity { return node.Identify(s, id, ns, cfg) }, &rec)
	}
	backend := spec.Runc
	if herr == nil {
		backend = rec.Outcome.Decision.Backend
	} else {
		if !cfg.AllowUnhardened(pol, herr) {
			w.record(rc, rec, lg, false)
			return nil, herr
		}
		// failurePolicy allow: the container runs as the engine asked, on
		// the default runtime, and everyone is told.
		rec.Result = node.ResultUnhardened
		lg.log("warning", fmt.Sprintf("harden: FAILED TO HARDEN container %s (%v); failurePolicy allow lets it run UNHARDENED", id, herr))
	}
	runtime, forced, err := forcedRuntime(inv, cfg)
	if !forced {
		runtime, err = cfg.RuntimeBinary(backend)
	}
	if err != nil {
		rec.Result, rec.Error = node.ResultError, err.Error()
		w.record(rc, rec, lg, false)
		return nil, err
	}
	rec.Runtime = runtime
	if fast != "" && id != "" {
		state, err := rc.StateFile(ns, id)
		if err == nil {
			err = writeFast(fast, fastEntry{id: id, root: rt, runtime: runtime, state: state, pidFile: pidFile})
		}
		if err != nil {
			lg.log("warning", fmt.Sprintf("harden-runc: write %s (the next commands take the slower path): %v", fast, err))
		}
	}
	rec.HardenMicros = w.Now().Sub(start).Microseconds()
	w.record(rc, rec, lg, id != "")
	lg.decision(rec)
	return &plan{runtime: runtime, args: inv.apply(nil)}, nil
}

// record writes the decision to the decision log and, for a container
// that will exist, its state record. Neither may fail the command: the
// decision is made and enforced; a failure is logged as runc logs warnings.
func (w *Wrapper) record(rc *node.Recorder, rec node.Record, lg *logger, save bool) {
	if err := rc.Write(rec); err != nil {
		lg.log("warning", "harden-runc: write decision log: "+err.Error())
	}
	if save {
		if err := rc.SaveState(rec); err != nil {
			lg.log("warning", "harden-runc: save container state: "+err.Error())
		}
	}
}

// existing is a container exec and update act on: its hardened spec,
// identity, runtime and the policy that decides for it.
type existing struct {
	id, root, bundle, runtime string
	doc                       *spec.Document
	identity                  spec.Identity
	pol                       *profiles.Compiled
	decision                  profiles.Decision
	chain                     []*profiles.Resolved
}

// lookupExisting finds the container's bundle through its runtime, reads
// its (hardened) config.json and identifies it as create did, so the same
// rule decides.
func lookupExisting(inv *Invocation, cfg node.Config) (*existing, error) {
	c := &existing{id: inv.ID(), root: root(inv)}
	if c.id == "" {
		return nil, errors.New("no container id")
	}
	rec, found, err := cfg.Recorder().FindState(c.id, c.root)
	if err != nil {
		return nil, err
	}
	if c.runtime, err = existingRuntime(inv, cfg, rec, found); err != nil {
		return nil, err
	}
	if c.bundle, err = bundleOf(c.runtime, inv, c.id, c.root); err != nil {
		return nil, err
	}
	if c.doc, err = spec.ReadBundle(c.bundle); err != nil {
		return nil, err
	}
	c.identity = node.Identify(c.doc.Spec, c.id, namespaceHint(c.root, c.bundle), cfg)
	if c.pol, err = node.NewPolicyCache(cfg.Policy()).Get(); err != nil {
		return nil, err
	}
	c.decision, c.chain, _ = c.pol.Decide(c.identity)
	return c, nil
}

// newRecord starts the record of an exec or update on c.
func (w *Wrapper) newRecord(event string, c *existing) node.Record {
	return node.Record{Time: w.Now().UTC(), Event: event, Entry: Entry, ID: c.id, Namespace: c.identity.EngineNamespace,
		Bundle: c.bundle, Policy: c.pol.Source, Runtime: c.runtime, Root: c.root}
}

// recordFailure records an exec or update harden could not decide (the
// container or its bundle could not be found, the policy not loaded): it
// does not run.
func (w *Wrapper) recordFailure(cfg node.Config, lg *logger, event string, inv *Invocation, err error) {
	rec := node.Record{Time: w.Now().UTC(), Event: event, Entry: Entry, ID: inv.ID(), Root: root(inv),
		Policy: cfg.Policy(), Result: node.ResultError, Error: err.Error()}
	w.record(cfg.Recorder(), rec, lg, false)
}

// finish records an exec or update decision and turns a refusal into the
// error the caller sees.
func (w *Wrapper) finish(cfg node.Config, lg *logger, rec node.Record, out *profiles.Outcome, herr error) error {
	rec.Outcome = out
	rec.Result = node.ResultOf(out, herr)
	if herr != nil {
		rec.Error = herr.Error()
	}
	rec.HardenMicros = w.Now().Sub(rec.Time).Microseconds()
	w.record(cfg.Recorder(), rec, lg, false)
	lg.decision(rec)
	return herr
}

// readLimited reads at most max bytes of a process or resources document.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than the %d byte limit", max)
	}
	return b, nil
}
