package runcwrap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// namespaceHint is the engine namespace a runc command line reveals, as the
// shim would know it from containerd: "moby" when the runtime root or the
// bundle lies under Docker's exec root (/run/docker, or /var/run/docker);
// otherwise the containerd namespace in a runc shim bundle path
// (<state>/io.containerd.runtime.v2.task/<namespace>/<id>, and v1's
// io.containerd.runtime.v1.linux); otherwise "". Podman and CRI-O mark
// their specs with annotations, which spec.IdentityFromSpec reads.
func namespaceHint(root, bundle string) string {
	for _, p := range []string{root, bundle} {
		for _, d := range []string{"/run/docker", "/var/run/docker"} {
			if p == d || strings.HasPrefix(p, d+"/") {
				return "moby"
			}
		}
	}
	parts := strings.Split(filepath.Clean(bundle), "/")
	for i, p := range parts {
		if (p == "io.containerd.runtime.v2.task" || p == "io.containerd.runtime.v1.linux") && i+2 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

// stateTimeout bounds the `state` call exec and update make to find the
// container's bundle.
const stateTimeout = 30 * time.Second

// bundleOf asks the runtime where container id's bundle is: `<runtime>
// [global flags] state <id>` prints the OCI state, whose "bundle" names it.
// The caller's global flags are kept (--root above all; runsc needs its
// own), except the log ones: this call is harden's, not the engine's.
//
// runc's own state file (<root>/<id>/state.json, label "bundle=...") is
// read first: it is what `runc state` reads, and reading it saves starting
// the runtime (one process start, tens of milliseconds on a busy node, on
// every exec and update). Other runtimes keep no such file and are asked;
// without --root, only runc's default root is runc's.
func bundleOf(runtime string, inv *Invocation, id, root string) (string, error) {
	if root != "" || filepath.Base(runtime) == "runc" {
		if b, err := runcStateBundle(root, id); err == nil {
			return b, nil
		}
	}
	args := inv.globalArgs("log", "log-format", "debug")
	args = append(args, "state", id)
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtime, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		var st struct {
			Bundle string `json:"bundle"`
		}
		if jerr := json.Unmarshal(stdout.Bytes(), &st); jerr == nil && st.Bundle != "" {
			return st.Bundle, nil
		}
		err = fmt.Errorf("no bundle in its output %q", strings.TrimSpace(stdout.String()))
	} else if msg := strings.TrimSpace(stderr.String()); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return "", fmt.Errorf("find the bundle of container %q (%s state): %w", id, runtime, err)
}

// runcStateBundle reads the bundle from runc's state file.
func runcStateBundle(root, id string) (string, error) {
	if root == "" {
		root = "/run/runc"
	}
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("invalid container id %q", id)
	}
	b, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		return "", err
	}
	var st struct {
		Config struct {
			Labels []string `json:"labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", err
	}
	for _, l := range st.Config.Labels {
		if v, ok := strings.CutPrefix(l, "bundle="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no bundle label in %s/%s/state.json", root, id)
}

// globalArgs returns the global flags as written, without harden's own and
// without the named ones.
func (inv *Invocation) globalArgs(without ...string) []string {
	var out []string
	for _, fl := range inv.Global {
		skip := fl.Name == flagHardenConfig || fl.Name == flagHardenRuntime
		for _, w := range without {
			skip = skip || fl.Name == w
		}
		if skip {
			continue
		}
		out = append(out, inv.Argv[fl.Index])
		if fl.ValueIndex >= 0 {
			out = append(out, inv.Argv[fl.ValueIndex])
		}
	}
	return out
}
