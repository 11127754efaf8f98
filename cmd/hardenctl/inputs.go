package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// defaultPolicyHint says where the policy comes from without --policy.
const defaultPolicyHint = profiles.DefaultPolicyPath + " if it exists, else the embedded default"

// policyFlag is --policy, shared by every command that applies a policy.
type policyFlag struct{ path string }

func (p *policyFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&p.path, "policy", "", "policy `FILE` (default: "+defaultPolicyHint+")")
}

// load returns the policy and a description of where it came from for the
// human output.
func (p *policyFlag) load() (*profiles.Compiled, string, error) {
	var (
		c   *profiles.Compiled
		err error
	)
	if p.path != "" {
		c, err = profiles.Load(p.path)
	} else {
		c, err = profiles.LoadOrDefault("")
	}
	if err != nil {
		return nil, "", err // profiles says "load policy PATH: ..."
	}
	return c, policySource(c, p.path), nil
}

// policySource is the policy line of the human output.
func policySource(c *profiles.Compiled, flagPath string) string {
	if flagPath == "" && c.Source != profiles.DefaultPolicyPath {
		return strings.Trim(c.Source, "()") + " (" + profiles.DefaultPolicyPath + " does not exist)"
	}
	return c.Source
}

// specInput is --bundle DIR | --spec FILE: the container spec to look at.
type specInput struct {
	bundle, file string
}

func (in *specInput) register(fs *flag.FlagSet) {
	fs.StringVar(&in.bundle, "bundle", "", "OCI bundle `DIR` whose config.json to read")
	fs.StringVar(&in.file, "spec", "", "OCI spec `FILE` (config.json; - reads stdin)")
}

// check enforces exactly one of --bundle and --spec.
func (in *specInput) check(cmd *command) error {
	switch {
	case in.bundle == "" && in.file == "":
		return usagef(cmd, "give --bundle DIR or --spec FILE")
	case in.bundle != "" && in.file != "":
		return usagef(cmd, "give --bundle or --spec, not both")
	}
	return nil
}

// name is what the output calls the spec.
func (in *specInput) name() string {
	if in.bundle != "" {
		return filepath.Join(in.bundle, "config.json")
	}
	if in.file == "-" {
		return "<stdin>"
	}
	return in.file
}

// read parses the spec, keeping fields this runtime-spec version does not
// know (spec.Document), so the unified diff shows them unchanged.
func (in *specInput) read(stdin io.Reader) (*spec.Document, error) {
	if in.bundle != "" {
		return spec.ReadBundle(in.bundle) // "read bundle config ...: ..."
	}
	data, err := readInput(in.file, stdin, spec.MaxSpecSize)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	d, err := spec.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read spec %s: %w", in.name(), err)
	}
	return d, nil
}

// readInput reads a file, or stdin for "-", refusing more than max bytes.
func readInput(name string, stdin io.Reader, max int64) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than the %d byte limit", name, max)
	}
	return data, nil
}

// identityFlags fill or override what the spec's annotations say about the
// container: the containerd namespace and the ID are never in the spec, and
// Docker and ctr do not annotate the image or the runtime handler.
type identityFlags struct {
	engineNamespace, image, handler, id string
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.engineNamespace, "namespace", "", "engine `NAMESPACE` (containerd: k8s.io, moby, default) for rules that match engineNamespaces")
	fs.StringVar(&f.image, "image", "", "container `IMAGE` reference, overriding the spec's annotation")
	fs.StringVar(&f.handler, "runtime-handler", "", "runtime `HANDLER` (RuntimeClass), overriding the spec's annotation")
	fs.StringVar(&f.id, "id", "", "container `ID`")
}

func (f *identityFlags) set() bool {
	return f.engineNamespace != "" || f.image != "" || f.handler != "" || f.id != ""
}

func (f *identityFlags) apply(id *spec.Identity) {
	for _, o := range []struct {
		dst *string
		v   string
	}{{&id.EngineNamespace, f.engineNamespace}, {&id.Image, f.image}, {&id.RuntimeHandler, f.handler}, {&id.ID, f.id}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
}

// hostFlags override what DetectHost finds; the LSM labels a policy sets
// are only written where the host enforces that LSM.
type hostFlags struct {
	fs                          *flag.FlagSet
	apparmor, selinux, runscSec bool
}

func (h *hostFlags) register(fs *flag.FlagSet) {
	h.fs = fs
	fs.BoolVar(&h.apparmor, "host-apparmor", false, "assume the host enforces AppArmor (--host-apparmor=false: assume it does not); default: detect")
	fs.BoolVar(&h.selinux, "host-selinux", false, "assume the host enforces SELinux (--host-selinux=false: assume it does not); default: detect")
	fs.BoolVar(&h.runscSec, "runsc-oci-seccomp", false, "assume runsc runs with --oci-seccomp (backend runsc only)")
}

// host returns the host to decide for and how it was found.
func (h *hostFlags) host() (spec.Host, string) {
	host := profiles.DetectHost()
	how := "detected"
	h.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "host-apparmor":
			host.AppArmor, how = h.apparmor, "from flags"
		case "host-selinux":
			host.SELinux, how = h.selinux, "from flags"
		case "runsc-oci-seccomp":
			host.RunscOCISeccomp = h.runscSec
		}
	})
	return host, how
}

// isRefusal tells "the policy said no" from "something broke".
func isRefusal(err error) bool { return errors.Is(err, spec.ErrPolicyViolation) }
