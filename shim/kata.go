package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/spec"
)

// Start is containerd's `shim start`. Kata runs containers through its own
// shim, not through a runc-compatible binary, so a rule with backend kata
// is served here: harden the bundle, then hand the whole shim over to
// containerd-shim-kata-v2. Everything else starts harden's own shim, which
// hardens at Create.
//
// Limits of delegation: only containers that pass through `start` are
// hardened (`ctr run`, Docker, CRI pod sandboxes). CRI app containers join
// their sandbox's shim, which is then Kata's, with no hook for harden; and
// Kata disables guest seccomp and SELinux by default (the record says so).
// Nothing may be written to stderr here: containerd reads it with stdout.
func (m *Manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	cfg, a, err := startConfig(params)
	if err != nil {
		return nil, err
	}
	if !mentionsKata(cfg.Policy()) {
		return m.Shim.Start(ctx, params)
	}
	bundle, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	pol, err := node.NewPolicyCache(cfg.Policy()).Get()
	if err != nil {
		// Create reports it, with the rule and the file; start stays quiet.
		return m.Shim.Start(ctx, params)
	}
	doc, err := spec.ReadBundle(bundle)
	if err != nil {
		return m.Shim.Start(ctx, params)
	}
	id := node.Identify(doc.Spec, params.GetInstanceID(), params.GetNamespace(), cfg)
	d, _, derr := pol.Decide(id)
	if derr != nil || d.Backend != spec.Kata {
		return m.Shim.Start(ctx, params)
	}

	rc := cfg.Recorder()
	rec := node.Record{Time: time.Now().UTC(), Event: node.EventCreate, Entry: entry, ID: id.ID, Namespace: id.EngineNamespace,
		Bundle: bundle, Policy: pol.Source}
	out, herr := pol.Harden(doc.Spec, id, cfg.Host(spec.Kata))
	rec.Outcome, rec.Result = out, node.ResultOf(out, herr)
	if herr == nil && out.Decision.Mode == spec.Enforce {
		herr = doc.WriteBundle(bundle)
	}
	if herr == nil {
		rec.Runtime, herr = lookPathOr(cfg.KataShim, "containerd-shim-kata-v2")
	}
	if herr != nil {
		if rec.Result != node.ResultRefused {
			rec.Result = node.ResultError
		}
		rec.Error = herr.Error()
		_ = rc.Write(rec)
		return nil, fmt.Errorf("harden (backend kata): %w", herr)
	}
	res, err := delegateStart(ctx, rec.Runtime, bundle, params, a)
	if err != nil {
		rec.Result, rec.Error = node.ResultError, err.Error()
	}
	_ = rc.Write(rec)
	if err == nil {
		_ = rc.SaveState(rec)
	}
	return res, err
}

// mentionsKata is a cheap test run on every shim start: only a policy file
// that names kata can select it (the embedded default does not), and the
// full load and decision are left to the policies that can.
func mentionsKata(policyPath string) bool {
	b, err := os.ReadFile(policyPath)
	return err == nil && bytes.Contains(b, []byte("kata"))
}

// startConfig merges the node configuration with the runtime options
// containerd passed to start (as a bootstrap extension).
func startConfig(params *bootapi.BootstrapParams) (node.Config, *anypb.Any, error) {
	base, err := node.LoadConfig(nodeConfigPath(), true)
	if err != nil {
		return base, nil, err
	}
	for _, msg := range []proto.Message{&runtimeoptions.Options{}, &options.Options{}} {
		found, err := params.FindExtension(msg)
		if err != nil || !found {
			continue
		}
		a, err := typeurl.MarshalAnyToProto(msg)
		if err != nil {
			return base, nil, err
		}
		cfg, err := decodeOptions(base, a)
		return cfg, a, err
	}
	return base, nil, nil
}

func lookPathOr(configured, def string) (string, error) {
	name := configured
	if name == "" {
		name = def
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("find the Kata shim %q: %w", name, err)
	}
	return p, nil
}

// delegateStart runs the other shim's `start` with the flags containerd
// gave harden, in the bundle, and turns its answer into a bootstrap result.
// Kata speaks the pre-2.3 handshake: runtime options (protobuf Any) on
// stdin, and an address, plain or as JSON {version, address, protocol}, on
// stdout.
func delegateStart(ctx context.Context, binary, bundle string, params *bootapi.BootstrapParams, opts *anypb.Any) (*bootapi.BootstrapResult, error) {
	args := []string{
		"-namespace", params.GetNamespace(),
		"-address", params.GetContainerdGrpcAddress(),
		"-publish-binary", params.GetContainerdBinary(),
		"-id", params.GetInstanceID(),
	}
	if params.GetLogLevel() <= bootapi.LogLevel_LOG_LEVEL_DEBUG {
		args = append(args, "-debug")
	}
	cmd := exec.CommandContext(ctx, binary, append(args, "start")...)
	cmd.Dir = bundle
	cmd.Env = os.Environ()
	if opts != nil {
		b, err := proto.Marshal(opts)
		if err != nil {
			return nil, err
		}
		cmd.Stdin = bytes.NewReader(b)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s start: %w: %s", binary, err, strings.TrimSpace(stderr.String()))
	}
	return parseStartOutput(stdout.Bytes())
}

// parseStartOutput reads a pre-bootstrap shim's answer to start.
func parseStartOutput(out []byte) (*bootapi.BootstrapResult, error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return nil, errors.New("the delegated shim printed no address")
	}
	if out[0] == '{' {
		var p struct {
			Version  int32  `json:"version"`
			Address  string `json:"address"`
			Protocol string `json:"protocol"`
		}
		if err := json.Unmarshal(out, &p); err != nil || p.Address == "" {
			return nil, fmt.Errorf("the delegated shim printed %q, not a shim address", out)
		}
		if p.Protocol == "" {
			p.Protocol = "ttrpc"
		}
		if p.Version == 0 {
			p.Version = 2
		}
		return &bootapi.BootstrapResult{Version: p.Version, Address: p.Address, Protocol: p.Protocol}, nil
	}
	addr := string(out)
	if strings.ContainsAny(addr, " \n\t") {
		return nil, fmt.Errorf("the delegated shim printed %q, not a shim address", out)
	}
	return &bootapi.BootstrapResult{Version: 2, Address: addr, Protocol: "ttrpc"}, nil
}
