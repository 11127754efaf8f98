package profiles

import (
	"github.com/harden-dev/harden/spec"
)

// Built-in profile names.
const (
	Baseline   = "baseline"
	Restricted = "restricted"
	Strict     = "strict"
)

// BaselineCapabilities is the capability set CRI-O has shipped as its default
// for years: Docker's default minus NET_RAW (raw sockets, ARP/ICMP spoofing),
// MKNOD (device nodes), SYS_CHROOT, AUDIT_WRITE and SETFCAP (file
// capabilities, a user-namespace escalation step).
var BaselineCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL",
}

// SafeSysctls are the namespaced sysctls Kubernetes Pod Security "baseline"
// allows (pod-security-admission policy/check_sysctls.go).
var SafeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

// DangerousHostPaths are host paths whose bind mount hands the container the
// node: engine and kubelet sockets and state, the host root, /proc, /sys,
// /dev, /etc and boot files. Engines' own per-container files (CRI's
// /etc/hosts under /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes,
// kubelet's pod volumes) live below these state dirs and stay allowed, which
// is why the state dirs are denied exactly, not as subtrees.
var DangerousHostPaths = []spec.HostPath{
	{Path: "/"},
	{Path: "/proc", Subtree: true},
	{Path: "/sys", Subtree: true},
	{Path: "/dev", Subtree: true},
	{Path: "/etc"},
	{Path: "/etc/kubernetes", Subtree: true},
	{Path: "/etc/containerd", Subtree: true},
	{Path: "/etc/docker", Subtree: true},
	{Path: "/etc/harden", Subtree: true},
	{Path: "/etc/shadow"},
	{Path: "/etc/gshadow"},
	{Path: "/etc/sudoers"},
	{Path: "/etc/sudoers.d", Subtree: true},
	{Path: "/etc/crontab"},
	{Path: "/etc/cron.d", Subtree: true},
	{Path: "/etc/cron.hourly", Subtree: true},
	{Path: "/etc/cron.daily", Subtree: true},
	{Path: "/etc/cron.weekly", Subtree: true},
	{Path: "/etc/cron.monthly", Subtree: true},
	{Path: "/etc/passwd"},
	{Path: "/etc/group"},
	{Path: "/etc/systemd", Subtree: true},
	{Path: "/etc/ssh", Subtree: true},
	{Path: "/etc/pam.d", Subtree: true},
	{Path: "/etc/ld.so.preload"},
	{Path: "/boot", Subtree: true},
	{Path: "/root", Subtree: true},
	{Path: "/home"},
	{Path: "/bin", Subtree: true},
	{Path: "/sbin", Subtree: true},
	{Path: "/lib", Subtree: true},
	{Path: "/lib64", Subtree: true},
	{Path: "/usr"},
	{Path: "/usr/bin", Subtree: true},
	{Path: "/usr/sbin", Subtree: true},
	{Path: "/usr/lib", Subtree: true},
	{Path: "/usr/local/bin", Subtree: true},
	{Path: "/usr/local/sbin", Subtree: true},
	{Path: "/var"},
	{Path: "/var/lib"},
	{Path: "/run"},
	{Path: "/run/containerd"},
	{Path: "/run/containerd/containerd.sock"},
	{Path: "/run/containerd/containerd.sock.ttrpc"},
	{Path: "/run/containerd/s", Subtree: true},                             // shim sockets
	{Path: "/run/containerd/io.containerd.runtime.v2.task", Subtree: true}, // every container's bundle
	{Path: "/run/docker"},
	{Path: "/run/docker.sock"},
	{Path: "/run/crio", Subtree: true},
	{Path: "/run/podman", Subtree: true},
	{Path: "/run/dbus", Subtree: true},
	{Path: "/run/systemd", Subtree: true},
	{Path: "/var/lib/containerd"},
	{Path: "/var/lib/docker"},
	{Path: "/var/lib/kubelet"},
	{Path: "/var/lib/kubelet/pods"},
	{Path: "/var/lib/etcd", Subtree: true},
	{Path: "/var/lib/kubelet/pki", Subtree: true},
	{Path: "/var/lib/kubelet/pod-resources", Subtree: true},
	{Path: "/var/lib/kubelet/device-plugins", Subtree: true},
	{Path: "/var/log"},
}

func ptr[T any](v T) *T { return &v }

// builtins returns fresh copies of the built-in profiles; user profiles
// extend them.
func builtins() map[string]Profile {
	baseline := Profile{
		Name:                Baseline,
		Description:         "Kubernetes Pod Security baseline, enforced at the runtime; works with ordinary images",
		AllowPrivileged:     ptr(false),
		AllowHostNamespaces: []string{},
		Capabilities:        &Capabilities{Allow: append([]string(nil), BaselineCapabilities...)},
		NoNewPrivileges:     ptr(true),
		RunAsNonRoot:        ptr(false),
		ReadOnlyRootfs:      ptr(false),
		ScratchDirs:         []string{},
		MaskedPaths:         []string{},
		ReadonlyPaths:       []string{},
		DenyHostPaths:       append([]spec.HostPath(nil), DangerousHostPaths...),
		AllowHostPaths:      []spec.HostPath{},
		AllowUnconfinedLSM:  ptr(false),
		AllowSysctls:        append([]string(nil), SafeSysctls...),
		AllowDevices:        []string{},
		Seccomp:             &Seccomp{Profile: SeccompRuntimeDefault, Complain: ptr(false), LogDenials: ptr(false)},
		AppArmor:            ptr(""),
		SELinux:             &spec.SELinuxLabel{},
		Resources:           &Resources{Pids: ptr(int64(4096)), OnExceed: string(spec.Lower)},
	}
	restricted := merge(baseline, Profile{
		Name:         Restricted,
		Description:  "Kubernetes Pod Security restricted, enforced at the runtime: no capabilities but NET_BIND_SERVICE, non-root, memory and pids ceilings",
		Capabilities: &Capabilities{Allow: []string{"CAP_NET_BIND_SERVICE"}},
		RunAsNonRoot: ptr(true),
		Resources:    &Resources{Memory: "4Gi", Pids: ptr(int64(1024)), OnExceed: string(spec.Lower)},
	})
	strict := merge(restricted, Profile{
		Name:           Strict,
		Description:    "restricted plus a read-only rootfs, a tighter seccomp filter, AppArmor harden-default and SELinux container_t",
		ReadOnlyRootfs: ptr(true),
		ScratchDirs:    []string{"/tmp", "/var/tmp", "/run"},
		ScratchSize:    "64m",
		Seccomp:        &Seccomp{Profile: SeccompStrict},
		AppArmor:       ptr(AppArmorProfileName),
		SELinux:        &spec.SELinuxLabel{Type: "container_t"},
		Resources:      &Resources{Memory: "2Gi", Pids: ptr(int64(512)), OnExceed: string(spec.Lower)},
	})
	strict.Extends, restricted.Extends = Restricted, Baseline
	return map[string]Profile{Baseline: baseline, Restricted: restricted, Strict: strict}
}

// BuiltinNames lists the built-in profiles from loosest to strictest.
var BuiltinNames = []string{Baseline, Restricted, Strict}
