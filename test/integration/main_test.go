// Package integration runs specs hardened by harden under the real runtimes
// (runc 1.4.0 built with seccomp, Debian's crun) and asserts what the kernel
// reports inside the container. `make deps` installs the runtimes and the
// busybox rootfs; the paths come from $HARDEN_CACHE/env.sh.
package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/harden-dev/harden/test/testenv"
)

// env holds the tool paths from $HARDEN_CACHE/env.sh.
var env = map[string]string{}

func TestMain(m *testing.M) {
	cache := os.Getenv("HARDEN_CACHE")
	if cache == "" {
		cache = "/var/cache/harden"
	}
	if err := testenv.ReadEnv(filepath.Join(cache, "env.sh"), env); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v (run `make deps` first)\n", err)
	}
	os.Exit(m.Run())
}

// need returns the value of an env.sh variable naming an existing path.
// A missing prerequisite fails the test in CI (CI=true) and skips it with
// the reason elsewhere, so nothing passes silently.
func need(t *testing.T, name string) string {
	t.Helper()
	v := env[name]
	if v == "" {
		v = os.Getenv(name)
	}
	if v != "" {
		if _, err := os.Stat(v); err == nil {
			return v
		}
	}
	msg := fmt.Sprintf("%s is not installed (%q); run `make deps`", name, v)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
