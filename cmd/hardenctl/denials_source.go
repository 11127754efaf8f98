package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// denialSources says where the host keeps seccomp records. The fields are
// paths so tests can point them at recorded files.
type denialSources struct {
	AuditLog   string   // auditd's log: present when auditd runs
	Journalctl string   // systemd's journal reader, "" when not installed
	JournalDir []string // where journald keeps its files (persistent, volatile)
	Kmsg       string   // the kernel's ring buffer
	Proc       string   // procfs, for the kernel's audit and seccomp settings
}

func hostDenialSources() denialSources {
	jc, _ := exec.LookPath("journalctl")
	return denialSources{
		AuditLog: "/var/log/audit/audit.log", Journalctl: jc, JournalDir: []string{"/var/log/journal", "/run/log/journal"},
		Kmsg: "/dev/kmsg", Proc: "/proc",
	}
}

// sourceStatus is what one source gave.
type sourceStatus struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Read    bool   `json:"read"`
	Records int    `json:"records"`
	Note    string `json:"note,omitempty"`
}

// readLog is what the sources hold: decoded records (deduplicated: the same
// record reaches the journal and the ring buffer), and what the kernel says
// it dropped.
type readLog struct {
	Sources    []sourceStatus
	Denials    []denial
	Suppressed int // records printk's rate limit dropped (kmsg)
	Lost       int // audit_lost, the kernel's own count of dropped messages
	Malformed  []string
}

// read collects seccomp records newer than since (zero: all), from every
// source the host has: auditd's log, the journal's kernel messages, the
// kernel ring buffer. A record seen in several is kept once. Failing
// sources are reported, not fatal: the caller decides.
func (src denialSources) read(ctx context.Context, since time.Time) *readLog {
	out := &readLog{}
	seen := map[string]bool{}
	add := func(st *sourceStatus, line string) {
		d, ok, err := parseAuditLine(line)
		if err != nil {
			out.Malformed = append(out.Malformed, err.Error())
			return
		}
		if !ok || (!since.IsZero() && d.Time.Before(since)) {
			return
		}
		key := strconv.FormatInt(d.Time.UnixMilli(), 10) + ":" + strconv.FormatUint(d.Serial, 10)
		st.Records++
		if seen[key] {
			return
		}
		seen[key] = true
		d.Source = st.Name
		out.Denials = append(out.Denials, d)
	}

	// auditd's log, when auditd runs: it then receives every record and the
	// kernel prints none.
	st := sourceStatus{Name: "audit.log", Path: src.AuditLog}
	if f, err := os.Open(src.AuditLog); err != nil {
		st.Note = openNote(err, "auditd is not running (or logs elsewhere)")
	} else {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "type=SECCOMP") {
				add(&st, line)
			}
		}
		st.Read = sc.Err() == nil
		if err := sc.Err(); err != nil {
			st.Note = "read: " + err.Error()
		}
		f.Close()
	}
	out.Sources = append(out.Sources, st)

	// The journal keeps the kernel's messages across ring-buffer wraps.
	st = sourceStatus{Name: "journal", Path: "journalctl -k"}
	if src.Journalctl == "" {
		st.Note = "journalctl is not installed"
	} else if !hasJournalFiles(src.JournalDir) {
		// journalctl then prints nothing and exits 0, like an empty log.
		st.Note = "no journal files in " + strings.Join(src.JournalDir, " or ") + " (systemd-journald is not running)"
	} else {
		// -k: this boot's kernel messages; pids from other boots mean
		// nothing. No --grep: journalctl may be built without PCRE.
		args := []string{"-k", "-q", "-o", "cat", "--no-pager"}
		if !since.IsZero() {
			args = append(args, "--since", "@"+strconv.FormatInt(since.Unix(), 10))
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(cctx, src.Journalctl, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		msg := strings.TrimSpace(stderr.String())
		switch {
		case strings.Contains(msg, "No journal files"):
			st.Note = "no journal files (systemd-journald is not running)"
		case err != nil && stdout.Len() == 0 && msg != "" && !strings.Contains(msg, "No entries"):
			st.Note = "journalctl: " + firstLine(msg)
		default:
			st.Read = true
			for _, line := range strings.Split(stdout.String(), "\n") {
				if strings.Contains(line, "type=1326") {
					add(&st, line)
				}
			}
		}
	}
	out.Sources = append(out.Sources, st)

	// The kernel's ring buffer: what the kernel printed since boot, as far
	// as the buffer reaches back. Without auditd, this is where records go.
	st = sourceStatus{Name: "kmsg", Path: src.Kmsg}
	recs, err := readKmsg(src.Kmsg)
	if err != nil {
		st.Note = openNote(err, "")
		if errors.Is(err, fs.ErrPermission) {
			st.Note += " (kernel.dmesg_restrict=1 needs CAP_SYSLOG: run as root)"
		}
	} else {
		st.Read = true
		boot := bootTime(src.Proc)
		for _, r := range recs {
			if m := suppressedRE.FindStringSubmatch(r.Text); m != nil {
				at := boot.Add(time.Duration(r.Usec) * time.Microsecond)
				if since.IsZero() || !at.Before(since) {
					n, _ := strconv.Atoi(m[1])
					out.Suppressed += n
				}
				continue
			}
			if m := lostRE.FindStringSubmatch(r.Text); m != nil {
				n, _ := strconv.Atoi(m[1])
				out.Lost = max(out.Lost, n)
				continue
			}
			add(&st, r.Text)
		}
	}
	out.Sources = append(out.Sources, st)
	return out
}

// readKmsg reads every record /dev/kmsg still holds, without blocking:
// opened O_NONBLOCK, each read returns one record, EAGAIN means the end, and
// EPIPE means the record was overwritten while reading (skip it).
func readKmsg(path string) ([]kmsgRecord, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var b strings.Builder
	buf := make([]byte, 16<<10) // a record is at most 8 KiB (PRINTKRB_RECORD_MAX ~1 KiB text + dict)
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return parseKmsg(b.String()), nil
		case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			// A regular file (tests): the end.
			return parseKmsg(b.String()), nil
		}
		b.Write(buf[:n]) // a /dev/kmsg record ends with a newline
	}
}

// bootTime is when the machine booted, from /proc/stat's btime (whole
// seconds), to place ring-buffer timestamps on the wall clock.
func bootTime(proc string) time.Time {
	b, err := os.ReadFile(proc + "/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(s, 0)
		}
	}
	return time.Time{}
}

func hasJournalFiles(dirs []string) bool {
	for _, d := range dirs {
		if m, _ := filepath.Glob(filepath.Join(d, "*", "*.journal*")); len(m) > 0 {
			return true
		}
	}
	return false
}

func openNote(err error, absent string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist) && absent != "":
		return "absent: " + absent
	case errors.Is(err, fs.ErrNotExist):
		return "absent"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// kernelLogging is what the kernel is set to log, for the hints.
type kernelLogging struct {
	Audit         bool     // CONFIG_AUDIT: /proc/self/loginuid exists only then
	ActionsLogged []string // /proc/sys/kernel/seccomp/actions_logged; nil if unreadable
}

func readKernelLogging(proc string) kernelLogging {
	var k kernelLogging
	_, err := os.Stat(proc + "/self/loginuid")
	k.Audit = err == nil
	if b, err := os.ReadFile(proc + "/sys/kernel/seccomp/actions_logged"); err == nil {
		k.ActionsLogged = strings.Fields(string(b))
		if k.ActionsLogged == nil {
			k.ActionsLogged = []string{}
		}
	}
	return k
}

// denialHints says why records may be missing and what turns them on.
// logging lists what the containers harden created ask the kernel to log.
func denialHints(k kernelLogging, rl *readLog, logging containerLogging) []string {
	var hints []string
	if !k.Audit {
		hints = append(hints, "this kernel has no audit support (CONFIG_AUDIT is off: /proc/self/loginuid is missing), so seccomp logs nothing anywhere on this host; "+
			"use a kernel built with CONFIG_AUDIT=y (every major distribution's is)")
	}
	if k.ActionsLogged != nil {
		has := func(a string) bool {
			for _, x := range k.ActionsLogged {
				if x == a {
					return true
				}
			}
			return false
		}
		var missing []string
		if !has("log") {
			missing = append(missing, "log")
			hints = append(hints, "/proc/sys/kernel/seccomp/actions_logged lacks \"log\": complain mode's records (SCMP_ACT_LOG) are not written")
		}
		if !has("errno") {
			missing = append(missing, "errno")
			hints = append(hints, "/proc/sys/kernel/seccomp/actions_logged lacks \"errno\": denials of harden's profiles (SCMP_ACT_ERRNO) are not written even with logDenials")
		}
		if len(missing) > 0 {
			hints = append(hints, "to add them: sysctl -w kernel.seccomp.actions_logged=\""+strings.Join(append(k.ActionsLogged, missing...), " ")+"\"")
		}
	}
	if logging.Containers > 0 && logging.Logged == 0 {
		hints = append(hints, fmt.Sprintf("none of the %d containers harden created logs its denials: without seccomp.logDenials (or complain) the kernel logs only kill and SCMP_ACT_LOG actions, "+
			"and harden's filters deny with errno; set seccomp: {logDenials: true} in the policy's profile (runc >= 1.2 or crun; runc 1.1 refuses seccomp flags)", logging.Containers))
	}
	read := false
	for _, s := range rl.Sources {
		read = read || s.Read
	}
	if !read {
		hints = append(hints, "no source could be read: run hardenctl as root (the kernel ring buffer needs CAP_SYSLOG), or run auditd (records in /var/log/audit/audit.log) or systemd-journald")
	}
	if rl.Suppressed > 0 {
		hints = append(hints, fmt.Sprintf("the kernel dropped %d audit messages to printk's rate limit (10 per 5 s by default) because no audit daemon receives them: run auditd to keep every record", rl.Suppressed))
	}
	if rl.Lost > 0 {
		hints = append(hints, fmt.Sprintf("the audit subsystem reports %d lost messages (audit_lost): raise the backlog (auditctl -b) or run auditd", rl.Lost))
	}
	return hints
}

// containerLogging counts the containers harden created and those whose
// filter logs (seccomp.log-denials or seccomp.complain in the record).
type containerLogging struct {
	Containers, Logged int
}
