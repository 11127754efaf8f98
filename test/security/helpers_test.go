package security

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// result is a finished command's output.
type result struct{ stdout, stderr string }

func (r result) String() string {
	return fmt.Sprintf("stdout: %s\nstderr: %s", strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// runCmd runs a command with a timeout; envv nil means the test's
// environment.
func runCmd(timeout time.Duration, envv []string, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = envv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Do not wait for grandchildren holding the pipes after a kill.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{stdout.String(), stderr.String()}
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %s: %w", filepath.Base(name), strings.Join(args, " "), timeout, ctx.Err())
	}
	return r, err
}

// ctr runs ctr against the instance in containerd namespace ns.
func ctr(ns string, args ...string) (result, error) {
	a := append([]string{"--address", inst.sock(), "-n", ns}, args...)
	return runCmd(90*time.Second, nil, env["HARDEN_CTR"], a...)
}

// crictl runs crictl against the instance's CRI socket.
func crictl(args ...string) (result, error) {
	a := append([]string{"--config", filepath.Join(inst.dir, "crictl.yaml")}, args...)
	return runCmd(90*time.Second, nil, env["HARDEN_CRICTL"], a...)
}

// ids remembers every container and pod id of the run, so teardown can
// look for processes left in their cgroups.
var ids idList

type idList struct {
	sync.Mutex
	n   int
	all []string
}

// next returns a new container id for a configuration.
func (l *idList) next(name string) string {
	l.Lock()
	defer l.Unlock()
	l.n++
	id := fmt.Sprintf("sec-%s-%d-%d", strings.NewReplacer("/", "-", " ", "-").Replace(name), os.Getpid()%10000, l.n)
	l.all = append(l.all, id)
	return id
}

// add records an id the engine chose (CRI).
func (l *idList) add(id string) {
	l.Lock()
	defer l.Unlock()
	l.all = append(l.all, id)
}

func (l *idList) list() []string {
	l.Lock()
	defer l.Unlock()
	return append([]string(nil), l.all...)
}
