package shim

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/shim"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/spec"
)

// Manager is the shim's lifecycle half (start, stop, -info): the runc shim
// manager, with runtime options translated for -info.
type Manager struct {
	shim.Shim
}

// NewManager returns harden's shim manager.
func NewManager() *Manager {
	return &Manager{Shim: manager.NewShimManager(Name)}
}

// Info answers `containerd-shim-harden-v2 -info` (containerd's runtime
// introspection). The runc manager reads runc options from stdin and fails
// on the runtimeoptions CRI sends, so they are translated first, and the
// features reported are those of the runc binary harden delegates to.
func (m *Manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("read runtime options: %w", err)
	}
	base, err := node.LoadConfig(nodeConfigPath(), true)
	if err != nil {
		return nil, err
	}
	var a anypb.Any
	if len(data) > 0 {
		if err := proto.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("decode runtime options: %w", err)
		}
	}
	cfg, err := decodeOptions(base, &a)
	if err != nil {
		return nil, err
	}
	binary, err := cfg.RuntimeBinary(spec.Runc)
	if err != nil {
		return nil, err
	}
	ro, err := runcOptions(cfg, binary)
	if err != nil {
		return nil, err
	}
	translated, err := proto.Marshal(ro)
	if err != nil {
		return nil, err
	}
	return m.Shim.Info(ctx, bytes.NewReader(translated))
}
