package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

// shapes are the spec shapes every mutator must survive (containerd
// pkg/oci/spec_opts_test.go): empty, Linux-only, no process, no
// capabilities, and a full engine-like spec.
func shapes() map[string]*specs.Spec {
	return map[string]*specs.Spec{
		"empty":           {},
		"linux-only":      {Linux: &specs.Linux{}},
		"nil-process":     {Linux: &specs.Linux{Resources: &specs.LinuxResources{}}, Root: &specs.Root{Path: "rootfs"}},
		"nil-caps":        {Process: &specs.Process{Args: []string{"sh"}}},
		"nil-linux-res":   {Process: &specs.Process{}, Linux: &specs.Linux{}},
		"full":            fullSpec(),
		"privileged-ish":  privilegedSpec(),
		"unlimited-cgrps": {Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(0)}}}},
	}
}

func fullSpec() *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_RAW", "CAP_MKNOD", "CAP_KILL", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_SETFCAP"}
	return &specs.Spec{
		Version: "1.2.0",
		Process: &specs.Process{
			Args: []string{"sh"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: slices.Clone(caps), Effective: slices.Clone(caps), Permitted: slices.Clone(caps),
				Inheritable: []string{"CAP_NET_RAW"}, Ambient: []string{"CAP_NET_RAW"},
			},
		},
		Root:   &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, {Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind"}}},
		Linux: &specs.Linux{
			Namespaces:    []specs.LinuxNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network"}},
			MaskedPaths:   []string{"/proc/kcore"},
			ReadonlyPaths: []string{"/proc/sys"},
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: i64(8 << 30)},
				Pids:   &specs.LinuxPids{Limit: i64(100000)},
			},
		},
	}
}

func privilegedSpec() *specs.Spec {
	s := fullSpec()
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	return s
}

// allMutators is every mutator with settings like the strict profile's.
func allMutators() map[string]Mutator {
	mem, pids, cpu := int64(1<<30), int64(512), int64(1500)
	shares, weight := uint64(512), uint16(100)
	ceil := Ceilings{MemoryBytes: &mem, Pids: &pids, CPUMillis: &cpu, CPUShares: &shares, BlkioWeight: &weight}
	return map[string]Mutator{
		"DenyPrivileged":     DenyPrivileged("privileged.deny"),
		"DenyUnconfinedLSM":  DenyUnconfinedLSM("lsm.deny-unconfined", PodSecuritySELinuxTypes),
		"DropCapabilities":   DropCapabilities("caps.drop", []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}),
		"DropAll":            DropCapabilities("caps.drop", nil),
		"SetNoNewPrivileges": SetNoNewPrivileges("nnp"),
		"RequireNonRoot":     RequireNonRoot("nonroot"),
		"DenyHostNamespaces": DenyHostNamespaces("ns", HostNamespaces),
		"DenyHostMounts":     DenyHostMounts("mounts", []HostPath{{Path: "/"}, {Path: "/srv", Subtree: true}}, nil),
		"RestrictSysctls":    RestrictSysctls("sysctls", []string{"net.ipv4.ping_group_range"}),
		"RestrictDevices":    RestrictDevices("devices", nil),
		"MaskPaths":          MaskPaths("mask", DefaultMaskedPaths),
		"ReadonlyPaths":      ReadonlyPaths("ro", DefaultReadonlyPaths),
		"SetReadonlyRootfs":  SetReadonlyRootfs("rootfs"),
		"AddScratchTmpfs":    AddScratchTmpfs("scratch", []string{"/tmp", "/run"}, "64m"),
		"LimitResources":     LimitResources("res", ceil, Lower, true),
		"LimitResourcesRej":  LimitResources("res", ceil, Reject, true),
		"SetAppArmorProfile": SetAppArmorProfile("aa", "harden-default"),
		"SetSELinuxLabel":    SetSELinuxLabel("se", SELinuxLabel{Type: "container_t"}),
		"SetSeccompProfile": SetSeccompProfile("seccomp", "test", func(s *specs.Spec) (*specs.LinuxSeccomp, error) {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}, nil
		}),
	}
}

// TestMutatorInvariants runs every mutator on every shape and holds it to
// the three promises: no panic, never widen, idempotent.
func TestMutatorInvariants(t *testing.T) {
	for mname, m := range allMutators() {
		for sname, s := range shapes() {
			t.Run(mname+"/"+sname, func(t *testing.T) {
				before, err := Clone(s)
				if err != nil {
					t.Fatal(err)
				}
				_, err = m.Mutate(s)
				var vs Violations
				if err != nil && !errors.As(err, &vs) {
					t.Fatalf("unexpected error: %v", err)
				}
				if werr := NeverWidens(before, s); werr != nil {
					t.Fatalf("widened: %v", werr)
				}
				again, _ := m.Mutate(s)
				for _, c := range again {
					if c.Op != OpRefuse {
						t.Fatalf("not idempotent: second run changed %s", c)
					}
				}
			})
		}
	}
}

func TestDropCapabilitiesAllSets(t *testing.T) {
	s := fullSpec()
	changes, err := DropCapabilities("caps.drop", []string{"CAP_CHOWN", "CAP_KILL"}).Mutate(s)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Process.Capabilities
	for name, got := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(got, []string{"CAP_CHOWN", "CAP_KILL"}) {
			t.Errorf("%s = %v", name, got)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v: want empty", c.Inheritable, c.Ambient)
	}
	if len(changes) != 5 {
		t.Errorf("want one change per set, got %d: %v", len(changes), changes)
	}
	// Allowed but absent capabilities are never added.
	s2 := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}}}
	if _, err := DropCapabilities("caps.drop", []string{"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"}).Mutate(s2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s2.Process.Capabilities.Bounding, []string{"CAP_KILL"}) {
		t.Errorf("bounding = %v, want [CAP_KILL]", s2.Process.Capabilities.Bounding)
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     Mutator
		s     *specs.Spec
		field string
	}{
		{"privileged devices", DenyPrivileged("privileged.deny"), privilegedSpec(), "linux.resources.devices[0]"},
		{"host pid", DenyHostNamespaces("namespaces.host", HostNamespaces), &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "ipc"}, {Type: "network"}, {Type: "mount"}}}}, "linux.namespaces"},
		{"host pid by path", DenyHostNamespaces("namespaces.host", HostNamespaces), &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid", Path: "/proc/1/ns/pid"}, {Type: "ipc"}, {Type: "network"}, {Type: "mount"}}}}, "linux.namespaces[0].path"},
		{"wildcard block devices", DenyPrivileged("privileged.deny"), &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "rwm"}}}}}, "linux.resources.devices[0]"},
		{"apparmor unconfined", DenyUnconfinedLSM("lsm.deny-unconfined", PodSecuritySELinuxTypes), &specs.Spec{Process: &specs.Process{ApparmorProfile: "unconfined"}}, "process.apparmorProfile"},
		{"selinux spc_t", DenyUnconfinedLSM("lsm.deny-unconfined", PodSecuritySELinuxTypes), &specs.Spec{Process: &specs.Process{SelinuxLabel: "system_u:system_r:spc_t:s0"}}, "process.selinuxLabel"},
		{"no linux", DenyHostNamespaces("namespaces.host", HostNamespaces), &specs.Spec{}, "linux.namespaces"},
		{"docker sock", DenyHostMounts("mounts.deny-host-path", []HostPath{{Path: "/run/docker.sock"}}, nil), &specs.Spec{Mounts: []specs.Mount{{Destination: "/var/run/docker.sock", Type: "bind", Source: "/var/run/docker.sock", Options: []string{"rbind"}}}}, "mounts[0].source"},
		{"host root via options", DenyHostMounts("mounts.deny-host-path", []HostPath{{Path: "/"}}, nil), &specs.Spec{Mounts: []specs.Mount{{Destination: "/host", Source: "/.//", Options: []string{"bind"}}}}, "mounts[0].source"},
		{"proc subtree", DenyHostMounts("mounts.deny-host-path", []HostPath{{Path: "/proc", Subtree: true}}, nil), &specs.Spec{Mounts: []specs.Mount{{Destination: "/x", Type: "bind", Source: "/proc/1/root"}}}, "mounts[0].source"},
		{"unsafe sysctl", RestrictSysctls("sysctls.safe", []string{"net.ipv4.ping_group_range"}), &specs.Spec{Linux: &specs.Linux{Sysctl: map[string]string{"kernel.core_pattern": "|/x"}}}, "linux.sysctl.kernel.core_pattern"},
		{"host device", RestrictDevices("devices.deny-host", nil), &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: "/dev/sda", Type: "b"}}}}, "linux.devices"},
		{"root user", RequireNonRoot("user.non-root"), &specs.Spec{Process: &specs.Process{}}, "process.user.uid"},
		{"memory above ceiling", LimitResources("resources.ceiling", Ceilings{MemoryBytes: i64(1 << 30)}, Reject, true), fullSpec(), "linux.resources.memory.limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(tc.s, Enforce, tc.m)
			if !errors.Is(err, ErrPolicyViolation) {
				t.Fatalf("err = %v, want a policy violation", err)
			}
			var ve *ViolationError
			if !errors.As(err, &ve) || ve.Violations[0].Field != tc.field {
				t.Fatalf("violation %+v, want field %s", ve, tc.field)
			}
		})
	}
}

func TestNotRefused(t *testing.T) {
	// Engine files below state dirs are fine; only the dirs themselves and sockets are denied.
	hp := []HostPath{{Path: "/var/lib/containerd"}, {Path: "/run/containerd/containerd.sock"}}
	s := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/hosts"},
		{Destination: "/dev/shm", Type: "bind", Source: "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm"},
		{Destination: "/proc", Type: "proc", Source: "/proc"}, // not a bind: the container's own procfs
	}}
	if _, err := Apply(s, Enforce, DenyHostMounts("m", hp, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestLimitResources(t *testing.T) {
	mem := int64(1 << 30)
	for _, tc := range []struct {
		name string
		in   *int64
		fill bool
		want *int64
	}{
		{"unset at create gets the ceiling", nil, true, &mem},
		{"unlimited gets the ceiling", i64(-1), true, &mem},
		{"above is lowered", i64(4 << 30), true, &mem},
		{"below is kept", i64(64 << 20), true, i64(64 << 20)},
		{"unset in an update stays unset", nil, false, nil},
		{"unlimited in an update is lowered", i64(-1), false, &mem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &specs.LinuxResources{}
			if tc.in != nil {
				r.Memory = &specs.LinuxMemory{Limit: tc.in}
			}
			var err error
			if tc.fill {
				_, err = LimitResources("r", Ceilings{MemoryBytes: &mem}, Lower, true).Mutate(&specs.Spec{Linux: &specs.Linux{Resources: r}})
			} else {
				_, err = LimitUpdate("r", r, Ceilings{MemoryBytes: &mem}, Lower)
			}
			if err != nil {
				t.Fatal(err)
			}
			var got *int64
			if r.Memory != nil {
				got = r.Memory.Limit
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("limit = %v, want %v", deref(got), deref(tc.want))
			}
		})
	}
	// CPU: quota over the ceiling is lowered relative to the spec's own period.
	q, p := int64(400000), uint64(200000) // 2 cores
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &q, Period: &p}}}}
	if _, err := LimitResources("r", Ceilings{CPUMillis: i64(500)}, Lower, true).Mutate(s); err != nil {
		t.Fatal(err)
	}
	if got := *s.Linux.Resources.CPU.Quota; got != 100000 {
		t.Fatalf("quota = %d, want 100000 (0.5 of a 200000us period)", got)
	}
}

func TestAuditChangesNothing(t *testing.T) {
	for name, s := range shapes() {
		t.Run(name, func(t *testing.T) {
			before, _ := json.Marshal(s)
			var ms []Mutator
			for _, m := range allMutators() {
				ms = append(ms, m)
			}
			res, err := Apply(s, Audit, ms...)
			if err != nil {
				t.Fatal(err)
			}
			after, _ := json.Marshal(s)
			if string(before) != string(after) {
				t.Fatal("audit mode changed the spec")
			}
			if name == "full" && len(res.Changes) == 0 {
				t.Fatal("audit mode recorded no changes for a spec enforce would change")
			}
		})
	}
}

func TestSELinuxMerge(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "system_u:system_r:container_t:s0"},
		{"system_u:system_r:spc_t:s0:c1,c2", "system_u:system_r:container_t:s0:c1,c2"},
	} {
		s := &specs.Spec{Process: &specs.Process{SelinuxLabel: tc.in}}
		if _, err := SetSELinuxLabel("se", SELinuxLabel{Type: "container_t"}).Mutate(s); err != nil {
			t.Fatal(err)
		}
		if s.Process.SelinuxLabel != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, s.Process.SelinuxLabel, tc.want)
		}
	}
}

func TestNeverWidensCatches(t *testing.T) {
	before := fullSpec()
	for name, widen := range map[string]func(*specs.Spec){
		"cap added": func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		},
		"nnp off":        func(s *specs.Spec) { s.Process.NoNewPrivileges = false },
		"mask removed":   func(s *specs.Spec) { s.Linux.MaskedPaths = nil },
		"namespace gone": func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[1:] },
		"limit raised":   func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = i64(16 << 30) },
		"bind mount": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/h", Type: "bind", Source: "/"})
		},
		"seccomp cleared": func(s *specs.Spec) { s.Linux.Seccomp = nil },
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := Clone(before)
			b.Process.NoNewPrivileges = true
			b.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
			a, _ := Clone(b)
			widen(a)
			if NeverWidens(b, a) == nil {
				t.Fatal("NeverWidens did not notice")
			}
		})
	}
}

func TestDockerDefaultDeviceRulesAreNotPrivileged(t *testing.T) {
	// Docker's default device cgroup: deny all, then mknod of any char or
	// block device ("c *:* m", "b *:* m") and the standard devices.
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(-1), Minor: i64(-1), Access: "m"},
		{Allow: true, Type: "b", Major: i64(-1), Minor: i64(-1), Access: "m"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	}}}}
	if _, err := Apply(s, Enforce, DenyPrivileged("privileged.deny")); err != nil {
		t.Fatal(err)
	}
}

func TestAllowHostPathsExempt(t *testing.T) {
	s := &specs.Spec{Mounts: []specs.Mount{{Destination: "/logs", Type: "bind", Source: "/var/log/pods"}}}
	deny := []HostPath{{Path: "/var/log", Subtree: true}}
	if _, err := Apply(s, Enforce, DenyHostMounts("m", deny, nil)); err == nil {
		t.Fatal("/var/log/pods not denied")
	}
	if _, err := Apply(s, Enforce, DenyHostMounts("m", deny, []HostPath{{Path: "/var/log/pods", Subtree: true}})); err != nil {
		t.Fatal(err)
	}
}

// TestDenyHostMountsAbove: a directory above a denied path exposes it, so
// its mount is refused too; a sibling or a path below an exact entry is
// not, and an allowed (exempt) source passes.
func TestDenyHostMountsAbove(t *testing.T) {
	deny := []HostPath{{Path: "/data/secrets", Subtree: true}, {Path: "/srv/app.sock"}}
	for _, tc := range []struct {
		src     string
		allowed []HostPath
		refused bool
	}{
		{"/data", nil, true},
		{"/data/", nil, true},
		{"/srv", nil, true},
		{"/", nil, true},
		{"/data/secrets/x", nil, true},
		{"/data/other", nil, false},
		{"/datastore", nil, false},
		{"/srv/app", nil, false},
		{"/data", []HostPath{{Path: "/data"}}, false},
	} {
		s := &specs.Spec{Mounts: []specs.Mount{{Destination: "/mnt", Type: "bind", Source: tc.src}}}
		_, err := Apply(s, Enforce, DenyHostMounts("m", deny, tc.allowed))
		if (err != nil) != tc.refused {
			t.Errorf("%s (allowed %v): err %v, want refused %v", tc.src, tc.allowed, err, tc.refused)
		}
		if tc.refused && tc.src == "/data" && (err == nil || !strings.Contains(err.Error(), "would expose /data/secrets")) {
			t.Errorf("%s: the error does not name what it would expose: %v", tc.src, err)
		}
	}
}

func TestAdaptLowersOCIVersionForOldRuntimes(t *testing.T) {
	s := &specs.Spec{Version: "1.3.0"}
	changes, _ := Adapt(s, Crun, Host{MaxOCIVersion: "1.1.0"})
	if s.Version != "1.1.0" || len(changes) != 1 {
		t.Fatalf("version %s, changes %v", s.Version, changes)
	}
	s = &specs.Spec{Version: "1.0.2-dev"}
	if changes, _ := Adapt(s, Crun, Host{MaxOCIVersion: "1.1.0"}); s.Version != "1.0.2-dev" || len(changes) != 0 {
		t.Fatalf("an older version was changed: %s %v", s.Version, changes)
	}
}
