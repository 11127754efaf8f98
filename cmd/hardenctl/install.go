package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/harden-dev/harden/spec"
)

var cmdInstall = &command{
	name:    "install",
	args:    "containerd|docker|crio [--config PATH] [--handler NAME] [--policy FILE] [--dry-run] [--shim] [--runc-type]",
	summary: "Register harden as a runtime in an engine's configuration (shows the diff, keeps a backup)",
	detail: `install adds harden's runtime entry to the engine's configuration and touches
nothing else:

  containerd  a CRI runtime handler (type io.containerd.harden.v2) appended to
              /etc/containerd/config.toml as a marked block, in the layout of the
              file's config version (3 for containerd 2.x, 2 for 1.7). With
              --runc-type the handler is declared as runc's type
              (io.containerd.runc.v2) with runtime_path naming harden's shim:
              containerd then sends runc options, which pods with hostUsers:
              false need (containerd reads a user-namespace pod's handler
              options as runc options), and harden's own settings, the policy
              included, come from /etc/harden/config.toml only
  docker      runtimes.<handler> in /etc/docker/daemon.json: the path of
              harden-runc (every Docker version), or with --shim the runtime type
              io.containerd.harden.v2 (Docker 23+)
  crio        a drop-in /etc/crio/crio.conf.d/90-harden.conf with harden-runc as
              runtime_path

It prints the diff, keeps a timestamped backup of a file it changes, writes
atomically, and is idempotent: running it again changes nothing. It restarts
nothing: restart the engine (or reload CRI-O) to pick up the new runtime.
uninstall removes exactly what install added.`,
	examples: []string{
		"hardenctl install containerd --dry-run",
		"hardenctl install containerd --handler harden --policy /etc/harden/policy.yaml",
		"hardenctl install containerd --runc-type",
		"hardenctl install docker --config /etc/docker/daemon.json",
		"hardenctl uninstall containerd",
	},
	run: func(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
		return runInstall(c, cmd, fs, args, true)
	},
}

var cmdUninstall = &command{
	name:     "uninstall",
	args:     "containerd|docker|crio [--config PATH] [--handler NAME] [--dry-run]",
	summary:  "Remove what install added to an engine's configuration",
	examples: []string{"hardenctl uninstall containerd --dry-run", "hardenctl uninstall docker"},
	run: func(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
		return runInstall(c, cmd, fs, args, false)
	},
}

// installTarget edits one engine's configuration.
type installTarget struct {
	defaultPath string
	// edit returns the new content for old (nil old: the file does not
	// exist). A nil result means "remove the file".
	edit func(old []byte, o installOptions, install bool) ([]byte, error)
}

type installOptions struct {
	handler, policy, binDir string
	shim                    bool
	// runcType declares the containerd handler as io.containerd.runc.v2
	// with runtime_path = harden's shim (see editContainerd).
	runcType bool
}

var installTargets = map[string]installTarget{
	"containerd": {"/etc/containerd/config.toml", editContainerd},
	"docker":     {"/etc/docker/daemon.json", editDocker},
	"crio":       {"/etc/crio/crio.conf.d/90-harden.conf", editCRIO},
}

var handlerRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func runInstall(c *cli, cmd *command, fs *flag.FlagSet, args []string, install bool) error {
	path := fs.String("config", "", "the engine's configuration `FILE` (default: the engine's standard path)")
	var o installOptions
	fs.StringVar(&o.handler, "handler", "harden", "runtime handler `NAME` (the RuntimeClass handler)")
	dryRun := fs.Bool("dry-run", false, "show the change, write nothing")
	if install {
		fs.StringVar(&o.policy, "policy", "", "policy `FILE` the runtime uses (default: /etc/harden/policy.yaml, else the embedded default)")
		fs.StringVar(&o.binDir, "bin-dir", "/usr/local/bin", "`DIR` where harden's binaries are installed")
		fs.BoolVar(&o.shim, "shim", false, "docker: use the containerd shim (runtimeType io.containerd.harden.v2, Docker 23+) instead of harden-runc")
		fs.BoolVar(&o.runcType, "runc-type", false, "containerd: declare the handler as runtime_type io.containerd.runc.v2 with runtime_path harden's shim (needed for pods with hostUsers: false; harden's settings then come from /etc/harden/config.toml only)")
	}
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(cmd, "name one engine: containerd, docker or crio")
	}
	t, ok := installTargets[pos[0]]
	if !ok {
		return usagef(cmd, "unknown engine %q (want containerd, docker or crio)", pos[0])
	}
	if !handlerRE.MatchString(o.handler) {
		return usagef(cmd, "--handler %q: lower-case letters, digits and dashes (a RuntimeClass handler name)", o.handler)
	}
	if o.policy != "" && !filepath.IsAbs(o.policy) {
		return usagef(cmd, "--policy %q: give an absolute path", o.policy)
	}
	if o.runcType && pos[0] != "containerd" {
		return usagef(cmd, "--runc-type applies to containerd only")
	}
	if o.runcType && o.policy != "" {
		// containerd hands a runc-type handler's options to the shim as
		// runc options, which have no field for a policy: a PolicyPath
		// written there would be dropped without a word.
		return usagef(cmd, "--policy cannot be combined with --runc-type: containerd sends a runc-type handler runc options, which carry no policy; set PolicyPath in /etc/harden/config.toml instead")
	}
	if o.runcType && !filepath.IsAbs(o.binDir) {
		return usagef(cmd, "--bin-dir %q: give an absolute path (it becomes runtime_path)", o.binDir)
	}
	if *path == "" {
		*path = t.defaultPath
	}
	old, err := os.ReadFile(*path)
	if errors.Is(err, os.ErrNotExist) {
		old = nil
	} else if err != nil {
		return fmt.Errorf("read %s: %w", *path, err)
	}
	updated, err := t.edit(old, o, install)
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd.name, *path, err)
	}
	if bytes.Equal(old, updated) || (old == nil && updated == nil) {
		fmt.Fprintf(c.stdout, "%s: nothing to change\n", *path)
		return nil
	}
	fmt.Fprint(c.stdout, unifiedDiff(*path+" (current)", *path+" (new)", splitLines(old), splitLines(updated), 3))
	if *dryRun {
		fmt.Fprintln(c.stdout, "dry run: nothing written")
		return nil
	}
	if old != nil {
		backup := *path + ".harden-backup-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := spec.WriteFileAtomic(backup, old, 0o600); err != nil {
			return fmt.Errorf("back up %s: %w", *path, err)
		}
		fmt.Fprintf(c.stdout, "backup: %s\n", backup)
	}
	if updated == nil {
		if err := os.Remove(*path); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "removed %s\n", *path)
	} else {
		if err := os.MkdirAll(filepath.Dir(*path), 0o755); err != nil {
			return err
		}
		if err := spec.WriteFileAtomic(*path, updated, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *path, err)
		}
		fmt.Fprintf(c.stdout, "wrote %s\n", *path)
	}
	fmt.Fprintf(c.stdout, "restart the engine to load the change (%s restarts nothing itself)\n", cmd.name)
	return nil
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Markers around the block install adds to containerd's config.
func blockMarkers(handler string) (string, string) {
	return "# BEGIN harden runtime " + handler + " (added by hardenctl install; hardenctl uninstall removes it)",
		"# END harden runtime " + handler
}

// editContainerd appends (or replaces, or removes) a marked block with the
// CRI runtime handler. TOML lets a table be defined anywhere in the file,
// so the rest of the file is left byte for byte as it was.
func editContainerd(old []byte, o installOptions, install bool) ([]byte, error) {
	begin, end := blockMarkers(o.handler)
	text := string(old)
	// Where our block is, if anywhere, and the file without it.
	start, stop := -1, -1
	without := text
	if i := strings.Index(text, begin); i >= 0 {
		j := strings.Index(text[i:], end)
		if j < 0 {
			return nil, fmt.Errorf("found %q without its end marker: fix the file by hand", begin)
		}
		start, stop = i, i+j+len(end)
		after := strings.TrimPrefix(text[stop:], "\n")
		before := strings.TrimRight(text[:start], "\n")
		if before != "" {
			before += "\n"
		}
		without = before + after
	}
	if !install {
		return []byte(without), nil
	}
	var cfg map[string]any
	if err := toml.Unmarshal([]byte(without), &cfg); err != nil {
		return nil, fmt.Errorf("not valid TOML: %w", err)
	}
	version := int64(1)
	if v, ok := cfg["version"].(int64); ok {
		version = v
	}
	plugin := `io.containerd.cri.v1.runtime`
	header := ""
	switch {
	case len(strings.TrimSpace(without)) == 0:
		// A new file: containerd 2.x's layout.
		header = "version = 3\n\n"
	case version == 2:
		plugin = `io.containerd.grpc.v1.cri`
	case version < 2:
		return nil, errors.New("config version 1 (containerd 1.4 and older) is not supported: migrate with `containerd config migrate`")
	}
	if existingHandler(cfg, plugin, o.handler) {
		return nil, fmt.Errorf("a runtime %q is already configured outside harden's block: remove it, or pick another --handler", o.handler)
	}
	var b strings.Builder
	b.WriteString(begin + "\n")
	fmt.Fprintf(&b, "[plugins.%q.containerd.runtimes.%q]\n", plugin, o.handler)
	if o.runcType {
		// containerd's CRI reads the options of a pod with a user
		// namespace as runc options (containerd 2.4
		// internal/cri/server/container_start_linux.go) and fails for any
		// other runtime_type. Declared as runc's type, the handler gets
		// runc options, which harden's shim accepts (BinaryName, Root,
		// SystemdCgroup ... as containerd's runc shim reads them);
		// harden's own settings come from its node configuration.
		b.WriteString("  # runc's runtime type, harden's shim: containerd sends runc options (pods with\n")
		b.WriteString("  # hostUsers: false need them); harden's settings are in /etc/harden/config.toml.\n")
		b.WriteString("  runtime_type = \"io.containerd.runc.v2\"\n")
		fmt.Fprintf(&b, "  runtime_path = %q\n", filepath.Join(o.binDir, "containerd-shim-harden-v2"))
	} else {
		b.WriteString("  runtime_type = \"io.containerd.harden.v2\"\n")
		fmt.Fprintf(&b, "  [plugins.%q.containerd.runtimes.%q.options]\n", plugin, o.handler)
		fmt.Fprintf(&b, "    RuntimeHandler = %q\n", o.handler)
		if o.policy != "" {
			fmt.Fprintf(&b, "    PolicyPath = %q\n", o.policy)
		}
	}
	b.WriteString(end)
	block := b.String()
	var out string
	if start >= 0 {
		// Replace the block where it is: several handlers each keep
		// their place, and a second run changes nothing.
		out = text[:start] + block + text[stop:]
	} else {
		body := strings.TrimRight(text, "\n")
		if body != "" {
			body += "\n\n"
		}
		out = header + body + block + "\n"
	}
	var check map[string]any
	if err := toml.Unmarshal([]byte(out), &check); err != nil {
		return nil, fmt.Errorf("the result would not be valid TOML (%w): fix the file first", err)
	}
	return []byte(out), nil
}

func existingHandler(cfg map[string]any, plugin, handler string) bool {
	cur := any(cfg)
	for _, k := range []string{"plugins", plugin, "containerd", "runtimes", handler} {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

// editDocker sets or removes runtimes.<handler> in daemon.json. The file is
// decoded and re-encoded (two-space indent, keys sorted): every setting is
// kept, though the layout may change.
func editDocker(old []byte, o installOptions, install bool) ([]byte, error) {
	cfg := map[string]any{}
	if len(bytes.TrimSpace(old)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(old))
		dec.UseNumber()
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
	}
	runtimes, _ := cfg["runtimes"].(map[string]any)
	if runtimes == nil {
		if _, exists := cfg["runtimes"]; exists {
			return nil, errors.New(`"runtimes" is not an object`)
		}
		runtimes = map[string]any{}
	}
	if install {
		entry := map[string]any{"path": filepath.Join(o.binDir, "harden-runc")}
		if o.shim {
			entry = map[string]any{"runtimeType": "io.containerd.harden.v2"}
			if o.policy != "" {
				entry["options"] = map[string]any{"PolicyPath": o.policy}
			}
		}
		if cur, ok := runtimes[o.handler].(map[string]any); ok && !sameJSON(cur, entry) && !isHardenEntry(cur) {
			return nil, fmt.Errorf("runtimes.%s is already configured for something else: remove it, or pick another --handler", o.handler)
		}
		runtimes[o.handler] = entry
		cfg["runtimes"] = runtimes
	} else {
		if cur, ok := runtimes[o.handler].(map[string]any); ok && !isHardenEntry(cur) {
			return nil, fmt.Errorf("runtimes.%s is not harden's: not removing it", o.handler)
		}
		delete(runtimes, o.handler)
		if len(runtimes) == 0 {
			delete(cfg, "runtimes")
		}
	}
	if len(old) == 0 && !install {
		return old, nil
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	out = append(out, '\n')
	if bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(old)) || sameJSONBytes(old, out) {
		return old, nil
	}
	return out, nil
}

func isHardenEntry(m map[string]any) bool {
	p, _ := m["path"].(string)
	t, _ := m["runtimeType"].(string)
	return strings.HasSuffix(p, "/harden-runc") || t == "io.containerd.harden.v2"
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func sameJSONBytes(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return sameJSON(x, y)
}

// editCRIO writes (or removes) a drop-in: CRI-O merges every file in
// crio.conf.d, so harden's runtime lives in a file of its own.
func editCRIO(old []byte, o installOptions, install bool) ([]byte, error) {
	if !install {
		if old != nil && !bytes.Contains(old, []byte("hardenctl install")) {
			return nil, errors.New("this drop-in was not written by hardenctl: not removing it")
		}
		return nil, nil
	}
	var b strings.Builder
	b.WriteString("# Added by hardenctl install; hardenctl uninstall crio removes this file.\n")
	fmt.Fprintf(&b, "[crio.runtime.runtimes.%s]\n", o.handler)
	fmt.Fprintf(&b, "runtime_path = %q\n", filepath.Join(o.binDir, "harden-runc"))
	b.WriteString("runtime_type = \"oci\"\n")
	fmt.Fprintf(&b, "runtime_root = %q\n", "/run/harden-runc")
	return []byte(b.String()), nil
}
