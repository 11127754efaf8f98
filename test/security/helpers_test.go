package security

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
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

// proc is a live process.
type proc struct {
	pid     int
	cmdline string
	cgroup  string
}

// processes lists live (not zombie) processes.
func processes() []proc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		cg, _ := os.ReadFile(d + "/cgroup")
		out = append(out, proc{pid: pid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))), cgroup: string(cg)})
	}
	return out
}

// processesInCgroupOf lists live processes whose cgroup path names id.
func processesInCgroupOf(id string) []string {
	var out []string
	for _, p := range processes() {
		if strings.Contains(p.cgroup, "/"+id+"\n") || strings.Contains(p.cgroup, "/"+id+"/") {
			out = append(out, fmt.Sprintf("pid %d: %.120s", p.pid, p.cmdline))
		}
	}
	return out
}

// mountsUnder lists mount points at or below dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		m := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(f[4])
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}
