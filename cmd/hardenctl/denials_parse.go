package main

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// auditSeccomp is the audit record type the kernel writes for a seccomp
// decision it logs (AUDIT_SECCOMP, include/uapi/linux/audit.h). The kernel
// writes one per logged syscall from seccomp_log() (kernel/seccomp.c), with
// the fields audit_seccomp() formats (kernel/auditsc.c):
//
//	auid=4294967295 uid=0 gid=0 ses=4294967295 [subj=...] pid=19918 comm="busybox"
//	exe="/bin/busybox" sig=0 arch=c000003e syscall=272 compat=0 ip=0x4815c7 code=0x7ffc0000
const auditSeccomp = 1326

// denial is one seccomp record, decoded.
type denial struct {
	Time    time.Time `json:"time"`
	Serial  uint64    `json:"serial"` // the audit serial: with Time, unique per record
	Source  string    `json:"source"`
	Pid     int       `json:"pid"` // in the host's pid namespace
	UID     string    `json:"uid,omitempty"`
	Comm    string    `json:"comm"`
	Exe     string    `json:"exe"` // as the process sees it: inside the container's root
	Arch    string    `json:"arch"`
	Nr      int64     `json:"syscallNr"`
	Syscall string    `json:"syscall"`
	// Action is the filter's verdict, named as in
	// /proc/sys/kernel/seccomp/actions_logged: kill_process, kill_thread,
	// trap, errno, user_notif, trace, log.
	Action  string `json:"action"`
	Allowed bool   `json:"allowed"` // the syscall ran (log)
	Signal  int    `json:"signal,omitempty"`
	// Container is the harden container the process belonged to, when
	// that can still be told (attributeDenials).
	Container   *containerRef `json:"container,omitempty"`
	Attribution string        `json:"attribution"`
	Note        string        `json:"note,omitempty"`
}

// containerRef names a container harden created.
type containerRef struct {
	Namespace string `json:"namespace,omitempty"`
	ID        string `json:"id"`
}

func (c *containerRef) String() string {
	if c.Namespace == "" || c.Namespace == "_" {
		return c.ID
	}
	return c.Namespace + "/" + c.ID
}

// auditStamp finds "audit(1795792554.652:32):" and the record type before
// it: "type=1326" (printk, journal) or "type=SECCOMP" (auditd's log).
var auditStamp = regexp.MustCompile(`type=(1326|SECCOMP) (?:msg=)?audit\((\d+)\.(\d{3}):(\d+)\):`)

// parseAuditLine decodes one seccomp audit record from any of the forms the
// host keeps it in: the kernel's printk line ("audit: type=1326
// audit(...): ..." in /dev/kmsg and the journal) or auditd's log line
// ("type=SECCOMP msg=audit(...): ...", optionally followed by auditd's
// enriched fields after a 0x1d separator). ok is false for anything else.
func parseAuditLine(line string) (d denial, ok bool, err error) {
	m := auditStamp.FindStringSubmatchIndex(line)
	if m == nil {
		return d, false, nil
	}
	sec, _ := strconv.ParseInt(line[m[4]:m[5]], 10, 64)
	ms, _ := strconv.ParseInt(line[m[6]:m[7]], 10, 64)
	d.Time = time.Unix(sec, ms*int64(time.Millisecond))
	d.Serial, _ = strconv.ParseUint(line[m[8]:m[9]], 10, 64)
	body := line[m[1]:]
	if i := strings.IndexByte(body, 0x1d); i >= 0 {
		body = body[:i] // auditd's interpreted copies (AUID="unset" ...)
	}
	f := auditFields(body)
	if d.Pid, err = strconv.Atoi(f["pid"]); err != nil {
		return d, false, fmt.Errorf("seccomp record %d: pid %q", d.Serial, f["pid"])
	}
	d.UID = f["uid"]
	d.Comm, d.Exe = untrusted(f["comm"]), untrusted(f["exe"])
	d.Signal, _ = strconv.Atoi(f["sig"])
	if d.Nr, err = strconv.ParseInt(f["syscall"], 10, 64); err != nil {
		return d, false, fmt.Errorf("seccomp record %d: syscall %q", d.Serial, f["syscall"])
	}
	arch, err := strconv.ParseUint(f["arch"], 16, 32)
	if err != nil {
		return d, false, fmt.Errorf("seccomp record %d: arch %q", d.Serial, f["arch"])
	}
	d.Arch, d.Syscall = syscallName(uint32(arch), d.Nr)
	code, err := strconv.ParseUint(strings.TrimPrefix(f["code"], "0x"), 16, 32)
	if err != nil {
		return d, false, fmt.Errorf("seccomp record %d: code %q", d.Serial, f["code"])
	}
	d.Action, d.Allowed = seccompAction(uint32(code))
	return d, true, nil
}

// auditFields splits "k=v k2="quoted value" ..." into a map.
func auditFields(s string) map[string]string {
	out := map[string]string{}
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		k := s[:eq]
		s = s[eq+1:]
		var v string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				v, s = s[1:], ""
			} else {
				v, s = s[:end+2], s[end+2:]
			}
		} else if sp := strings.IndexByte(s, ' '); sp >= 0 {
			v, s = s[:sp], s[sp:]
		} else {
			v, s = s, ""
		}
		out[k] = v
	}
	return out
}

// untrusted decodes a string audit_log_untrustedstring() wrote: quoted
// when harmless, else hex (a comm with a space or a quote in it).
func untrusted(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	if v == "(null)" {
		return v
	}
	if b, err := hex.DecodeString(v); err == nil {
		return string(b)
	}
	return v
}

// seccompAction names the action in a record's code: the filter's return
// value with its data bits cleared (SECCOMP_RET_ACTION_FULL), so an errno
// record does not say which errno.
func seccompAction(code uint32) (name string, allowed bool) {
	switch code & 0xffff0000 {
	case 0x80000000:
		return "kill_process", false
	case 0x00000000:
		return "kill_thread", false
	case 0x00030000:
		return "trap", false
	case 0x00050000:
		return "errno", false
	case 0x7fc00000:
		return "user_notif", false
	case 0x7ff00000:
		return "trace", false
	case 0x7ffc0000:
		return "log", true
	case 0x7fff0000:
		return "allow", true
	}
	return fmt.Sprintf("0x%x", code), false
}

// auditArches maps the AUDIT_ARCH_* values records carry to libseccomp's
// architectures.
var auditArches = map[uint32]libseccomp.ScmpArch{
	0xc000003e: libseccomp.ArchAMD64,
	0x40000003: libseccomp.ArchX86,
	0xc00000b7: libseccomp.ArchARM64,
	0x40000028: libseccomp.ArchARM,
	0xc0000015: libseccomp.ArchPPC64LE,
	0x80000015: libseccomp.ArchPPC64,
	0x00000014: libseccomp.ArchPPC,
	0x80000016: libseccomp.ArchS390X,
	0x00000016: libseccomp.ArchS390,
	0xc00000f3: libseccomp.ArchRISCV64,
}

// x32SyscallBit marks x32 syscalls, which run under AUDIT_ARCH_X86_64.
const x32SyscallBit = 0x40000000

// syscallName resolves a syscall number with libseccomp, the table runc's
// filters are compiled from.
func syscallName(auditArch uint32, nr int64) (arch, name string) {
	a, ok := auditArches[auditArch]
	if ok && a == libseccomp.ArchAMD64 && nr&x32SyscallBit != 0 {
		a = libseccomp.ArchX32
	}
	if !ok {
		return fmt.Sprintf("0x%x", auditArch), fmt.Sprintf("syscall %d", nr)
	}
	n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(a)
	if err != nil {
		return a.String(), fmt.Sprintf("syscall %d", nr)
	}
	return a.String(), n
}

// kmsgRecord is one /dev/kmsg record: "PRI,SEQ,USEC,FLAGS[,..];TEXT",
// then dictionary lines that start with a space.
type kmsgRecord struct {
	Seq  uint64
	Usec uint64 // since boot
	Text string
}

// parseKmsg splits /dev/kmsg output (one record per read, or a dump of
// them one per line) into records.
func parseKmsg(data string) []kmsgRecord {
	var out []kmsgRecord
	for _, line := range strings.Split(data, "\n") {
		if line == "" || line[0] == ' ' {
			continue // a dictionary line (SUBSYSTEM=, DEVICE=)
		}
		prefix, text, ok := strings.Cut(line, ";")
		if !ok {
			continue
		}
		parts := strings.Split(prefix, ",")
		if len(parts) < 3 {
			continue
		}
		var r kmsgRecord
		r.Seq, _ = strconv.ParseUint(parts[1], 10, 64)
		r.Usec, _ = strconv.ParseUint(parts[2], 10, 64)
		r.Text = text
		out = append(out, r)
	}
	return out
}

// suppressedRE is the kernel's note that printk's rate limit dropped audit
// messages: without an audit daemon, kauditd prints each record through
// printk_ratelimit() (kernel/audit.c kauditd_printk_skb), 10 per 5 seconds
// by default (kernel.printk_ratelimit, kernel.printk_ratelimit_burst).
var suppressedRE = regexp.MustCompile(`^kauditd_printk_skb: (\d+) callbacks suppressed`)

// lostRE is audit's own count of messages it could not queue.
var lostRE = regexp.MustCompile(`audit: audit_lost=(\d+)`)
