package security

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// kernelSurface are the vectors that reach kernel code or kernel-wide
// state, or lift the limits that protect the node: restricted and strict
// must leave none of them open on runc and crun. Each is named in
// docs/policy.md as stopped by a control those profiles set (seccomp,
// capabilities, no_new_privileges, masked and read-only paths, resource
// ceilings, host devices).
var kernelSurface = []string{
	"mount.tmpfs", "mount.bind", "mount.proc",
	"unshare.user", "unshare.mnt", "unshare.net",
	"clone.user", "clone.mnt", "clone.net", "clone3.ns", "setns.pid1", "chroot", "personality.aslr",
	"keyctl.session", "keyctl.add_key", "bpf.map_create", "perf.event_open", "userfaultfd", "io_uring.setup",
	"socket.packet", "socket.raw", "socket.alg", "socket.vsock",
	"handle.open_by_handle_at", "module.init", "module.finit", "mknod.block", "syslog.read",
	"write.proc_sys", "write.sysrq", "write.sys_kernel", "write.sys_module",
	"read.kcore", "read.keys", "read.timer_list", "read.sched_debug",
	"dev.kmsg_mem", "dev.host", "cgroup.release_agent", "cgroup.writable",
	"caps.beyond_restricted", "nnp.off", "seccomp.off",
	"limit.pids", "limit.memory", "fork.bomb",
}

// mayBeOpen lists, per built-in profile, the vectors the profile leaves
// open on purpose, each with its reason. On runc and crun every other
// vector must be blocked (or n/a where the host kernel lacks the feature).
// docs/security.md prints these lists.
var mayBeOpen = map[string]map[string]string{
	"baseline": {
		"uid.root":               "baseline does not require a non-root user (`runAsNonRoot: false`): images run as their `USER`, which is root for most images",
		"rootfs.writable":        "the root filesystem stays writable below strict: many images write into their own filesystem",
		"caps.beyond_restricted": "baseline keeps Docker's default capabilities minus NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE and SETFCAP: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, SETGID, SETUID, SETPCAP and KILL, which ordinary images use (switching to their service user, fixing file ownership)",
		"limit.memory":           "baseline sets no memory ceiling (only pids): a memory limit needs a value that fits the workload",
		"ptrace.attach":          "runtime-default seccomp allows ptrace (kernel >= 4.8 closed the seccomp bypass through it): debuggers and crash reporters use it, and the pid namespace keeps it to the container's own processes",
		"ptrace.vm_readv":        "as ptrace.attach: runtime-default allows process_vm_readv, confined to the container's own processes by the pid namespace",
	},
	"restricted": {
		"rootfs.writable": "restricted keeps the root filesystem writable (only strict makes it read-only); the process is not root, so it writes only where the image lets its user write",
		"ptrace.attach":   "restricted uses runtime-default seccomp, which allows ptrace of the container's own processes (same uid); strict removes it",
		"ptrace.vm_readv": "as ptrace.attach; strict removes process_vm_readv",
	},
	"strict": {},
}

// assertProfile checks a harden column's findings against its profile:
// every open vector must be allowed for the profile, and for restricted
// and strict no kernel-surface vector may be open.
func assertProfile(t *testing.T, c config, got map[string]finding) {
	t.Helper()
	if c.backend == "runsc" {
		assertRunsc(t, c, got)
		return
	}
	allowed := mayBeOpen[c.profile]
	for _, v := range inst.vectors {
		f := got[v.ID]
		if f.Result != "open" {
			continue
		}
		if c.profile != "baseline" && slices.Contains(kernelSurface, v.ID) {
			t.Errorf("%s: kernel-surface vector %s is open (expected to be stopped by %s): %s", c.name, v.ID, v.Control(), f.Detail)
			continue
		}
		if _, ok := allowed[v.ID]; !ok {
			t.Errorf("%s: %s is open, and %s does not allow it (%s; expected to be stopped by %s): %s", c.name, v.ID, c.profile, v.Desc, v.Control(), f.Detail)
		}
	}
	// An allowance that no longer applies is not a failure (the profile got
	// stricter), but the list should say what is true.
	for id := range allowed {
		if f, ok := got[id]; ok && f.Result != "open" {
			t.Logf("%s: %s is allowed to be open under %s but is %s (%s); consider removing the allowance", c.name, id, c.profile, f.Result, f.Detail)
		}
	}
}

// allowance is a vector a runsc column may leave open: why, and the
// detail the probe must report for the allowance to apply, so that only
// the harmless case is allowed.
type allowance struct {
	why    string
	detail *regexp.Regexp
}

// runscMayBeOpen are vectors gVisor answers in its own kernel (the Sentry)
// in a way that looks open to the probe but reaches nothing on the host.
// Every other vector must be blocked under runsc as under runc, apart from
// the profile's own allowances.
var runscMayBeOpen = map[string]allowance{
	"mknod.block": {
		why: "gVisor 2022-12-19 lets a process create device nodes in the Sentry's own filesystem without CAP_MKNOD; " +
			"opening one fails with ENXIO: the Sentry has no block devices and no path to the host's",
		detail: regexp.MustCompile(`; open: ENXIO$`),
	},
	"dev.host": {
		why:    "runsc gives every container /dev/fuse and /dev/net/tun implemented in the Sentry; they are not host devices",
		detail: regexp.MustCompile(`^device nodes beyond the standard set: /dev/fuse \(10:229\), /dev/net/tun \(10:200\)$`),
	},
}

// assertRunsc checks a runsc column: the profile's allowances plus what
// gVisor serves in its own kernel.
func assertRunsc(t *testing.T, c config, got map[string]finding) {
	t.Helper()
	allowed := mayBeOpen[c.profile]
	for _, v := range inst.vectors {
		f := got[v.ID]
		if f.Result != "open" {
			continue
		}
		if _, ok := allowed[v.ID]; ok {
			continue
		}
		if a, ok := runscMayBeOpen[v.ID]; ok {
			if !a.detail.MatchString(f.Detail) {
				t.Errorf("%s: %s is open in a way gVisor's allowance does not cover (want detail matching %q): %s", c.name, v.ID, a.detail, f.Detail)
			}
			continue
		}
		t.Errorf("%s: %s is open, and neither %s nor gVisor's allowances cover it (%s): %s", c.name, v.ID, c.profile, v.Desc, f.Detail)
	}
}

// assertEngineDefault checks the facts the comparison columns rest on, so
// that docs/security.md's description of the engines' defaults stays true.
func assertEngineDefault(t *testing.T, c config, got map[string]finding) {
	t.Helper()
	want := map[string]string{}
	switch c.engine {
	case engineCtr:
		// `ctr run` sets no seccomp filter and no pids limit; containerd's
		// default spec does set no_new_privileges.
		want = map[string]string{"seccomp.off": "open", "nnp.off": "blocked", "uid.root": "open", "limit.pids": "open"}
	case engineCRI:
		// CRI without the kubelet's defaults: no seccomp field means unconfined.
		want = map[string]string{"seccomp.off": "open", "nnp.off": "open", "uid.root": "open"}
	case engineDocker:
		// Docker applies its default seccomp profile, not no_new_privileges.
		want = map[string]string{"seccomp.off": "blocked", "nnp.off": "open", "uid.root": "open"}
	}
	for id, res := range want {
		if f := got[id]; f.Result != res {
			t.Errorf("%s: %s is %s (%s), want %s: the engine's defaults changed; update docs/security.md", c.name, id, f.Result, f.Detail, res)
		}
	}
}

// TestAllowances checks the allowance lists themselves: they name real
// vectors, restricted and strict allow no kernel-surface vector, and a
// stricter profile allows no more than the one it extends.
func TestAllowances(t *testing.T) {
	in := requireSuite(t)
	known := map[string]bool{}
	for _, v := range in.vectors {
		known[v.ID] = true
	}
	for _, id := range kernelSurface {
		if !known[id] {
			t.Errorf("kernelSurface names %s, which the probe does not have", id)
		}
	}
	for p, m := range mayBeOpen {
		for id, why := range m {
			if !known[id] {
				t.Errorf("mayBeOpen[%s] names %s, which the probe does not have", p, id)
			}
			if strings.TrimSpace(why) == "" {
				t.Errorf("mayBeOpen[%s][%s] has no reason", p, id)
			}
			if p != "baseline" && slices.Contains(kernelSurface, id) {
				t.Errorf("mayBeOpen[%s] allows kernel-surface vector %s", p, id)
			}
		}
	}
	for id, a := range runscMayBeOpen {
		if !known[id] || strings.TrimSpace(a.why) == "" || a.detail == nil {
			t.Errorf("runscMayBeOpen[%s]: unknown vector or no reason", id)
		}
	}
	for _, pair := range [][2]string{{"restricted", "baseline"}, {"strict", "restricted"}} {
		for id := range mayBeOpen[pair[0]] {
			if _, ok := mayBeOpen[pair[1]][id]; !ok {
				t.Errorf("%s allows %s, which %s (the profile it extends) does not", pair[0], id, pair[1])
			}
		}
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
