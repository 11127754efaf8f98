package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// seccompLogPolicy runs the containers of runtime handler "measure" (an
// operator's setting in the node configuration, not the workload's) in
// complain mode, and every other container enforced with its denials
// logged. Both extend baseline, whose runtime-default filter denies
// unshare(2) without CAP_SYS_ADMIN.
const seccompLogPolicy = `apiVersion: harden.dev/v1alpha1
kind: Policy
profiles:
- name: measure
  extends: baseline
  seccomp: {complain: true, logDenials: true}
- name: logged
  extends: baseline
  seccomp: {logDenials: true}
rules:
- name: measuring
  match: {runtimeHandlers: [measure]}
  profile: measure
defaults: {profile: logged}
`

// TestSeccompComplainAndLoggedDenials runs, under runc 1.4.0 through
// harden-runc, a container whose init process calls unshare(CLONE_NEWUSER):
//
//   - enforced with logDenials: the call fails with EPERM and the kernel
//     logs an errno record (code 0x50000) for that pid;
//   - in complain mode: the call succeeds (the process is in a new user
//     namespace) and the kernel logs a log record (code 0x7ffc0000);
//
// and `hardenctl denials` attributes the complain record to the container.
//
// Where the kernel writes the records was checked on this VM (kernel 6.18,
// CONFIG_AUDIT=y, no auditd, no journald): kauditd prints them through
// printk, so they are "audit: type=1326" lines in /dev/kmsg. With auditd
// running they would go to its log instead, and the test reads that too.
func TestSeccompComplainAndLoggedDenials(t *testing.T) {
	images := need(t, "HARDEN_IMAGES")
	kernelLogs := kernelAudits()
	if kernelLogs {
		ensureActionsLogged(t, "log", "errno")
	}
	nr, err := libseccomp.GetSyscallFromName("unshare")
	if err != nil {
		t.Fatal(err)
	}
	h := newHardenRunc(t, seccompLogPolicy)
	hardenctl := filepath.Join(h.dir, "hardenctl")
	if out, err := exec.Command("go", "build", "-o", hardenctl, "github.com/harden-dev/harden/cmd/hardenctl").CombinedOutput(); err != nil {
		t.Fatalf("build hardenctl: %v\n%s", err, out)
	}
	selfUserNS, err := os.Readlink("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("enforce with logDenials", func(t *testing.T) {
		// The records go through printk's rate limit (10 per 5 s); a
		// record the limit dropped is retried with a new container.
		for attempt := 1; ; attempt++ {
			id := testID(t, fmt.Sprintf("seccomp-errno-%d", attempt))
			s := engineLikeSpec(copyRootfs(t, images), id, 0)
			s.Process.Args = []string{"/usr/bin/unshare", "-U", "/bin/true"}
			bundle := writeSpec(t, s)
			pidFile := filepath.Join(bundle, "init.pid")
			t.Cleanup(func() { h.forceDelete(id) })
			mark := kmsgEnd(t)
			r := h.run(h.config, "run", "--pid-file", pidFile, "--bundle", bundle, id)
			// The syscall is denied: unshare exits 1 with EPERM.
			if r.err == nil || !strings.Contains(r.stderr+r.stdout, "Operation not permitted") {
				t.Fatalf("unshare under the enforced filter: want EPERM, got %v", r)
			}
			assertDecision(t, h, id, false)
			pid := readPid(t, pidFile)
			if !kernelLogs {
				t.Skip(noAuditReason)
			}
			rec, found, suppressed := waitSeccompRecord(t, mark, pid, int(nr))
			if found {
				if rec["code"] != "0x50000" {
					t.Fatalf("record %v: code %s, want 0x50000 (SECCOMP_RET_ERRNO)", rec, rec["code"])
				}
				return
			}
			if !suppressed || attempt == 3 {
				t.Fatalf("no seccomp record for pid %d syscall %d in /dev/kmsg or the audit log (suppressed by printk's rate limit: %v)", pid, nr, suppressed)
			}
			time.Sleep(5 * time.Second)
		}
	})

	t.Run("complain", func(t *testing.T) {
		complainRun(t, h, hardenctl, kernelLogs, selfUserNS, int(nr))
	})

	// crun too: it accepts SCMP_ACT_LOG and the log flag (checked with
	// crun 1.8.1), and harden-runc hands the container to it.
	t.Run("complain under crun", func(t *testing.T) {
		crun := need(t, "HARDEN_CRUN")
		hc := newHardenRunc(t, strings.Replace(seccompLogPolicy, "  profile: measure\n", "  profile: measure\n  backend: crun\n", 1))
		hc.runtime = crun // for forceDelete
		complainRun(t, hc, hardenctl, kernelLogs, selfUserNS, int(nr))
	})
}

// measureConfig is h's node configuration for runtime handler "measure",
// as an operator would give one RuntimeClass its own options.
func measureConfig(t *testing.T, h *hardenRunc) string {
	t.Helper()
	b, err := os.ReadFile(h.config)
	if err != nil {
		t.Fatal(err)
	}
	p := h.config + ".measure.toml"
	if err := os.WriteFile(p, append(b, "RuntimeHandler = \"measure\"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type denialJSON struct {
	Pid       int
	Syscall   string
	Action    string
	Allowed   bool
	Note      string
	Container *struct{ ID string }
}

// complainRun runs a complain-mode container whose init process calls
// unshare(CLONE_NEWUSER) and then execs sleep, and checks that the call
// succeeded, that the kernel logged it as SCMP_ACT_LOG, and that
// `hardenctl denials` attributes it to the container.
func complainRun(t *testing.T, h *hardenRunc, hardenctl string, kernelLogs bool, selfUserNS string, nr int) {
	images := need(t, "HARDEN_IMAGES")
	for attempt := 1; ; attempt++ {
		id := testID(t, fmt.Sprintf("seccomp-log-%s-%d", filepath.Base(h.runtime), attempt))
		s := engineLikeSpec(copyRootfs(t, images), id, 0)
		// unshare(2) in the init process itself, which then execs a
		// sleep: the pid in the record stays alive, in the container.
		s.Process.Args = []string{"/usr/bin/unshare", "-U", "/bin/sleep", "600"}
		bundle := writeSpec(t, s)
		mark := kmsgEnd(t)
		if r := h.create(measureConfig(t, h), bundle, id); r.err != nil {
			t.Fatalf("create: %v", r)
		}
		if r := h.run(h.config, "start", id); r.err != nil {
			t.Fatalf("start: %v", r)
		}
		assertDecision(t, h, id, true)
		pid := readPid(t, filepath.Join(bundle, "init.pid"))

		// The syscall ran: the init process is in a user namespace of
		// its own, and exec'd sleep (unshare would have exited 1).
		if ns := waitUserNS(t, pid, selfUserNS); ns == "" {
			t.Fatalf("pid %d never left the host's user namespace: unshare(CLONE_NEWUSER) did not succeed", pid)
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "sleep" {
			t.Fatalf("pid %d runs %q, want sleep after a successful unshare", pid, comm)
		}
		if !kernelLogs {
			t.Skip(noAuditReason)
		}
		rec, found, suppressed := waitSeccompRecord(t, mark, pid, nr)
		if !found {
			if !suppressed || attempt == 3 {
				t.Fatalf("no seccomp record for pid %d syscall %d in /dev/kmsg or the audit log (suppressed by printk's rate limit: %v)", pid, nr, suppressed)
			}
			h.forceDelete(id)
			time.Sleep(5 * time.Second)
			continue
		}
		if rec["code"] != "0x7ffc0000" {
			t.Fatalf("record %v: code %s, want 0x7ffc0000 (SECCOMP_RET_LOG)", rec, rec["code"])
		}

		// hardenctl denials names the container, the syscall and the action.
		out, err := exec.Command(hardenctl, "denials", "--config", h.config, "--json", "--since", "10m", id).CombinedOutput()
		if err != nil {
			t.Fatalf("hardenctl denials: %v\n%s", err, out)
		}
		var rep struct{ Denials []denialJSON }
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("hardenctl denials --json: %v\n%s", err, out)
		}
		if !slices.ContainsFunc(rep.Denials, func(d denialJSON) bool {
			return d.Pid == pid && d.Syscall == "unshare" && d.Action == "log" && d.Allowed &&
				d.Container != nil && d.Container.ID == id && strings.Contains(d.Note, "complain")
		}) {
			t.Fatalf("hardenctl denials %s does not list unshare by pid %d in complain mode:\n%s", id, pid, out)
		}
		table, _ := exec.Command(hardenctl, "denials", "--config", h.config, "--since", "10m").CombinedOutput()
		t.Logf("hardenctl denials --since 10m:\n%s", table)
		return
	}
}

// noAuditReason is why the log assertions cannot run on a kernel without
// audit: seccomp_log() hands each record to audit_seccomp(), which such a
// kernel compiles to nothing, so no record exists anywhere to read.
const noAuditReason = "this kernel has no CONFIG_AUDIT (/proc/self/loginuid is missing): seccomp records are not written anywhere; the syscall result was checked, the record cannot be"

// kernelAudits reports CONFIG_AUDIT: procfs has loginuid only with it.
func kernelAudits() bool {
	_, err := os.Stat("/proc/self/loginuid")
	return err == nil
}

// ensureActionsLogged adds actions to /proc/sys/kernel/seccomp/actions_logged
// for the test and puts the original value back afterwards. The kernel's
// default already has them; a host that removed them gets them back only
// while the test runs.
func ensureActionsLogged(t *testing.T, actions ...string) {
	t.Helper()
	const p = "/proc/sys/kernel/seccomp/actions_logged"
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("read %s: %v", p, err)
	}
	orig := strings.Fields(string(b))
	want := slices.Clone(orig)
	for _, a := range actions {
		if !slices.Contains(want, a) {
			want = append(want, a)
		}
	}
	if len(want) == len(orig) {
		return
	}
	if err := os.WriteFile(p, []byte(strings.Join(want, " ")), 0o644); err != nil {
		t.Skipf("%s is %q and cannot be changed (%v): the kernel would not log %v", p, orig, err, actions)
	}
	t.Logf("%s: %q -> %q for this test", p, orig, want)
	t.Cleanup(func() {
		if err := os.WriteFile(p, []byte(strings.Join(orig, " ")), 0o644); err != nil {
			t.Errorf("restore %s to %q: %v", p, orig, err)
		}
	})
}

// assertDecision checks the container's state record: the runtime it went
// to, the seccomp log flag always, complain mode when asked.
func assertDecision(t *testing.T, h *hardenRunc, id string, complain bool) {
	t.Helper()
	rc := &node.Recorder{StateDir: filepath.Join(h.dir, "state")}
	rec, ok, err := rc.FindState(id, h.root)
	if err != nil || !ok || rec.Outcome == nil {
		t.Fatalf("state record for %s: %v %v", id, ok, err)
	}
	if rec.Runtime != h.runtime {
		t.Fatalf("record for %s: runtime %s, want %s", id, rec.Runtime, h.runtime)
	}
	has := map[string]bool{}
	for _, c := range rec.Changes {
		has[c.Rule] = true
	}
	if !has[profiles.RuleSeccompLog] || has[profiles.RuleSeccompComplain] != complain {
		t.Fatalf("record for %s: log-denials %v, complain %v, want true, %v", id, has[profiles.RuleSeccompLog], has[profiles.RuleSeccompComplain], complain)
	}
}

func readPid(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

func waitUserNS(t *testing.T, pid int, host string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
		if err != nil {
			return ""
		}
		if ns != host {
			return ns
		}
	}
	return ""
}

// kmsgEnd is the sequence number of the newest /dev/kmsg record: records
// after it are the test's.
func kmsgEnd(t *testing.T) uint64 {
	t.Helper()
	recs, err := readKmsg()
	if err != nil {
		t.Skipf("read /dev/kmsg: %v (the kernel's records cannot be checked)", err)
	}
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].seq
}

type kmsgLine struct {
	seq  uint64
	text string
}

// readKmsg reads the ring buffer without blocking, one record per read.
func readKmsg() ([]kmsgLine, error) {
	fd, err := syscall.Open("/dev/kmsg", syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []kmsgLine
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return out, nil
		}
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		head, text, _ := strings.Cut(strings.SplitN(string(buf[:n]), "\n", 2)[0], ";")
		parts := strings.Split(head, ",")
		if len(parts) < 2 {
			continue
		}
		seq, _ := strconv.ParseUint(parts[1], 10, 64)
		out = append(out, kmsgLine{seq: seq, text: text})
	}
}

// waitSeccompRecord waits for the kernel's seccomp record of pid calling
// syscall nr, in /dev/kmsg after mark or in auditd's log. suppressed says
// printk's rate limit dropped audit messages meanwhile.
func waitSeccompRecord(t *testing.T, mark uint64, pid int, nr int) (rec map[string]string, found, suppressed bool) {
	t.Helper()
	start := time.Now().Add(-time.Minute) // the container ran within the last minute
	match := func(text string) map[string]string {
		if !strings.Contains(text, "type=1326") && !strings.Contains(text, "type=SECCOMP") {
			return nil
		}
		f := map[string]string{}
		for _, kv := range strings.Fields(text) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = strings.Trim(v, `"`)
			}
		}
		if f["pid"] != strconv.Itoa(pid) || f["syscall"] != strconv.Itoa(nr) {
			return nil
		}
		// audit(SECONDS.MILLIS:SERIAL): not a record of an earlier holder
		// of the pid.
		if i := strings.Index(text, "audit("); i >= 0 {
			sec, _ := strconv.ParseInt(strings.SplitN(text[i+6:], ".", 2)[0], 10, 64)
			if time.Unix(sec, 0).Before(start.Add(-2 * time.Second)) {
				return nil
			}
		}
		return f
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		recs, err := readKmsg()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.seq <= mark {
				continue
			}
			if strings.HasPrefix(r.text, "kauditd_printk_skb:") && strings.Contains(r.text, "suppressed") {
				suppressed = true
			}
			if f := match(r.text); f != nil {
				t.Logf("kernel record: %s", r.text)
				return f, true, suppressed
			}
		}
		if b, err := os.ReadFile("/var/log/audit/audit.log"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := match(strings.ReplaceAll(line, "\x1d", " ")); f != nil {
					t.Logf("audit log record: %s", line)
					return f, true, suppressed
				}
			}
		}
	}
	return nil, false, suppressed
}

// TestLogDenialsUnderRunc11: runc 1.1 (Debian 12's /usr/sbin/runc) applies
// no seccomp flags and refuses to start a container that asks for one
// ("seccomp flags are not yet supported by runc"). Under a policy that
// logs denials, harden-runc asks the runtime (`features`, which in 1.1 has
// no linux.seccomp.supportedFlags), drops SECCOMP_FILTER_FLAG_LOG and
// records it, and the container runs with its filter enforced:
// unshare(CLONE_NEWUSER) fails with EPERM.
func TestLogDenialsUnderRunc11(t *testing.T) {
	runc11 := need(t, "HARDEN_RUNC_DEBIAN")
	if out, err := exec.Command(runc11, "--version").Output(); err != nil || !strings.Contains(string(out), "runc version 1.1.") {
		t.Fatalf("%s is not runc 1.1 (%v): %s", runc11, err, out)
	}
	images := need(t, "HARDEN_IMAGES")
	h := newHardenRunc(t, "")
	h.runtime = runc11
	h.config = h.writeConfig("runc11.toml", seccompLogPolicy)

	id := testID(t, "runc11-logdenials")
	s := engineLikeSpec(copyRootfs(t, images), id, 0)
	s.Process.Args = []string{"/usr/bin/unshare", "-U", "/bin/true"}
	bundle := writeSpec(t, s)
	t.Cleanup(func() { h.forceDelete(id) })
	r := h.run(h.config, "run", "--pid-file", filepath.Join(bundle, "init.pid"), "--bundle", bundle, id)
	if out := r.stderr + r.stdout; r.err == nil || !strings.Contains(out, "Operation not permitted") || strings.Contains(out, "not yet supported") {
		t.Fatalf("unshare under runc 1.1: want the container to run and unshare to fail with EPERM, got %v", r)
	}
	rc := &node.Recorder{StateDir: filepath.Join(h.dir, "state")}
	rec, ok, err := rc.FindState(id, h.root)
	if err != nil || !ok || rec.Outcome == nil {
		t.Fatalf("state record for %s: %v %v", id, ok, err)
	}
	dropped := slices.ContainsFunc(rec.Outcome.Changes, func(c spec.Change) bool {
		return c.Rule == "backend.runc" && c.Path == "linux.seccomp.flags" && c.Op == spec.OpRemove
	})
	noted := slices.ContainsFunc(rec.Outcome.Enforcement, func(e spec.Enforcement) bool {
		return e.Control == spec.CtlSeccomp && e.Enforced && strings.Contains(e.Note, "denials are not logged")
	})
	if !dropped || !noted {
		t.Fatalf("record for %s: flag dropped %v, enforcement noted %v:\nchanges %+v\nenforcement %+v", id, dropped, noted, rec.Outcome.Changes, rec.Outcome.Enforcement)
	}
}
