package runcwrap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/spec"
)

// The fast path: the runc shim invokes its binary four times per container
// (create, start, delete, delete --force), and a Go process start costs
// several milliseconds on its own (the runtime's initialisation, before
// main). harden changes nothing in start, state, kill and delete, so
// cmd/harden-runc's C constructor (fastpath.c) hands those to the runtime
// before the Go runtime starts, as runc's own nsexec runs before Go. It
// needs two answers the Go side has: which runtime the container was
// created with, and which state record delete must remove. create writes
// them here, into the bundle, when the engine's --log file is in the
// bundle (containerd's runc shim and Docker put log.json there), so that
// the C side can find them from the command line alone.
//
// delete removes the state record and keeps the file, so that the
// engine's second delete (the runc shim sends `delete --force` after
// `delete`) also takes the fast path; the file goes with the bundle, and
// the next create of the bundle replaces it. When the file names the
// engine's --pid-file and the init process it names is gone (the engine
// deletes a container once its init has exited), delete forgets the record
// first and execs the runtime, as start does: there is nothing left that
// the record describes, and a child process to wait for the runtime's exit
// costs about 3 ms on a small VM. Otherwise (no pid file, one it cannot
// trust, or an init that may still run) it runs the runtime as a child and
// forgets the record only once the runtime exits 0, as the Go path always
// does.
//
// The file is a cache of the state record, never a source of decisions:
// the C side uses it only when every check passes (owner, mode, the
// container ID and runtime root it names) and falls back to the Go path
// otherwise, which reads the record and the configuration itself.
const (
	// FastFile is the fast-path file's name in the bundle.
	FastFile = "harden-runc.fast"
	// fastHeader is its first line; the C side refuses any other.
	fastHeader = "harden-runc fast path v1"
	// NoFastPathEnv, when set to anything, turns the fast path off (tests
	// compare both paths with it).
	NoFastPathEnv = "HARDEN_RUNC_NO_FASTPATH"
)

// fastEntry is what the C side needs for one container. pidFile (the
// engine's --pid-file, absolute) is optional and written only when set.
type fastEntry struct {
	id, root, runtime, state, pidFile string
}

// render is the file's text. Every value is one line: a value with a
// newline (which neither containerd nor runc accepts in an ID or path)
// is refused rather than written.
func (e fastEntry) render() ([]byte, error) {
	var b strings.Builder
	b.WriteString(fastHeader + "\n")
	kvs := [][2]string{{"id", e.id}, {"root", e.root}, {"runtime", e.runtime}, {"state", e.state}}
	if e.pidFile != "" {
		kvs = append(kvs, [2]string{"pidfile", e.pidFile})
	}
	for _, kv := range kvs {
		if strings.ContainsAny(kv[1], "\n\x00") {
			return nil, fmt.Errorf("%s %q has a newline or NUL", kv[0], kv[1])
		}
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return []byte(b.String()), nil
}

// fastPathFile is where create keeps the fast-path file for inv, or ""
// when the engine's --log file is not directly in the bundle: the C side
// looks next to --log, and writing anywhere but the bundle would leave
// files in a directory harden does not own.
func fastPathFile(inv *Invocation, bundle string) string {
	logPath, ok := inv.GlobalValue("log")
	if !ok || logPath == "" || !filepath.IsAbs(logPath) {
		return ""
	}
	if filepath.Clean(filepath.Dir(logPath)) != filepath.Clean(bundle) {
		return ""
	}
	return filepath.Join(bundle, FastFile)
}

// writeFast replaces the fast-path file (mode 0600), atomically and without
// fsync: the file is a cache in the engine's (tmpfs) state directory, and a
// missing one only sends the next command down the Go path.
func writeFast(path string, e fastEntry) error {
	b, err := e.render()
	if err != nil {
		return err
	}
	return spec.ReplaceFile(path, b, 0o600)
}

// removeFast removes a fast-path file; one that is not there is fine.
func removeFast(path string) error {
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
