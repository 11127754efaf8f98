// Package integration runs specs hardened by harden under the real runtimes
// (runc 1.4.0 built with seccomp, Debian's crun) and asserts what the kernel
// reports inside the container. `make deps` installs the runtimes and the
// busybox rootfs; the paths come from $HARDEN_CACHE/env.sh.
package integration

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// env holds the tool paths from $HARDEN_CACHE/env.sh.
var env = map[string]string{}

func TestMain(m *testing.M) {
	cache := os.Getenv("HARDEN_CACHE")
	if cache == "" {
		cache = "/var/cache/harden"
	}
	if err := readEnv(filepath.Join(cache, "env.sh")); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v (run `make deps` first)\n", err)
	}
	os.Exit(m.Run())
}

// readEnv parses the `export NAME=value` lines deps.sh writes.
func readEnv(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	return sc.Err()
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
