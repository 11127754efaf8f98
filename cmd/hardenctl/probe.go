package main

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var cmdProbe = &command{
	name:    "probe",
	args:    "[--engine containerd|docker|cri] [--runtime TYPE] [--runtime-handler NAME] [flags] IMAGE",
	summary: "Run harden's escape and posture probe in a new container on this node and show what is open",
	detail: `probe starts one container from IMAGE through the engine's own CLI (ctr,
docker or crictl), runs harden-probe in it, removes the container, and prints
one row per vector: open (the container could do it), blocked, or n/a (the
host lacks the feature), the evidence, and the harden rule expected to stop it.
The image must already be on the node for containerd and CRI (ctr and crictl
do not pull here).

harden-probe is copied into a private temporary directory and bind-mounted
read-only at /harden-probe (a mount of /usr/local/bin itself would be refused
by mounts.deny-host-path); the image is not changed. With --engine containerd
the container also gets a read-only cgroup mount, which ctr's default spec
lacks and CRI and Docker containers have, so the probe can read its own limits.

The container is removed on every path: when the probe is done, when the
engine or harden refuses it, on --timeout, and on Ctrl-C. A refused container
prints the engine's error (with harden, the rule and the field) and exits 1.

Exit status: 0 when the probe ran (the table is the result), 1 when the
container did not run or the probe did not report every vector, and with
--fail-open also when a vector is open or could not be measured.`,
	examples: []string{
		"hardenctl probe docker.io/library/busybox:latest",
		"hardenctl probe --runtime io.containerd.harden.v2 docker.io/library/busybox:latest",
		"hardenctl probe --runtime io.containerd.harden.v2 --user 1000:1000 --fail-open IMAGE",
		"hardenctl probe --engine docker --runtime harden busybox",
		"hardenctl probe --engine cri --runtime-handler harden --namespace payments --user 1000 IMAGE",
		"hardenctl probe --json IMAGE | jq '.vectors[] | select(.result == \"open\")'",
	},
	run: runProbeCmd,
}

// Engines probe drives, and the CLI each uses.
var probeEngines = map[string]string{
	"containerd": "ctr",
	"docker":     "docker",
	"cri":        "crictl",
}

// probeOptions is probe's command line.
type probeOptions struct {
	engine    string
	address   string // engine socket; "" = the CLI's own default
	namespace string // containerd namespace; Kubernetes namespace for cri
	runtime   string // containerd runtime type or Docker runtime name
	handler   string // CRI runtime handler
	probe     string // harden-probe on the host; "" = find it
	cli       string // ctr, docker or crictl; "" = the engine's on PATH
	user      string // UID[:GID] the probe runs as; "" = the image's
	runFlags  []string
	timeout   time.Duration
	json      bool
	failOpen  bool
	image     string
}

// probeUser is UID or UID:GID, numeric: CRI takes only numbers, and a
// name would be resolved inside the image by ctr and docker.
var probeUser = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)

// parseProbeArgs reads probe's command line; it looks at nothing on the
// host.
func parseProbeArgs(c *cli, cmd *command, fs *flag.FlagSet, args []string) (probeOptions, error) {
	var o probeOptions
	fs.StringVar(&o.engine, "engine", "containerd", "`ENGINE` to run the container with: containerd (ctr), docker or cri (crictl) (default containerd)")
	fs.StringVar(&o.address, "address", "", "the engine's `SOCKET` (default: the engine CLI's own default)")
	fs.StringVar(&o.namespace, "namespace", "", "containerd `NAMESPACE` (default \"default\"); with --engine cri, the pod's Kubernetes namespace (default \"default\")")
	fs.StringVar(&o.runtime, "runtime", "", "containerd runtime `TYPE` (io.containerd.harden.v2) or Docker runtime name (default: the engine's default runtime)")
	fs.StringVar(&o.handler, "runtime-handler", "", "CRI runtime `HANDLER` (--engine cri; default: the default handler)")
	fs.StringVar(&o.probe, "probe", "", "harden-probe `PATH` (default: next to hardenctl, else on PATH)")
	fs.StringVar(&o.cli, "cli", "", "the engine's CLI `PATH`: ctr, docker or crictl (default: found on PATH)")
	fs.StringVar(&o.user, "user", "", "run the probe as `UID[:GID]` (default: the image's user); restricted and strict refuse uid 0")
	fs.Func("run-flag", "extra `FLAG` for `ctr run` or `docker run`, e.g. --run-flag=--runtime-config-path=FILE (repeatable)", func(s string) error {
		o.runFlags = append(o.runFlags, s)
		return nil
	})
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up, and remove the container, after `DURATION` (default 2m)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.BoolVar(&o.failOpen, "fail-open", false, "exit 1 if any vector is open or was not measured (for CI)")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(pos) != 1 {
		return o, usagef(cmd, "name one image (got %d arguments)", len(pos))
	}
	o.image = pos[0]
	if _, ok := probeEngines[o.engine]; !ok {
		return o, usagef(cmd, "--engine %q: want containerd, docker or cri", o.engine)
	}
	switch {
	case o.engine == "cri" && set["runtime"]:
		return o, usagef(cmd, "--runtime is for containerd and docker; CRI selects a runtime with --runtime-handler")
	case o.engine != "cri" && set["runtime-handler"]:
		return o, usagef(cmd, "--runtime-handler is for --engine cri; use --runtime")
	case o.engine == "docker" && set["namespace"]:
		return o, usagef(cmd, "--namespace is for containerd and cri; Docker keeps its containers in its own namespace")
	case o.engine == "cri" && len(o.runFlags) > 0:
		return o, usagef(cmd, "--run-flag is for ctr run and docker run; crictl reads the container from a config file")
	}
	if o.namespace == "" && o.engine != "docker" {
		o.namespace = "default"
	}
	if o.user != "" && !probeUser.MatchString(o.user) {
		return o, usagef(cmd, "--user %q: give UID or UID:GID as numbers", o.user)
	}
	if o.timeout <= 0 {
		return o, usagef(cmd, "--timeout must be positive")
	}
	if strings.HasPrefix(o.image, "-") {
		return o, usagef(cmd, "image %q looks like a flag", o.image)
	}
	return o, nil
}

func runProbeCmd(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	o, err := parseProbeArgs(c, cmd, fs, args)
	if err != nil {
		return err
	}
	if o.probe, err = findProbe(o.probe); err != nil {
		return err
	}
	if o.cli, err = findCLI(o.engine, o.cli); err != nil {
		return err
	}
	// Ctrl-C and SIGTERM cancel the run; the container is removed after.
	// The engine CLI runs in its own process group, so a Ctrl-C on the
	// terminal reaches only hardenctl, which then cleans up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	out, runErr := runProbe(ctx, c.stderr, o)
	if out == nil {
		return runErr
	}
	rep := newProbeReport(o, out.name, out.findings, out.unparsed)
	if o.json {
		if err := writeJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.print(c)
	}
	switch {
	case runErr != nil:
		return runErr
	case rep.Summary.Missing > 0:
		return fmt.Errorf("probe: the probe reported %d of %d vectors (did it die? see the engine's output above)", rep.Summary.Total-rep.Summary.Missing, rep.Summary.Total)
	case o.failOpen && rep.Summary.Open > 0:
		return &exitStatus{code: exitFailure, err: fmt.Errorf("probe: %s open (--fail-open): %s", plural(rep.Summary.Open, "vector", "vectors"), strings.Join(rep.Summary.OpenVectors, ", "))}
	case o.failOpen && rep.Summary.ProbeErrors > 0:
		return &exitStatus{code: exitFailure, err: fmt.Errorf("probe: %s not measured (probe errors; --fail-open)", plural(rep.Summary.ProbeErrors, "vector", "vectors"))}
	}
	return nil
}

// probeOutput is what a run produced.
type probeOutput struct {
	name     string   // the container's name (ID)
	findings []string // the probe's output lines
	unparsed []string // other lines on its stdout
}

// runProbe stages the probe, runs it in a container, and removes the
// container and the staged copy whatever happened. It returns the probe's
// output when the probe printed any (with an error if the run still
// failed), else nil and the error.
func runProbe(ctx context.Context, stderr io.Writer, o probeOptions) (*probeOutput, error) {
	dir, bin, err := stageProbe(o.probe)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name, err := freshName("harden-probe-")
	if err != nil {
		return nil, err
	}
	e := newProbeEngine(o, name, bin, dir)

	runCtx, cancel := context.WithTimeout(ctx, o.timeout)
	stdout, runErr := e.run(runCtx)
	timedOut := errors.Is(runCtx.Err(), context.DeadlineExceeded)
	cancel()
	why := ""
	switch {
	case ctx.Err() != nil:
		why = "interrupted"
		// Removing the container can take seconds: say what is going on.
		fmt.Fprintf(stderr, "hardenctl: probe: interrupted; removing container %s\n", name)
	case timedOut:
		why = fmt.Sprintf("timed out after %s (--timeout)", o.timeout)
	}
	// Removal gets its own time: the run's may be used up.
	rmCtx, rmCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rmCancel()
	rmErr := e.remove(rmCtx)
	switch {
	case why != "" && rmErr == nil:
		runErr = fmt.Errorf("probe: %s; container %s removed", why, name)
	case why != "":
		runErr = fmt.Errorf("probe: %s; container %s may be left: %w", why, name, rmErr)
	case rmErr != nil && runErr != nil:
		runErr = fmt.Errorf("%w; probe: container %s may be left: %w", runErr, name, rmErr)
	case rmErr != nil:
		runErr = fmt.Errorf("probe: container %s may be left: %w", name, rmErr)
	}
	lines, unparsed := splitProbeOutput(stdout)
	if len(lines) == 0 {
		if runErr == nil {
			runErr = fmt.Errorf("probe: the container ran but the probe printed nothing; its output:\n%s", strings.TrimSpace(string(stdout)))
		}
		return nil, runErr
	}
	return &probeOutput{name: name, findings: lines, unparsed: unparsed}, runErr
}

// splitProbeOutput separates the probe's JSON lines from anything else on
// the container's stdout (an entrypoint wrapper, a shell's messages).
func splitProbeOutput(out []byte) (findings, other []string) {
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.HasPrefix(l, "{"):
			findings = append(findings, l)
		default:
			other = append(other, l)
		}
	}
	return findings, other
}

// freshName is a new container (and CRI pod) name: prefix and 12 random
// hex digits.
func freshName(prefix string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("container name: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// findProbe returns the harden-probe to use: path if given, else the one
// next to hardenctl's own binary, else harden-probe on PATH.
func findProbe(path string) (string, error) {
	if path == "" {
		if self, err := os.Executable(); err == nil {
			if self, err = filepath.EvalSymlinks(self); err == nil {
				if p := filepath.Join(filepath.Dir(self), "harden-probe"); isExecutable(p) {
					path = p
				}
			}
		}
	}
	if path == "" {
		p, err := exec.LookPath("harden-probe")
		if err != nil {
			return "", errors.New("probe: harden-probe not found next to hardenctl or on PATH; give --probe PATH (make build puts it in bin/)")
		}
		path = p
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if !isExecutable(path) {
		return "", fmt.Errorf("probe: %s is not an executable file", path)
	}
	if err := checkStatic(path); err != nil {
		return "", err
	}
	return path, nil
}

// checkStatic refuses a dynamically linked probe: it would fail in most
// images (busybox, distroless) with a confusing "no such file".
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("probe: %s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("probe: %s is dynamically linked and would not run in most images; build it with CGO_ENABLED=0 (make build does)", path)
		}
	}
	return nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// findCLI returns the engine's CLI: path if given, else its name on PATH.
func findCLI(engine, path string) (string, error) {
	name := probeEngines[engine]
	if path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("probe: %s not found on PATH (--engine %s); give --cli PATH", name, engine)
		}
		return p, nil
	}
	if !isExecutable(path) {
		return "", fmt.Errorf("probe: --cli %s is not an executable file", path)
	}
	return path, nil
}

// stageDirs are where the probe is copied, first that exists and allows
// execution: a bind mount can keep its source's noexec, and the usual places
// (/usr/local/bin, /usr/bin) are refused by mounts.deny-host-path.
func stageDirs() []string { return []string{os.TempDir(), "/var/tmp"} }

// stageProbe copies the probe into a new private directory and returns the
// directory and the copy. The container gets the copy, read-only.
func stageProbe(src string) (dir, bin string, err error) {
	base := ""
	for _, d := range stageDirs() {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Flags&unix.ST_NOEXEC == 0 {
			base = d
			break
		}
	}
	if base == "" {
		return "", "", fmt.Errorf("probe: no directory to stage the probe in: %s are missing or mounted noexec (set TMPDIR)", strings.Join(stageDirs(), " and "))
	}
	// ctr's --mount splits on commas, docker's --volume on colons.
	if strings.ContainsAny(base, ",:") {
		return "", "", fmt.Errorf("probe: the staging directory %q has a comma or a colon, which ctr and docker cannot mount; set TMPDIR", base)
	}
	dir, err = os.MkdirTemp(base, "harden-probe.")
	if err != nil {
		return "", "", fmt.Errorf("stage the probe: %w", err)
	}
	fail := func(err error) (string, string, error) {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("stage the probe: %w", err)
	}
	// Engines and non-root container users must reach it; it holds
	// nothing secret.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fail(err)
	}
	defer in.Close()
	bin = filepath.Join(dir, "harden-probe")
	out, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fail(err)
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(bin, 0o555); err != nil {
		return fail(err)
	}
	return dir, bin, nil
}
