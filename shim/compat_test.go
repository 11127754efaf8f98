package shim

import (
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
)

// TestTellsProtocolsApart: what containerd 2.3+ sends (bootstrap params for
// this shim) from what 2.0-2.2 send (runtime options, or nothing).
func TestTellsProtocolsApart(t *testing.T) {
	args := []string{"-namespace", "k8s.io", "-address", "/run/c.sock", "-publish-binary", "/bin/containerd", "-id", "abc", "-debug", "start"}
	f := parseShimFlags(args)
	if f.namespace != "k8s.io" || f.id != "abc" || f.address != "/run/c.sock" || !f.debug || f.action != "start" {
		t.Fatalf("flags %+v", f)
	}
	boot, _ := proto.Marshal(&bootapi.BootstrapParams{InstanceID: "abc", Namespace: "k8s.io"})
	other, _ := proto.Marshal(&bootapi.BootstrapParams{InstanceID: "xyz", Namespace: "k8s.io"})
	a, err := typeurl.MarshalAnyToProto(&options.Options{BinaryName: "runc"})
	if err != nil {
		t.Fatal(err)
	}
	opts, _ := proto.Marshal(a)
	for name, tc := range map[string]struct {
		in   []byte
		want bool
	}{
		"bootstrap":           {boot, true},
		"bootstrap, other id": {other, false},
		"no stdin (ctr run)":  {nil, false},
		"runc options (CRI)":  {opts, false},
		"garbage":             {[]byte("not protobuf"), false},
	} {
		if got := isBootstrap(tc.in, f); got != tc.want {
			t.Errorf("%s: isBootstrap = %v", name, got)
		}
	}
	if !isAction([]string{"-namespace", "x", "-id", "y", "start"}, "start") || isAction([]string{"-namespace", "x", "delete"}, "start") {
		t.Fatal("action")
	}
}
