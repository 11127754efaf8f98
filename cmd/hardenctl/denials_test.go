package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// testdata/denials/kmsg.txt is a slice of this host's /dev/kmsg (Debian 12
// VM, kernel 6.18, no auditd, no journald), read with O_NONBLOCK as
// readKmsg does: runc's bats seccomp tests (mkdir under SCMP_ACT_ERRNO with
// SECCOMP_FILTER_FLAG_LOG, and SCMP_ACT_KILL), then unshare(2) under
// SCMP_ACT_LOG and under SCMP_ACT_ERRNO with the LOG flag, fifty times in a
// loop, which tripped printk's rate limit.

func TestParseAuditLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		ok         bool
		want       denial // compared field by field where set
	}{
		{
			name: "kmsg log (complain)",
			line: `audit: type=1326 audit(1795792554.652:32): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=19918 comm="busybox" exe="/bin/busybox" sig=0 arch=c000003e syscall=272 compat=0 ip=0x4815c7 code=0x7ffc0000`,
			ok:   true,
			want: denial{Serial: 32, Pid: 19918, UID: "0", Comm: "busybox", Exe: "/bin/busybox", Arch: "amd64", Nr: 272, Syscall: "unshare", Action: "log", Allowed: true},
		},
		{
			name: "kmsg errno (logDenials)",
			line: `audit: type=1326 audit(1795792640.744:84): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=26946 comm="busybox" exe="/bin/busybox" sig=0 arch=c000003e syscall=272 compat=0 ip=0x4815c7 code=0x50000`,
			ok:   true,
			want: denial{Serial: 84, Pid: 26946, Syscall: "unshare", Action: "errno"},
		},
		{
			name: "kmsg kill_thread",
			line: `audit: type=1326 audit(1795788346.036:6): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=1804 comm="mkdir" exe="/bin/busybox" sig=31 arch=c000003e syscall=83 compat=0 ip=0x47b567 code=0x0`,
			ok:   true,
			want: denial{Serial: 6, Pid: 1804, Comm: "mkdir", Syscall: "mkdir", Action: "kill_thread", Signal: 31},
		},
		{
			name: "auditd enriched, hex comm, subj, i386",
			line: "type=SECCOMP msg=audit(1795792700.001:90): auid=1000 uid=1000 gid=1000 ses=3 subj=system_u:system_r:container_t:s0:c1,c2 pid=31000 comm=6D7920617070 exe=\"/usr/bin/my app\" sig=0 arch=40000003 syscall=26 compat=1 ip=0xf7f1c549 code=0x80000000\x1dAUID=\"user\" ARCH=i386 SYSCALL=ptrace",
			ok:   true,
			want: denial{Serial: 90, Pid: 31000, UID: "1000", Comm: "my app", Exe: "/usr/bin/my app", Arch: "x86", Nr: 26, Syscall: "ptrace", Action: "kill_process"},
		},
		{
			name: "x32",
			line: `audit: type=1326 audit(1795792700.002:91): auid=0 uid=0 gid=0 ses=1 pid=5 comm="a" exe="/a" sig=0 arch=c000003e syscall=1073741896 compat=0 ip=0x1 code=0x50000`,
			ok:   true,
			want: denial{Arch: "x32", Nr: 0x40000048, Syscall: "fcntl", Action: "errno"},
		},
		{
			name: "unknown arch",
			line: `audit: type=1326 audit(1795792700.003:92): auid=0 uid=0 gid=0 ses=1 pid=5 comm="a" exe="/a" sig=0 arch=deadbeef syscall=7 compat=0 ip=0x1 code=0x7ff00000`,
			ok:   true,
			want: denial{Arch: "0xdeadbeef", Syscall: "syscall 7", Action: "trace"},
		},
		{name: "other audit type", line: `audit: type=1400 audit(1795792700.004:93): apparmor="DENIED" operation="open"`},
		{name: "not audit", line: `VFS: Mount too revealing`},
		{name: "suppressed", line: `kauditd_printk_skb: 41 callbacks suppressed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok, err := parseAuditLine(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			w := tc.want
			check := func(field string, got, want any, set bool) {
				if set && got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("serial", d.Serial, w.Serial, w.Serial != 0)
			check("pid", d.Pid, w.Pid, w.Pid != 0)
			check("uid", d.UID, w.UID, w.UID != "")
			check("comm", d.Comm, w.Comm, w.Comm != "")
			check("exe", d.Exe, w.Exe, w.Exe != "")
			check("arch", d.Arch, w.Arch, w.Arch != "")
			check("nr", d.Nr, w.Nr, w.Nr != 0)
			check("syscall", d.Syscall, w.Syscall, true)
			check("action", d.Action, w.Action, true)
			check("allowed", d.Allowed, w.Allowed, true)
			check("signal", d.Signal, w.Signal, w.Signal != 0)
			if d.Time.IsZero() {
				t.Error("no time")
			}
		})
	}
	if _, _, err := parseAuditLine(`audit: type=1326 audit(1795792700.005:94): pid=x syscall=1 arch=c000003e code=0x0`); err == nil {
		t.Error("a record with a bad pid parsed")
	}
	d, _, _ := parseAuditLine(`audit: type=1326 audit(1795792554.652:32): pid=1 comm="a" exe="/a" arch=c000003e syscall=0 code=0x7ffc0000`)
	if want := time.Unix(1795792554, 652*int64(time.Millisecond)); !d.Time.Equal(want) {
		t.Errorf("time = %v, want %v", d.Time, want)
	}
}

// fakeSources points the readers at testdata and a directory with no
// journal.
func fakeSources(t *testing.T) denialSources {
	return denialSources{
		AuditLog: filepath.Join(t.TempDir(), "no-audit.log"),
		Kmsg:     "testdata/denials/kmsg.txt",
		Proc:     fakeProc(t),
	}
}

func TestReadKmsg(t *testing.T) {
	src := fakeSources(t)
	rl := src.read(context.Background(), time.Time{})
	if len(rl.Denials) != 21 {
		t.Fatalf("%d records, want 21", len(rl.Denials))
	}
	if rl.Suppressed != 41 {
		t.Errorf("suppressed = %d, want 41", rl.Suppressed)
	}
	count := map[string]int{}
	for _, d := range rl.Denials {
		count[d.Syscall+"/"+d.Action]++
		if d.Source != "kmsg" {
			t.Errorf("source %q", d.Source)
		}
	}
	if count["unshare/log"] != 13 || count["unshare/errno"] != 2 || count["mkdir/errno"] != 4 || count["mkdir/kill_thread"] != 2 {
		t.Errorf("records by syscall/action: %v", count)
	}
	for _, s := range rl.Sources {
		if (s.Name == "kmsg") != s.Read {
			t.Errorf("source %+v", s)
		}
	}
	// --since keeps the newer records only.
	since := time.Unix(1795792640, 0)
	if rl := src.read(context.Background(), since); len(rl.Denials) != 4 {
		t.Errorf("since: %d records, want 4", len(rl.Denials))
	}
}

func TestReadSourcesDeduplicates(t *testing.T) {
	src := fakeSources(t)
	src.AuditLog = "testdata/denials/audit.log"
	// A journalctl that prints what `journalctl -k -o cat` prints: the
	// kernel's messages, here the same records the ring buffer holds.
	dir := t.TempDir()
	src.Journalctl = filepath.Join(dir, "journalctl")
	script := "#!/bin/sh\ncut -d';' -f2- " + absPath(t, "testdata/denials/kmsg.txt") + "\n"
	if err := os.WriteFile(src.Journalctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	src.JournalDir = []string{dir}
	if err := os.MkdirAll(filepath.Join(dir, "machine-id"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "machine-id", "system.journal"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rl := src.read(context.Background(), time.Time{})
	// 21 in the ring buffer and the journal; the audit log adds one.
	if len(rl.Denials) != 22 {
		t.Fatalf("%d records, want 22 (deduplicated)", len(rl.Denials))
	}
	for _, s := range rl.Sources {
		want := map[string]int{"audit.log": 4, "journal": 21, "kmsg": 21}[s.Name]
		if !s.Read || s.Records != want {
			t.Errorf("source %+v, want %d records", s, want)
		}
	}
}

func absPath(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fakeProc builds a procfs with: the host's init (pid 1); a container
// whose init is 100 in its own pid namespace, with a child 101; a
// container in the host's pid namespace whose init is 200, with a child
// 201 in the same cgroup; a host process 300; pid 400, started after the
// records. Boot is at 1795780000; the records are at ~1795792554.
func fakeProc(t *testing.T) string {
	t.Helper()
	proc := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(proc, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stat", "cpu  1 2 3\nbtime 1795780000\nprocesses 5\n")
	proc1 := func(pid int, comm, ns, cgroup string, startSec int64) {
		fields := make([]string, 40)
		for i := range fields {
			fields[i] = "0"
		}
		fields[0] = "S"
		fields[19] = fmt.Sprint(startSec * userHZ)
		write(fmt.Sprintf("%d/stat", pid), fmt.Sprintf("%d (%s) %s\n", pid, comm, strings.Join(fields, " ")))
		write(fmt.Sprintf("%d/cgroup", pid), cgroup+"\n")
		if err := os.MkdirAll(filepath.Join(proc, fmt.Sprint(pid), "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(ns, filepath.Join(proc, fmt.Sprint(pid), "ns", "pid")); err != nil {
			t.Fatal(err)
		}
	}
	host := "pid:[4026531836]"
	proc1(1, "init", host, "0::/init.scope", 0)
	proc1(100, "sh", "pid:[4026532001]", "0::/default/web-1", 100)
	proc1(101, "busy box) x", "pid:[4026532001]", "0::/default/web-1", 200) // a comm with ") "
	proc1(200, "agent", host, "0::/default/hostpid", 100)
	proc1(201, "agent", host, "0::/default/hostpid", 300)
	proc1(300, "sshd", host, "0::/system.slice/ssh.service", 50)
	proc1(400, "new", "pid:[4026532001]", "0::/default/web-1", 99999) // after the records
	write("self/loginuid", "4294967295")
	write("sys/kernel/seccomp/actions_logged", "kill_process kill_thread trap errno user_notif trace log\n")
	return proc
}

func stateRecords(t *testing.T, dir string, pids map[string]int, logging bool) []node.Record {
	t.Helper()
	var recs []node.Record
	for id, pid := range pids {
		pf := filepath.Join(dir, id+".pid")
		if err := os.WriteFile(pf, []byte(fmt.Sprint(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		out := &profiles.Outcome{}
		if logging {
			out.Changes = []spec.Change{{Rule: profiles.RuleSeccompComplain, Path: "linux.seccomp", Op: spec.OpSet}}
		}
		recs = append(recs, node.Record{ID: id, Namespace: "default", Result: node.ResultHardened, PidFile: pf, Outcome: out})
	}
	return recs
}

func TestAttributeDenials(t *testing.T) {
	proc := fakeProc(t)
	recs := stateRecords(t, t.TempDir(), map[string]int{"web-1": 100, "hostpid": 200, "gone": 999}, false)
	at := time.Unix(1795792554, 0)
	ds := []denial{{Pid: 100, Time: at}, {Pid: 101, Time: at}, {Pid: 201, Time: at}, {Pid: 300, Time: at}, {Pid: 400, Time: at}, {Pid: 500, Time: at}}
	attributeDenials(ds, recs, proc)
	want := []struct{ container, attribution string }{
		{"default/web-1", "pid namespace"},
		{"default/web-1", "pid namespace"},
		{"default/hostpid", "cgroup"},
		{"", "not a container harden created"},
		{"", "unknown (pid reused)"},
		{"", "unknown (pid gone)"},
	}
	for i, w := range want {
		got := ""
		if ds[i].Container != nil {
			got = ds[i].Container.String()
		}
		if got != w.container || ds[i].Attribution != w.attribution {
			t.Errorf("pid %d: %q (%s), want %q (%s)", ds[i].Pid, got, ds[i].Attribution, w.container, w.attribution)
		}
	}
}

func TestCollectDenialsFilterAndNotes(t *testing.T) {
	src := fakeSources(t)
	dir := t.TempDir()
	// The ring buffer's records name pids 19918 ...; make 19918 the init
	// of a complain-mode container and 26946 a process in it.
	for pid, ns := range map[int]string{19918: "pid:[4026532077]", 26946: "pid:[4026532077]"} {
		p := filepath.Join(src.Proc, fmt.Sprint(pid))
		if err := os.MkdirAll(filepath.Join(p, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(strings.Repeat("0 ", 40))
		fields[19] = "100"
		os.WriteFile(filepath.Join(p, "stat"), []byte(fmt.Sprintf("%d (busybox) %s\n", pid, strings.Join(fields, " "))), 0o644)
		os.WriteFile(filepath.Join(p, "cgroup"), []byte("0::/default/c1\n"), 0o644)
		os.Symlink(ns, filepath.Join(p, "ns", "pid"))
	}
	recs := stateRecords(t, dir, map[string]int{"c1": 19918, "other": 100}, true)

	rep, err := collectDenials(context.Background(), src, recs, time.Time{}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Denials) != 2 {
		t.Fatalf("%d records for c1, want 2: %+v", len(rep.Denials), rep.Denials)
	}
	if d := rep.Denials[0]; d.Action != "log" || !strings.Contains(d.Note, "complain mode") {
		t.Errorf("first: %+v", d)
	}
	if d := rep.Denials[1]; d.Action != "errno" || d.Syscall != "unshare" {
		t.Errorf("second: %+v", d)
	}
	if rep.Unattributed != 19 {
		t.Errorf("unattributed = %d, want 19", rep.Unattributed)
	}
	if _, err := collectDenials(context.Background(), src, recs, time.Time{}, "nope"); err == nil || !strings.Contains(err.Error(), "no container") {
		t.Errorf("unknown container: %v", err)
	}
	if _, err := collectDenials(context.Background(), src, append(recs, node.Record{ID: "c10", Namespace: "default"}), time.Time{}, "c1"); err == nil || !strings.Contains(err.Error(), "matches 2") {
		t.Errorf("ambiguous container: %v", err)
	}
}

func TestDenialHints(t *testing.T) {
	nothing := &readLog{Sources: []sourceStatus{{Name: "kmsg", Note: "permission denied"}}}
	read := &readLog{Sources: []sourceStatus{{Name: "kmsg", Read: true}}}
	for _, tc := range []struct {
		name    string
		k       kernelLogging
		rl      *readLog
		logging containerLogging
		want    []string
	}{
		{"no audit", kernelLogging{}, read, containerLogging{}, []string{"CONFIG_AUDIT"}},
		{"errno not logged", kernelLogging{Audit: true, ActionsLogged: []string{"kill_process", "log"}}, read, containerLogging{}, []string{`lacks "errno"`, `actions_logged="kill_process log errno"`}},
		{"log not logged", kernelLogging{Audit: true, ActionsLogged: []string{"errno"}}, read, containerLogging{}, []string{`lacks "log"`, "complain"}},
		{"no container logs", kernelLogging{Audit: true, ActionsLogged: []string{"errno", "log"}}, read, containerLogging{Containers: 3}, []string{"none of the 3 containers", "logDenials: true"}},
		{"nothing readable", kernelLogging{Audit: true, ActionsLogged: []string{"errno", "log"}}, nothing, containerLogging{}, []string{"no source could be read", "auditd"}},
		{"rate limited", kernelLogging{Audit: true}, &readLog{Sources: read.Sources, Suppressed: 41}, containerLogging{}, []string{"dropped 41"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(denialHints(tc.k, tc.rl, tc.logging), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("hints lack %q:\n%s", w, got)
				}
			}
		})
	}
	if h := denialHints(kernelLogging{Audit: true, ActionsLogged: []string{"errno", "log"}}, read, containerLogging{Containers: 1, Logged: 1}); len(h) != 0 {
		t.Errorf("hints on a host that logs: %v", h)
	}
}

// TestDenialsCommand runs the binary against this host's real sources.
func TestDenialsCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("StateDir = %q\nDecisionLog = \"off\"\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := hardenctl(t, "", "denials", "--config", cfg, "--since", "1s")
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	r.has(t, "stdout", "kmsg", "/dev/kmsg", "audit.log", "journal")
	r = hardenctl(t, "", "denials", "--config", cfg, "--json", "--since", "1s")
	r.has(t, "stdout", `"sources"`, `"denials"`)
	hardenctl(t, "", "denials", "--config", cfg, "--since", "soon").want(t, 2)
	hardenctl(t, "", "denials", "--config", cfg, "a", "b").want(t, 2)
	r = hardenctl(t, "", "denials", "--config", cfg, "web-1")
	r.want(t, 1)
	r.has(t, "stderr", "no container \"web-1\"")
}
