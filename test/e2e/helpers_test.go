package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/harden-dev/harden/test/testenv"
)

// Runtime types.
const (
	hardenRuntime = "io.containerd.harden.v2"
	runcRuntime   = "io.containerd.runc.v2"
)

// Kernel capability numbers (linux/capability.h), so the expected masks do
// not come from harden's own tables.
var capNumbers = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_FSETID": unix.CAP_FSETID,
	"CAP_FOWNER": unix.CAP_FOWNER, "CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID,
	"CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_KILL": unix.CAP_KILL,
}

// The capability sets the built-in profiles allow.
var (
	baselineCaps   = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"}
	restrictedCaps = []string{"CAP_NET_BIND_SERVICE"}
	noCaps         = "0000000000000000"
)

// capMask is the hex mask /proc/PID/status shows for the named capabilities.
func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		b, ok := capNumbers[n]
		if !ok {
			panic("unknown capability " + n)
		}
		m |= 1 << b
	}
	return fmt.Sprintf("%016x", m)
}

func parseMask(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("capability mask %q: %v", s, err)
	}
	return v
}

// result is a finished command.
type result struct {
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("stdout: %s\nstderr: %s", strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// runCmd runs a program with a timeout and returns its output.
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

// mustCtr runs ctr and fails the test on error.
func mustCtr(t *testing.T, ns string, args ...string) result {
	t.Helper()
	r, err := ctr(ns, args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// ctrRunFlags keeps `ctr run` state inside the instance (HARDEN_CTR_RUN_FLAGS
// of containerd.sh's env.sh). --runc-root only reaches the runc shim; harden
// gets its runc root from the node configuration.
func ctrRunFlags() []string {
	return []string{"--runc-root", filepath.Join(inst.dir, "runc"), "--fifo-dir", filepath.Join(inst.dir, "fifo")}
}

// ctrRunArgs builds `ctr run` arguments: flags, then image, id and command.
func ctrRunArgs(runtime string, flags []string, id string, command ...string) []string {
	a := append([]string{"run"}, ctrRunFlags()...)
	a = append(a, "--runtime", runtime)
	a = append(a, flags...)
	a = append(a, inst.image, id)
	return append(a, command...)
}

var idSeq struct {
	sync.Mutex
	n   int
	ids []string
}

// newID returns a container id for this run and remembers it, so teardown
// can look for its processes.
func newID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	id := fmt.Sprintf("e2e-%s-%d-%d", prefix, os.Getpid()%10000, idSeq.n)
	idSeq.ids = append(idSeq.ids, id)
	return id
}

// rememberID records an id containerd chose (CRI pods and containers).
func rememberID(id string) {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.ids = append(idSeq.ids, id)
}

// ctrRunDetached starts a long-running container (`ctr run -d`) and deletes
// it when the test ends.
func ctrRunDetached(t *testing.T, runtime string, flags []string, id string) int {
	t.Helper()
	t.Cleanup(func() { removeCtrContainer(t, "default", id) })
	mustCtr(t, "default", ctrRunArgs(runtime, append([]string{"-d"}, flags...), id, "sleep", inst.token)...)
	return ctrTaskPid(t, "default", id)
}

// ctrTaskPid returns the host pid of a task's init process.
func ctrTaskPid(t *testing.T, ns, id string) int {
	t.Helper()
	r := mustCtr(t, ns, "tasks", "ls")
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil || pid <= 0 {
				t.Fatalf("task %s has pid %q (%s)", id, f[1], line)
			}
			return pid
		}
	}
	t.Fatalf("task %s not in `ctr tasks ls`:\n%s", id, r.stdout)
	return 0
}

// ctrTaskExists reports whether ctr lists a task with the id.
func ctrTaskExists(t *testing.T, ns, id string) bool {
	t.Helper()
	r := mustCtr(t, ns, "tasks", "ls", "-q")
	return slices.Contains(strings.Fields(r.stdout), id)
}

// removeCtrContainer kills and deletes a task and its container. A runsc
// task that failed to start stays "created", and runsc 2022-12-19 refuses
// to signal a created container, so the runc shim cannot delete it; then
// `runsc delete --force` is used on the instance's runtime root, and the
// delete retried.
func removeCtrContainer(t *testing.T, ns, id string) {
	t.Helper()
	if _, err := ctr(ns, "tasks", "delete", "--force", id); err != nil && ctrTaskExistsQuiet(ns, id) {
		if rs := env["HARDEN_RUNSC"]; rs != "" {
			// runsc keeps its state as files named after sandbox and
			// container in the root; it answers "not found" for others.
			_, _ = runCmd(30*time.Second, nil, rs, "--root", filepath.Join(inst.dir, "runc", ns), "delete", "--force", id)
		}
		if r, err := ctr(ns, "tasks", "delete", "--force", id); err != nil && ctrTaskExistsQuiet(ns, id) {
			t.Errorf("cleanup: delete task %s: %v\n%s", id, err, r)
		}
	}
	if r, err := ctr(ns, "containers", "delete", id); err != nil && !strings.Contains(r.stderr, "not found") {
		t.Errorf("cleanup: delete container %s: %v\n%s", id, err, r)
	}
}

func ctrTaskExistsQuiet(ns, id string) bool {
	r, err := ctr(ns, "tasks", "ls", "-q")
	return err == nil && slices.Contains(strings.Fields(r.stdout), id)
}

// probeScript prints the kernel's view of the process running it and of its
// container, one key=value per line.
const probeScript = `grep -E '^(CapBnd|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo uid=$(id -u)
for p in /proc/keys /proc/timer_list /proc/sched_debug /proc/kcore /sys/firmware; do
  if awk -v p=$p '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; then echo "masked:$p=yes"; else echo "masked:$p=no"; fi
done
echo done=1
`

// parseProbe reads key=value lines; it fails when the probe did not finish.
func parseProbe(t *testing.T, out string) map[string]string {
	t.Helper()
	m := parseKV(out)
	if m["done"] != "1" {
		t.Fatalf("probe did not finish; output:\n%s", out)
	}
	return m
}

func parseKV(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

// procStatus reads the fields of /proc/PID/status: the kernel's view of a
// container process, read from the host.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read status of pid %d: %v", pid, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// kernelView is the part of a status both probes and host reads report.
func kernelView(m map[string]string) string {
	return fmt.Sprintf("CapBnd=%s CapEff=%s CapPrm=%s CapAmb=%s NoNewPrivs=%s Seccomp=%s",
		m["CapBnd"], m["CapEff"], m["CapPrm"], m["CapAmb"], m["NoNewPrivs"], m["Seccomp"])
}

// maskedPaths are paths the profiles (and runc's defaults) mask; each is
// checked only if it exists on this host.
var maskedPaths = []string{"/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/kcore", "/sys/firmware"}

// assertHardened checks the kernel view of a process under a profile:
// bounding set = the profile's capabilities, effective likewise for root and
// empty otherwise, no ambient capabilities, no_new_privs, seccomp filter.
func assertHardened(t *testing.T, what string, got map[string]string, caps []string, root bool) {
	t.Helper()
	want := capMask(caps)
	if got["CapBnd"] != want {
		t.Errorf("%s: CapBnd = %s, want %s (%s)", what, got["CapBnd"], want, strings.Join(caps, ","))
	}
	wantEff := want
	if !root {
		wantEff = noCaps
	}
	if got["CapEff"] != wantEff {
		t.Errorf("%s: CapEff = %s, want %s", what, got["CapEff"], wantEff)
	}
	if a := got["CapAmb"]; a != "" && a != noCaps {
		t.Errorf("%s: CapAmb = %s, want none", what, a)
	}
	if got["NoNewPrivs"] != "1" {
		t.Errorf("%s: NoNewPrivs = %q, want 1", what, got["NoNewPrivs"])
	}
	if got["Seccomp"] != "2" {
		t.Errorf("%s: Seccomp = %q, want 2 (filter)", what, got["Seccomp"])
	}
}

// assertMasked checks the probe saw a mount over each masked path that
// exists on the host.
func assertMasked(t *testing.T, what string, got map[string]string) {
	t.Helper()
	n := 0
	for _, p := range maskedPaths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		n++
		if got["masked:"+p] != "yes" {
			t.Errorf("%s: %s is not masked (no mount over it in /proc/self/mountinfo)", what, p)
		}
	}
	if n == 0 {
		t.Errorf("%s: none of %v exists on this host; cannot check masking", what, maskedPaths)
	}
}

// record is the part of a decision-log line the tests read (node.Record).
type record struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	ID        string    `json:"id"`
	ExecID    string    `json:"execID"`
	Namespace string    `json:"namespace"`
	Bundle    string    `json:"bundle"`
	Result    string    `json:"result"`
	Error     string    `json:"error"`
	Policy    string    `json:"policy"`
	Runtime   string    `json:"runtime"`
	Identity  struct {
		ID             string `json:"id"`
		Engine         string `json:"engine"`
		ContainerType  string `json:"containerType"`
		RuntimeHandler string `json:"runtimeHandler"`
		Namespace      string `json:"namespace"`
		Pod            string `json:"pod"`
		Container      string `json:"container"`
		Image          string `json:"image"`
	} `json:"identity"`
	Decision struct {
		Rule    string `json:"rule"`
		Profile string `json:"profile"`
		Mode    string `json:"mode"`
		Backend string `json:"backend"`
	} `json:"decision"`
	Changes []struct {
		Rule string `json:"rule"`
		Path string `json:"path"`
		Op   string `json:"op"`
	} `json:"changes"`
	Violations []struct {
		Rule  string `json:"rule"`
		Field string `json:"field"`
	} `json:"violations"`
	Enforcement []struct {
		Control  string `json:"control"`
		Enforced bool   `json:"enforced"`
		Note     string `json:"note"`
	} `json:"enforcement"`
	raw string
}

func (r record) String() string { return r.raw }

// readRecords parses a decision log.
func readRecords(t *testing.T, file string) []record {
	t.Helper()
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 2<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("decision log %s: line is not a record: %v\n%s", file, err, sc.Text())
		}
		r.raw = sc.Text()
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// findRecord returns the last record in file matching the predicate, or
// fails the test listing what the log has for the id.
func findRecord(t *testing.T, file, what string, match func(record) bool) record {
	t.Helper()
	recs := readRecords(t, file)
	for i := len(recs) - 1; i >= 0; i-- {
		if match(recs[i]) {
			return recs[i]
		}
	}
	var last []string
	for i := len(recs) - 1; i >= 0 && len(last) < 5; i-- {
		last = append(last, recs[i].raw)
	}
	t.Fatalf("no decision record for %s in %s; last records:\n%s", what, file, strings.Join(last, "\n"))
	return record{}
}

func createRecord(t *testing.T, file, id string) record {
	t.Helper()
	return findRecord(t, file, "create of "+id, func(r record) bool { return r.Event == "create" && r.ID == id })
}

func hasRecord(t *testing.T, file string, match func(record) bool) bool {
	t.Helper()
	for _, r := range readRecords(t, file) {
		if match(r) {
			return true
		}
	}
	return false
}

func (r record) hasChange(rule string) bool {
	for _, c := range r.Changes {
		if c.Rule == rule {
			return true
		}
	}
	return false
}

func (r record) hasViolation(rule string) bool {
	for _, v := range r.Violations {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// cgroupFile reads a cgroup v1 file of a process's cgroup on the host:
// /sys/fs/cgroup/CONTROLLER/<path from /proc/PID/cgroup>/FILE.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("read cgroups of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				p := filepath.Join("/sys/fs/cgroup", controller, parts[2], file)
				v, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup (v1) in /proc/%d/cgroup:\n%s", pid, controller, pid, b)
	return ""
}

// shimsFor lists live containerd-shim-harden-v2 processes whose arguments
// mention id (a shim's -id is its container, or for CRI its pod sandbox).
func shimsFor(id string) []string {
	var out []string
	for _, p := range testenv.Processes() {
		if strings.Contains(p.Cmdline, "containerd-shim-harden-v2") && strings.Contains(p.Cmdline, id) {
			out = append(out, fmt.Sprintf("pid %d: %s", p.PID, p.Cmdline))
		}
	}
	return out
}

// assertNoTrace checks that nothing of container id exists after harden
// refused it or failed: no task, no shim process, no bundle, no mount, no
// process in its cgroup.
func assertNoTrace(t *testing.T, ns, id string) {
	t.Helper()
	if ctrTaskExists(t, ns, id) {
		t.Errorf("%s: a task is left (ctr -n %s tasks ls)", id, ns)
	}
	// The shim exits asynchronously after containerd's delete.
	var shims []string
	for i := 0; i < 25; i++ {
		if shims = shimsFor(id); len(shims) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(shims) > 0 {
		t.Errorf("%s: harden shim still running: %v", id, shims)
	}
	if _, err := os.Stat(filepath.Join(inst.taskDir(ns), id)); err == nil {
		t.Errorf("%s: bundle left: %s", id, filepath.Join(inst.taskDir(ns), id))
	}
	for _, m := range testenv.MountsUnder(inst.base) {
		if strings.Contains(m, id) {
			t.Errorf("%s: mount left: %s", id, m)
		}
	}
	if ps := testenv.ProcessesInCgroupOf(id); len(ps) > 0 {
		t.Errorf("%s: processes left in its cgroup: %v", id, ps)
	}
}
