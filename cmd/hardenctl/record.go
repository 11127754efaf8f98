package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/record"
)

var cmdRecord = &command{
	name:    "record",
	args:    "-o PROFILE.json [flags] IMAGE [COMMAND [ARG...]]",
	summary: "Run a container under a recording filter and write the minimal seccomp profile it needs",
	detail: `record runs a new container from IMAGE through containerd's ctr, under a
seccomp filter that reports every syscall to hardenctl (seccomp user
notification) and lets it run. When the container exits (or after --duration,
when record stops it), record writes an OCI seccomp profile to PROFILE.json
that allows exactly the syscalls the workload and the runtime made, plus a
few every container needs (see docs/recording.md), and denies every other one
with EPERM. A harden policy can name the file in seccomp.profile; ctr run
--seccomp --seccomp-profile takes it as is.

While it is recorded the workload is NOT confined by seccomp: every syscall
it makes runs. Record only workloads you trust, in a test environment.

Flags come before IMAGE; everything after IMAGE is the container's command
(default: the image's). The image must already be in containerd (ctr does
not pull here). The container's output goes to stderr; the summary (or
--json) to stdout. The container is removed on every path: when it exits,
after --duration, when the runtime refuses it, and on Ctrl-C (then no
profile is written).

The default runtime, io.containerd.runc.v2, runs runc; crun works too (its
shim or --run-flag=--runc-binary=crun). harden's own shim
(io.containerd.harden.v2) and harden-runc replace a container's seccomp
profile with their policy's, so they cannot record: record refuses that
runtime, and fails when no filter reported to it. gVisor (runsc) ignores
listenerPath.

Exit status: 0 when the profile was written; 1 when it was not, or when the
workload exited with a non-zero status (the profile is written then, and
covers what the workload did until it failed).`,
	examples: []string{
		"hardenctl record -o /etc/harden/seccomp/app.json docker.io/library/app:1.2",
		"hardenctl record -o app.json --print-policy IMAGE /app/selftest --quick",
		"hardenctl record -o web.json --duration 2m IMAGE   # stop it after two minutes",
		"hardenctl record -o app.json --address /run/k3s/containerd/containerd.sock --namespace k8s.io IMAGE",
		"hardenctl record -o app.json --run-flag=--env=MODE=test --run-flag=--user=1000 IMAGE",
		"hardenctl record -o app.json --json IMAGE | jq -r '.syscalls[].name'",
	},
	run: runRecordCmd,
}

// recordHardenRuntime is harden's shim, which replaces the recording filter.
const recordHardenRuntime = "io.containerd.harden.v2"

// recordOptions is record's command line.
type recordOptions struct {
	output      string // absolute path of the profile to write
	ctr         string // ctr binary; "" = on PATH
	address     string // containerd socket; "" = ctr's default
	namespace   string
	runtime     string
	runFlags    []string
	duration    time.Duration // 0: until the container exits
	stopTimeout time.Duration // SIGTERM to SIGKILL
	socketDir   string        // where the listener socket's private directory goes
	withoutNNP  bool          // add record.RuntimeWithoutNNP
	printPolicy bool
	name        string // profile and rule name in the printed policy
	json        bool
	image       string
	args        []string // the container's command; nil = the image's
}

// parseRecordArgs reads record's command line. Flags end at IMAGE, as for
// `ctr run` and `docker run`: what follows is the container's command,
// which has flags of its own.
func parseRecordArgs(c *cli, cmd *command, fs *flag.FlagSet, args []string) (recordOptions, error) {
	o := recordOptions{namespace: "default", runtime: "io.containerd.runc.v2"}
	fs.StringVar(&o.output, "o", "", "write the profile to `FILE` (required; same as --output)")
	fs.StringVar(&o.output, "output", "", "write the profile to `FILE` (required)")
	fs.StringVar(&o.ctr, "ctr", "", "ctr `PATH` (default: ctr on PATH)")
	fs.StringVar(&o.address, "address", "", "containerd's `SOCKET` (default: ctr's default, /run/containerd/containerd.sock)")
	fs.StringVar(&o.namespace, "namespace", o.namespace, "containerd `NAMESPACE` holding the image")
	fs.StringVar(&o.runtime, "runtime", o.runtime, "containerd runtime `TYPE`; it must pass the container's seccomp profile to runc or crun unchanged")
	fs.Func("run-flag", "extra `FLAG` for `ctr run`, e.g. --run-flag=--env=K=V, --run-flag=--runc-binary=crun (repeatable)", func(s string) error {
		o.runFlags = append(o.runFlags, s)
		return nil
	})
	fs.DurationVar(&o.duration, "duration", 0, "stop the container after `DURATION` (SIGTERM, then SIGKILL after --stop-timeout) and write what it did until then (default: until it exits)")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 10*time.Second, "after --duration, wait `DURATION` between SIGTERM and SIGKILL")
	fs.StringVar(&o.socketDir, "socket-dir", "", "create the listener socket's private directory in `DIR` (default /run, else $TMPDIR); runc must reach it")
	fs.BoolVar(&o.withoutNNP, "without-nnp", false, "also allow what runc needs to start a container without no_new_privileges (Docker's default; Kubernetes with allowPrivilegeEscalation), which the recording (with it) cannot see; not needed under harden")
	fs.BoolVar(&o.printPolicy, "print-policy", false, "also print a harden policy whose profile uses the recorded file")
	fs.StringVar(&o.name, "name", "", "profile and rule `NAME` in the printed policy (default: recorded-<file name>)")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.usage(c.stdout, cmd, fs)
		return o, errHelp
	}
	if err != nil {
		return o, usagef(cmd, "%v", err)
	}
	pos := fs.Args()
	if len(pos) > 0 && pos[0] == "--" {
		pos = pos[1:]
	}
	if len(pos) == 0 {
		return o, usagef(cmd, "name the IMAGE to run")
	}
	o.image, o.args = pos[0], pos[1:]
	switch {
	case o.output == "":
		return o, usagef(cmd, "-o FILE is required: where to write the profile")
	case strings.HasPrefix(o.image, "-"):
		return o, usagef(cmd, "image %q looks like a flag; flags come before IMAGE", o.image)
	case o.duration < 0:
		return o, usagef(cmd, "--duration must not be negative")
	case o.stopTimeout <= 0:
		return o, usagef(cmd, "--stop-timeout must be positive")
	case o.namespace == "":
		return o, usagef(cmd, "--namespace must not be empty")
	case o.runtime == recordHardenRuntime:
		return o, usagef(cmd, "--runtime %s cannot record: harden installs its policy's seccomp filter, narrowed to the recording filter, so syscalls the policy denies never reach the recorder; record under the plain runc shim (io.containerd.runc.v2), then name the profile in the policy", recordHardenRuntime)
	}
	for _, f := range o.runFlags {
		if isSeccompFlag(f) {
			return o, usagef(cmd, "--run-flag %s would change or remove the recording filter: record sets the seccomp profile itself", f)
		}
	}
	if o.output, err = filepath.Abs(o.output); err != nil {
		return o, err
	}
	if o.name == "" {
		o.name = "recorded-" + slug(strings.TrimSuffix(filepath.Base(o.output), filepath.Ext(o.output)))
	}
	return o, nil
}

// isSeccompFlag reports a ctr run flag that would change the recording
// filter.
func isSeccompFlag(f string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(f, "-"), "=")
	return name == "seccomp" || name == "seccomp-profile" || name == "privileged"
}

// slug keeps letters, digits, '.', '_' and '-'; anything else becomes '-'.
func slug(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "profile"
	}
	return string(b)
}

func runRecordCmd(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	o, err := parseRecordArgs(c, cmd, fs, args)
	if err != nil {
		return err
	}
	// Fail before running anything if the profile cannot be written.
	if fi, err := os.Stat(filepath.Dir(o.output)); err != nil || !fi.IsDir() {
		return fmt.Errorf("record: -o %s: directory %s does not exist", o.output, filepath.Dir(o.output))
	}
	if fi, err := os.Stat(o.output); err == nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0) {
		return fmt.Errorf("record: -o %s: exists and is not a regular file writable only by its owner (mode %s); harden would refuse it", o.output, fi.Mode())
	}
	if o.ctr, err = findCtr(o.ctr); err != nil {
		return err
	}
	// Ctrl-C and SIGTERM end the recording; the container is removed after.
	// ctr runs in its own process group, so a Ctrl-C on the terminal reaches
	// only hardenctl, which then cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	rec, err := runRecording(ctx, c.stderr, o)
	if err != nil {
		return err
	}
	names := rec.res.Names()
	if o.withoutNNP {
		names = append(names, record.RuntimeWithoutNNP...)
	}
	arches := mergeArches(rec.res.Arches())
	prof, err := record.Profile(names, arches)
	if err != nil {
		return err
	}
	if err := record.WriteProfile(o.output, prof); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	rep := newRecordReport(o, rec, prof)
	if o.printPolicy {
		if rep.Policy, err = recordPolicy(o, rec.name); err != nil {
			return err
		}
	}
	if o.json {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(c)
	}
	if rec.exitCode > 0 && !rec.stopped {
		return &exitStatus{code: exitFailure, err: fmt.Errorf("record: ctr run exited with status %d (the workload's exit status, unless ctr said otherwise above); %s was written, but covers only what ran until then", rec.exitCode, o.output)}
	}
	return nil
}

// mergeArches is the native architecture family's first member (always
// allowed: it is how every workload calls the kernel) and the
// architectures the recording saw, in order.
func mergeArches(seen []specs.Arch) []specs.Arch {
	fam, err := record.Arches()
	if err != nil || len(fam) == 0 {
		return seen
	}
	out := []specs.Arch{fam[0]}
	for _, a := range seen {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// recording is what one run produced.
type recording struct {
	name     string // the container
	res      record.Result
	elapsed  time.Duration
	stopped  bool // --duration ended it
	exitCode int  // ctr run's exit status
	drained  bool // every process under the filter had ended when recording stopped
}

// runRecording runs the container under the recording filter and removes
// it, whatever happens. It returns an error, and no recording, when the
// recording is not usable: interrupted, the container never ran under the
// filter, or a notification fd failed.
func runRecording(ctx context.Context, stderr io.Writer, o recordOptions) (*recording, error) {
	name, err := freshName("harden-record-")
	if err != nil {
		return nil, err
	}
	dir, err := recordSocketDir(o.socketDir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify.sock")
	// The container's name is the listener metadata: the recorder serves
	// only fds that runc sends for this container's filter.
	rec, err := record.Listen(sock, name)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	defer rec.Stop(0)
	filter, err := record.RecordingProfile(sock, name)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	body, err := record.Marshal(filter)
	if err != nil {
		return nil, err
	}
	filterFile := filepath.Join(dir, "recording.json")
	if err := os.WriteFile(filterFile, body, 0o600); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}

	e := recordCtr{engineCLI{path: o.ctr, global: ctrGlobal(o.address, o.namespace)}}
	runArgs := []string{"run", "--rm", "--runtime", o.runtime, "--seccomp", "--seccomp-profile", filterFile}
	runArgs = append(runArgs, o.runFlags...)
	runArgs = append(append(runArgs, o.image, name), o.args...)
	fmt.Fprintf(stderr, "hardenctl: record: running %s as container %s; seccomp does NOT confine it while it is recorded\n", o.image, name)

	runCtx, cancelRun := context.WithCancel(context.Background())
	defer cancelRun()
	cmd := e.command(runCtx, runArgs...)
	cmd.Stdout, cmd.Stderr = stderr, stderr // the workload's output; the summary owns stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("record: start %s: %w", o.ctr, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	out := &recording{name: name}
	var runErr error
	var deadline, killAt <-chan time.Time
	if o.duration > 0 {
		deadline = time.After(o.duration)
	}
	interrupted := false
wait:
	for {
		select {
		case runErr = <-waited:
			break wait
		case <-deadline:
			deadline, out.stopped = nil, true
			fmt.Fprintf(stderr, "hardenctl: record: %s elapsed (--duration); stopping container %s\n", o.duration, name)
			if err := e.kill(name, "SIGTERM", false); err != nil {
				fmt.Fprintf(stderr, "hardenctl: record: %v\n", err)
			}
			killAt = time.After(o.stopTimeout)
		case <-killAt:
			killAt = nil
			if err := e.kill(name, "SIGKILL", true); err != nil {
				fmt.Fprintf(stderr, "hardenctl: record: %v\n", err)
			}
		case <-ctx.Done():
			interrupted = true
			fmt.Fprintf(stderr, "hardenctl: record: interrupted; removing container %s\n", name)
			cancelRun() // kills ctr's process group; the task lives on in containerd
			runErr = <-waited
			break wait
		}
	}
	out.elapsed = time.Since(start)
	if ee := (*exec.ExitError)(nil); errors.As(runErr, &ee) {
		out.exitCode = ee.ExitCode()
	} else if runErr != nil {
		out.exitCode = -1
	}

	// Removal gets its own time, whatever happened to the run's.
	rmCtx, rmCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rmCancel()
	rmErr := e.ctrRemove(rmCtx, name)
	// Once the container is gone no process uses the filter, and the
	// sessions end by themselves.
	out.drained = rec.Stop(10 * time.Second)
	out.res = rec.Result()

	switch {
	case interrupted && rmErr != nil:
		return nil, fmt.Errorf("record: interrupted; no profile written; container %s may be left: %w", name, rmErr)
	case interrupted:
		return nil, fmt.Errorf("record: interrupted; container %s removed; no profile written", name)
	case rmErr != nil:
		return nil, fmt.Errorf("record: container %s may be left (no profile written): %w", name, rmErr)
	}
	if len(out.res.Sessions) == 0 {
		why := ""
		if len(out.res.Rejected) > 0 {
			why = " (rejected: " + strings.Join(out.res.Rejected, "; ") + ")"
		}
		if runErr != nil {
			return nil, fmt.Errorf("record: the container did not run under the recording filter; ctr run failed: %v (see its output above)%s", runErr, why)
		}
		return nil, fmt.Errorf("record: the container ran, but no runtime handed the recording filter's listener fd to hardenctl, so nothing was recorded%s: the runtime replaced or ignored the seccomp profile (harden's shim and harden-runc replace it with the policy's; runsc ignores listenerPath). Record with runc or crun under io.containerd.runc.v2", why)
	}
	for _, s := range out.res.Sessions {
		if s.Err != "" {
			return nil, fmt.Errorf("record: the recording of %s (pid %d) failed, so it is incomplete and no profile was written: %s", s.ContainerID, s.Pid, s.Err)
		}
	}
	if !out.drained {
		return nil, fmt.Errorf("record: processes were still under the recording filter after container %s was removed; no profile written", name)
	}
	return out, nil
}

// recordSocketDir creates the private directory (0700) for the listener
// socket and the recording filter: in dir if given, else /run (a tmpfs in
// the host's mount namespace, where containerd and runc run), else TMPDIR.
// Whoever can connect to the socket can hand hardenctl an fd, so nobody
// else may reach it.
func recordSocketDir(dir string) (string, error) {
	bases := []string{dir}
	if dir == "" {
		bases = []string{"/run", os.TempDir()}
	}
	var errs []error
	for _, b := range bases {
		d, err := os.MkdirTemp(b, "harden-record.")
		if err == nil {
			return d, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("record: socket directory: %w", errors.Join(errs...))
}

// findCtr returns ctr: path if given, else ctr on PATH.
func findCtr(path string) (string, error) {
	if path == "" {
		p, err := exec.LookPath("ctr")
		if err != nil {
			return "", errors.New("record: ctr not found on PATH; give --ctr PATH")
		}
		return p, nil
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("record: --ctr %s is not an executable file", path)
	}
	return path, nil
}

// recordCtr runs ctr against one containerd and namespace.
type recordCtr struct{ engineCLI }

// kill signals the container's task (with all, every process in it).
func (e recordCtr) kill(name, signal string, all bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"tasks", "kill", "--signal", signal}
	if all {
		args = append(args, "--all")
	}
	_, err := e.run(ctx, append(args, name)...)
	return err
}
