package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// probeTarget is where the probe appears in the container.
const probeTarget = "/harden-probe"

// probeEngine runs the probe in a container through one engine's CLI.
type probeEngine interface {
	// run creates and starts the container, waits for the probe to finish
	// and returns what it printed on stdout.
	run(ctx context.Context) ([]byte, error)
	// remove removes the container (and for CRI its pod) if it exists. It
	// is called on every path, so it must not mind a container that is
	// already gone or was never created.
	remove(ctx context.Context) error
}

// newProbeEngine returns the engine for o.engine. name is the container's
// name, bin the staged probe on the host, dir the private directory it is
// in (CRI keeps the pod's configuration and logs there).
func newProbeEngine(o probeOptions, name, bin, dir string) probeEngine {
	switch o.engine {
	case "docker":
		return &dockerEngine{cli: engineCLI{path: o.cli, global: dockerGlobal(o)}, o: o, name: name, bin: bin}
	case "cri":
		return &criEngine{cli: engineCLI{path: o.cli, global: crictlGlobal(o)}, o: o, name: name, bin: bin, dir: dir}
	}
	return &ctrEngine{cli: engineCLI{path: o.cli, global: ctrGlobal(o.address, o.namespace)}, o: o, name: name, bin: bin}
}

// engineCLI is an engine's command-line client and the global flags that
// select the engine instance.
type engineCLI struct {
	path   string
	global []string
}

// engineError is a failed engine command, with what the engine said.
type engineError struct {
	cmd    string // "ctr run"
	err    error
	stderr string
}

func (e *engineError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("%s: %v", e.cmd, e.err)
	}
	return fmt.Sprintf("%s: %v:\n%s", e.cmd, e.err, e.stderr)
}

func (e *engineError) Unwrap() error { return e.err }

// command is the CLI with args in its own process group, so that a Ctrl-C
// on the terminal reaches hardenctl only; when ctx ends the whole group is
// killed. Stdin is /dev/null: `ctr run` would otherwise forward the
// terminal, and stop on SIGTTIN in a background group.
func (e engineCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.path, append(slices.Clone(e.global), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs the CLI with args (command) and returns its stdout.
func (e engineCLI) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := e.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &engineError{cmd: filepath.Base(e.path) + " " + args[0], err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}

// ctrEngine runs the probe with `ctr run --rm`.
type ctrEngine struct {
	cli       engineCLI
	o         probeOptions
	name, bin string
}

// ctrGlobal selects the containerd instance and namespace ctr acts on.
func ctrGlobal(address, namespace string) []string {
	var g []string
	if address != "" {
		g = append(g, "--address", address)
	}
	return append(g, "--namespace", namespace)
}

// runArgs is the `ctr run` command line. ctr's default spec has no
// /sys/fs/cgroup; CRI and Docker mount it read-only, and so does this, so
// that the probe can read its own limits (it grants nothing).
func (e *ctrEngine) runArgs() []string {
	a := []string{"run", "--rm"}
	if e.o.runtime != "" {
		a = append(a, "--runtime", e.o.runtime)
	}
	if e.o.user != "" {
		a = append(a, "--user", e.o.user)
	}
	a = append(a,
		"--mount", "type=bind,src="+e.bin+",dst="+probeTarget+",options=rbind:ro",
		"--mount", "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev")
	a = append(a, e.o.runFlags...)
	return append(a, e.o.image, e.name, probeTarget)
}

func (e *ctrEngine) run(ctx context.Context) ([]byte, error) { return e.cli.run(ctx, e.runArgs()...) }

func (e *ctrEngine) remove(ctx context.Context) error { return e.cli.ctrRemove(ctx, e.name) }

// ctrExists reports whether ctr lists container name.
func (e engineCLI) ctrExists(ctx context.Context, name string) (bool, error) {
	out, err := e.run(ctx, "containers", "ls", "-q")
	if err != nil {
		return false, err
	}
	return slices.Contains(strings.Fields(string(out)), name), nil
}

// ctrRemove deletes container name's task (killing it) and the container,
// if `ctr run --rm` did not get to. A container that is gone or was never
// created is no error.
func (e engineCLI) ctrRemove(ctx context.Context, name string) error {
	if ok, err := e.ctrExists(ctx, name); err != nil || !ok {
		return err
	}
	_, taskErr := e.run(ctx, "tasks", "delete", "--force", name)
	_, err := e.run(ctx, "containers", "delete", name)
	ok, lsErr := e.ctrExists(ctx, name)
	switch {
	case lsErr != nil:
		return lsErr
	case ok:
		return errors.Join(fmt.Errorf("ctr still lists container %s", name), taskErr, err)
	}
	return nil
}

// dockerEngine runs the probe with `docker run --rm`.
type dockerEngine struct {
	cli       engineCLI
	o         probeOptions
	name, bin string
}

func dockerGlobal(o probeOptions) []string {
	if o.address == "" {
		return nil
	}
	return []string{"--host", withScheme(o.address)}
}

// withScheme makes a socket path a unix:// URL; URLs pass unchanged.
func withScheme(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return "unix://" + addr
}

func (e *dockerEngine) runArgs() []string {
	a := []string{"run", "--rm", "--name", e.name}
	if e.o.runtime != "" {
		a = append(a, "--runtime", e.o.runtime)
	}
	if e.o.user != "" {
		a = append(a, "--user", e.o.user)
	}
	a = append(a, "--volume", e.bin+":"+probeTarget+":ro")
	a = append(a, e.o.runFlags...)
	return append(a, e.o.image, probeTarget)
}

func (e *dockerEngine) run(ctx context.Context) ([]byte, error) {
	return e.cli.run(ctx, e.runArgs()...)
}

// gone reports whether err is the engine saying the container does not
// exist.
func (e *dockerEngine) gone(err error) bool {
	var ee *engineError
	return errors.As(err, &ee) && strings.Contains(strings.ToLower(ee.stderr), "no such container")
}

func (e *dockerEngine) remove(ctx context.Context) error {
	if _, err := e.cli.run(ctx, "container", "inspect", "--format", "{{.Id}}", e.name); err != nil {
		if e.gone(err) {
			return nil
		}
		return err
	}
	if _, err := e.cli.run(ctx, "rm", "--force", e.name); err != nil && !e.gone(err) {
		return err
	}
	return nil
}

// criEngine runs the probe as the only container of a pod, through
// crictl: runp, create, start, wait, logs; then rmp.
type criEngine struct {
	cli            engineCLI
	o              probeOptions
	name, bin, dir string
}

func crictlGlobal(o probeOptions) []string {
	if o.address == "" {
		return nil
	}
	ep := withScheme(o.address)
	return []string{"--runtime-endpoint", ep, "--image-endpoint", ep}
}

// podConfig is the pod sandbox configuration, in crictl's JSON (the CRI
// messages' field names). The logs go to the run's private directory.
func (e *criEngine) podConfig() map[string]any {
	return map[string]any{
		"metadata":      map[string]any{"name": e.name, "namespace": e.o.namespace, "uid": e.name, "attempt": 0},
		"log_directory": filepath.Join(e.dir, "logs"),
		"linux":         map[string]any{"security_context": e.securityContext()},
	}
}

// containerConfig is the probe container's configuration.
func (e *criEngine) containerConfig() map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": "probe"},
		"image":    map[string]any{"image": e.o.image},
		"command":  []string{probeTarget},
		"log_path": "probe.log",
		"mounts":   []map[string]any{{"container_path": probeTarget, "host_path": e.bin, "readonly": true}},
		"linux":    map[string]any{"security_context": e.securityContext()},
	}
}

// securityContext sets --user as a Kubernetes pod would (runAsUser,
// runAsGroup), on the pod and the container.
func (e *criEngine) securityContext() map[string]any {
	sc := map[string]any{}
	if e.o.user == "" {
		return sc
	}
	uid, gid, hasGID := strings.Cut(e.o.user, ":")
	u, _ := strconv.ParseInt(uid, 10, 64)
	sc["run_as_user"] = map[string]any{"value": u}
	if hasGID {
		g, _ := strconv.ParseInt(gid, 10, 64)
		sc["run_as_group"] = map[string]any{"value": g}
	}
	return sc
}

func (e *criEngine) writeConfig(name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}

func (e *criEngine) run(ctx context.Context) ([]byte, error) {
	pod, err := e.writeConfig("pod.json", e.podConfig())
	if err != nil {
		return nil, err
	}
	ctr, err := e.writeConfig("container.json", e.containerConfig())
	if err != nil {
		return nil, err
	}
	runp := []string{"runp"}
	if e.o.handler != "" {
		runp = append(runp, "--runtime", e.o.handler)
	}
	out, err := e.cli.run(ctx, append(runp, pod)...)
	if err != nil {
		return nil, err
	}
	podID := strings.TrimSpace(string(out))
	out, err = e.cli.run(ctx, "create", podID, ctr, pod)
	if err != nil {
		return nil, err
	}
	cid := strings.TrimSpace(string(out))
	if _, err := e.cli.run(ctx, "start", cid); err != nil {
		return nil, err
	}
	code, err := e.wait(ctx, cid)
	if err != nil {
		return nil, err
	}
	out, err = e.cli.run(ctx, "logs", cid)
	if err == nil && code != 0 {
		err = fmt.Errorf("the probe exited with status %d", code)
	}
	return out, err
}

// wait polls the container's state until it has exited and returns its
// exit code.
func (e *criEngine) wait(ctx context.Context, cid string) (int, error) {
	for {
		out, err := e.cli.run(ctx, "inspect", "--output", "json", cid)
		if err != nil {
			return 0, err
		}
		var v struct {
			Status struct {
				State    string `json:"state"`
				ExitCode int    `json:"exitCode"`
			} `json:"status"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			return 0, fmt.Errorf("crictl inspect %s: %w", cid, err)
		}
		if v.Status.State == "CONTAINER_EXITED" {
			return v.Status.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pods lists the pods named like this run's (crictl's --name is a regular
// expression).
func (e *criEngine) pods(ctx context.Context) ([]string, error) {
	out, err := e.cli.run(ctx, "pods", "--quiet", "--name", "^"+e.name+"$")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// remove removes the pod (with its container) by name, so that it is
// found even when hardenctl was stopped before runp printed its id.
func (e *criEngine) remove(ctx context.Context) error {
	ids, err := e.pods(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	var errs []error
	for _, id := range ids {
		if _, err := e.cli.run(ctx, "rmp", "--force", id); err != nil {
			errs = append(errs, err)
		}
	}
	left, err := e.pods(ctx)
	switch {
	case err != nil:
		return err
	case len(left) > 0:
		return errors.Join(append([]error{fmt.Errorf("crictl still lists pod %s", e.name)}, errs...)...)
	}
	return nil
}
