package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Main runs the shim. containerd's pkg/shim (2.3+) answers `start` only in
// the bootstrap protocol: BootstrapParams (protobuf) on stdin, a
// BootstrapResult on stdout. containerd 1.7 to 2.2 send the runtime options
// (a protobuf Any, or nothing) on stdin and read JSON or a plain address, so
// a shim built on pkg/shim 2.3+ fails under them (containerd issue 13763).
// Main serves `start` for those daemons itself and leaves everything else,
// and every 2.3+ daemon, to pkg/shim.
func Main(ctx context.Context) {
	Register()
	if isAction(os.Args[1:], "start") {
		input, err := io.ReadAll(io.LimitReader(os.Stdin, 10<<20))
		if err != nil {
			fail(fmt.Errorf("read stdin: %w", err))
		}
		flags := parseShimFlags(os.Args[1:])
		if !isBootstrap(input, flags) {
			if err := legacyStart(ctx, flags, input, os.Stdout); err != nil {
				fail(err)
			}
			return
		}
		// A 2.3+ daemon: hand pkg/shim the same stdin.
		r, w, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		go func() { _, _ = w.Write(input); w.Close() }()
		os.Stdin = r
	}
	if isAction(os.Args[1:], "") {
		// The daemon (no action): warm the policy while pkg/shim starts.
		early = startWarmUp()
	}
	shim.RunShim(ctx, NewManager())
}

// fail reports a start error the way containerd reads it: on stderr (which
// it reads together with stdout), with a non-zero exit.
func fail(err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", Name, err)
	os.Exit(1)
}

// shimFlags are the flags containerd passes every shim action.
type shimFlags struct {
	namespace, address, publishBinary, id, bundle, socket string
	debug                                                 bool
	action                                                string
}

func parseShimFlags(args []string) shimFlags {
	var f shimFlags
	fs := flag.NewFlagSet(Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.namespace, "namespace", "", "")
	fs.StringVar(&f.address, "address", "", "")
	fs.StringVar(&f.publishBinary, "publish-binary", "", "")
	fs.StringVar(&f.id, "id", "", "")
	fs.StringVar(&f.bundle, "bundle", "", "")
	fs.StringVar(&f.socket, "socket", "", "")
	fs.BoolVar(&f.debug, "debug", false, "")
	fs.Bool("v", false, "")
	fs.Bool("info", false, "")
	_ = fs.Parse(args)
	f.action = fs.Arg(0)
	return f
}

func isAction(args []string, action string) bool {
	return parseShimFlags(args).action == action
}

// isBootstrap tells the two protocols apart as pkg/shim does: bootstrap
// parameters that name this shim's id and namespace.
func isBootstrap(input []byte, f shimFlags) bool {
	if len(input) == 0 {
		return false
	}
	var p bootapi.BootstrapParams
	if err := proto.Unmarshal(input, &p); err != nil {
		return false
	}
	return p.GetInstanceID() == f.id && p.GetNamespace() == f.namespace
}

// legacyStart serves `start` for containerd 1.7-2.2: build the bootstrap
// parameters from the flags and environment, start the shim, and answer in
// JSON with version 2. Nothing at start tells 1.7 (task API v2 only) from
// 2.0-2.2 (v2 or v3; both set MAX_SHIM_VERSION=2), so the answer is the one
// every one of them takes, and the shim serves task API v2 next to v3.
func legacyStart(ctx context.Context, f shimFlags, input []byte, stdout io.Writer) error {
	if f.namespace == "" || f.id == "" {
		return fmt.Errorf("start: -namespace and -id are required")
	}
	params := &bootapi.BootstrapParams{
		InstanceID:             f.id,
		Namespace:              f.namespace,
		ContainerdGrpcAddress:  f.address,
		ContainerdTtrpcAddress: os.Getenv("TTRPC_ADDRESS"),
		ContainerdBinary:       f.publishBinary,
		LogLevel:               bootapi.LogLevel_LOG_LEVEL_INFO,
	}
	if f.debug {
		params.LogLevel = bootapi.LogLevel_LOG_LEVEL_DEBUG
	}
	if len(input) > 0 {
		var opts anypb.Any
		if err := proto.Unmarshal(input, &opts); err != nil {
			return fmt.Errorf("start: decode runtime options on stdin: %w", err)
		}
		if err := params.AddExtension(&opts); err != nil {
			return err
		}
	}
	ctx = namespaces.WithNamespace(ctx, f.namespace)
	ctx = context.WithValue(ctx, shim.OptsKey{}, shim.Opts{BundlePath: f.bundle, Debug: f.debug})
	res, err := NewManager().Start(ctx, params)
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"version": 2, "address": res.GetAddress(), "protocol": res.GetProtocol()})
	if err != nil {
		return err
	}
	_, err = io.Copy(stdout, bytes.NewReader(b))
	return err
}
