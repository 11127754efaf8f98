// Package shim is containerd-shim-harden-v2: containerd's runc task service
// wrapped so that every Create, Exec and Update is hardened first, the
// runtime options translated, and each decision recorded. It is the only
// package outside cmd/ that imports containerd.
package shim

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/harden-dev/harden/node"
)

// decodeOptions turns the options containerd sent with a task (or to
// `-info`) into harden's configuration. containerd sends:
//   - nothing, for `ctr run` and Docker without options;
//   - runtimeoptions.v1.Options for a custom runtime_type under CRI (the
//     runtime's options table as TOML in ConfigBody, or a file in
//     ConfigPath) and Docker's daemon.json runtimeType options;
//   - runc options.Options when an operator reused a runc options table.
//
// The result is the node configuration (/etc/harden/config.toml) with the
// request's settings on top.
func decodeOptions(base node.Config, a *anypb.Any) (node.Config, error) {
	if a == nil || a.GetTypeUrl() == "" {
		return base, nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return base, fmt.Errorf("decode runtime options %s: %w", a.GetTypeUrl(), err)
	}
	switch o := v.(type) {
	case *runtimeoptions.Options:
		var c node.Config
		switch {
		case o.ConfigBody != nil && len(o.ConfigBody) > 0:
			c, err = node.ParseConfig(o.ConfigBody)
			if err != nil {
				return base, fmt.Errorf("runtime options (the runtime's options table): %w", err)
			}
		case o.ConfigPath != "":
			c, err = node.LoadConfig(o.ConfigPath, false)
			if err != nil {
				return base, err
			}
		}
		return base.Merge(c), nil
	case *options.Options:
		return base.Merge(node.Config{
			BinaryName: o.BinaryName, Root: o.Root, SystemdCgroup: o.SystemdCgroup,
			NoPivotRoot: o.NoPivotRoot, NoNewKeyring: o.NoNewKeyring, ShimCgroup: o.ShimCgroup,
			IoUid: o.IoUid, IoGid: o.IoGid, CriuImagePath: o.CriuImagePath, CriuWorkPath: o.CriuWorkPath,
		}), nil
	}
	return base, fmt.Errorf("runtime options of type %s are not supported (want runtimeoptions.v1.Options or runc options)", a.GetTypeUrl())
}

// runcOptions is what the runc task service understands: it assumes runc
// options and fails on anything else, so harden always hands it these.
func runcOptions(c node.Config, binary string) (*anypb.Any, error) {
	o := &options.Options{
		BinaryName: binary, Root: c.Root, SystemdCgroup: c.SystemdCgroup,
		NoPivotRoot: c.NoPivotRoot, NoNewKeyring: c.NoNewKeyring, ShimCgroup: c.ShimCgroup,
		IoUid: c.IoUid, IoGid: c.IoGid, CriuImagePath: c.CriuImagePath, CriuWorkPath: c.CriuWorkPath,
	}
	a, err := typeurl.MarshalAnyToProto(o)
	if err != nil {
		return nil, fmt.Errorf("encode runc options: %w", err)
	}
	return a, nil
}

// configPathEnv lets tests and unusual installs point the shim at another
// node configuration file.
const configPathEnv = "HARDEN_CONFIG"

func nodeConfigPath() string {
	if p := os.Getenv(configPathEnv); p != "" {
		return p
	}
	return node.DefaultConfigPath
}
