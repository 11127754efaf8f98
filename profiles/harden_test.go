package profiles

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/spec"
)

func mustParse(t *testing.T, policy string) *Compiled {
	t.Helper()
	c, err := Parse([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// engineSpec looks like what containerd's CRI writes for an app container.
func engineSpec(ns, pod string, uid uint32) *specs.Spec {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	return &specs.Spec{
		Version: "1.2.1",
		Process: &specs.Process{
			User: specs.User{UID: uid, GID: uid}, Args: []string{"sleep", "inf"}, Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: slices.Clone(caps), Effective: slices.Clone(caps), Permitted: slices.Clone(caps)},
		},
		Root: &specs.Root{Path: "rootfs"},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type":    "container",
			"io.kubernetes.cri.sandbox-namespace": ns,
			"io.kubernetes.cri.sandbox-name":      pod,
			"io.kubernetes.cri.container-name":    "app",
			"io.kubernetes.cri.image-name":        "docker.io/library/busybox:latest",
		},
		Linux: &specs.Linux{Namespaces: privateNS(), MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}},
	}
}

func TestBuiltinProfiles(t *testing.T) {
	c := mustParse(t, header+`
rules:
- {name: b, profile: baseline, match: {namespaces: [b]}}
- {name: r, profile: restricted, match: {namespaces: [r]}}
- {name: s, profile: strict, match: {namespaces: [s]}}
`)
	h := spec.Host{AppArmor: true, SELinux: true}

	s := engineSpec("b", "web", 0)
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), h); err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"}) {
		t.Errorf("baseline bounding = %v", got)
	}
	if !s.Process.NoNewPrivileges || s.Linux.Seccomp == nil || *s.Linux.Resources.Pids.Limit != 4096 {
		t.Errorf("baseline: nnp %v seccomp %v pids %v", s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, s.Linux.Resources.Pids)
	}
	if s.Process.ApparmorProfile != "" || s.Process.SelinuxLabel != "" {
		t.Errorf("baseline set LSM labels: %q %q", s.Process.ApparmorProfile, s.Process.SelinuxLabel)
	}

	s = engineSpec("r", "web", 0)
	_, err := c.Harden(s, spec.IdentityFromSpec(s), h)
	if !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), RuleNonRoot) {
		t.Fatalf("restricted as root: err = %v", err)
	}
	if s.Process.NoNewPrivileges {
		t.Fatal("a refused spec was modified")
	}
	s = engineSpec("r", "web", 1000)
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), h); err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Capabilities.Bounding; !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("restricted bounding = %v", got)
	}
	if *s.Linux.Resources.Memory.Limit != 4<<30 || *s.Linux.Resources.Pids.Limit != 1024 {
		t.Errorf("restricted ceilings: %+v", s.Linux.Resources)
	}

	s = engineSpec("s", "web", 1000)
	if _, err := c.Harden(s, spec.IdentityFromSpec(s), h); err != nil {
		t.Fatal(err)
	}
	if !s.Root.Readonly || s.Process.ApparmorProfile != AppArmorProfileName || s.Process.SelinuxLabel != "system_u:system_r:container_t:s0" {
		t.Errorf("strict: readonly %v apparmor %q selinux %q", s.Root.Readonly, s.Process.ApparmorProfile, s.Process.SelinuxLabel)
	}
	names := allowedNames(s.Linux.Seccomp)
	for _, denied := range []string{"io_uring_setup", "userfaultfd", "keyctl", "unshare", "setns", "bpf"} {
		if slices.Contains(names, denied) {
			t.Errorf("strict seccomp allows %s", denied)
		}
	}
	var scratch []string
	for _, m := range s.Mounts {
		if m.Type == "tmpfs" {
			scratch = append(scratch, m.Destination)
		}
	}
	if !slices.Equal(scratch, []string{"/tmp", "/var/tmp", "/run"}) {
		t.Errorf("strict scratch dirs = %v", scratch)
	}
	if err := Compile(s.Linux.Seccomp, false); err != nil {
		t.Errorf("strict filter does not compile: %v", err)
	}
}

func TestRuleMatching(t *testing.T) {
	c := mustParse(t, header+`
rules:
- name: kube-system-audit
  match: {namespaces: [kube-system]}
  profile: baseline
  mode: audit
- name: payments
  match: {namespaces: [payments], images: ["docker.io/library/*"], containerType: container}
  profile: restricted
  backend: runsc
- name: by-annotation
  match: {annotations: {team: "sec*"}}
  profile: strict
`)
	for _, tc := range []struct {
		name                string
		id                  spec.Identity
		rule, profile, mode string
		backend             spec.Backend
	}{
		{"default", spec.Identity{Namespace: "default"}, "defaults", Baseline, "enforce", spec.Runc},
		{"kube-system", spec.Identity{Namespace: "kube-system"}, "kube-system-audit", Baseline, "audit", spec.Runc},
		{"payments app", spec.Identity{Namespace: "payments", Image: "docker.io/library/nginx:1", ContainerType: "container"}, "payments", Restricted, "enforce", spec.Runsc},
		{"payments sandbox", spec.Identity{Namespace: "payments", Image: "docker.io/library/nginx:1", ContainerType: "sandbox"}, "defaults", Baseline, "enforce", spec.Runc},
		{"payments other image", spec.Identity{Namespace: "payments", Image: "quay.io/x", ContainerType: "container"}, "defaults", Baseline, "enforce", spec.Runc},
		{"annotation", spec.Identity{Annotations: map[string]string{"team": "security"}}, "by-annotation", Strict, "enforce", spec.Runc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := c.Decide(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Rule != tc.rule || d.Profile != tc.profile || string(d.Mode) != tc.mode || d.Backend != tc.backend {
				t.Fatalf("decision %+v, want %s/%s/%s/%s", d, tc.rule, tc.profile, tc.mode, tc.backend)
			}
		})
	}
}

func TestAuditModeLeavesSpecIdentical(t *testing.T) {
	c := mustParse(t, header+"defaults: {profile: strict, mode: audit}\n")
	s := engineSpec("x", "y", 0)
	before, _ := json.Marshal(s)
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Fatal("audit mode changed the spec")
	}
	if len(out.Changes) == 0 || len(out.Violations) == 0 {
		t.Fatalf("audit record should list changes and the root refusal: %+v", out)
	}
}

func TestSelectableProfiles(t *testing.T) {
	c, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	s := engineSpec("x", "y", 1000)
	s.Annotations[SelectAnnotation] = Strict
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision.Selected != Strict || !s.Root.Readonly || !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Fatalf("selected strict not applied: %+v readonly=%v caps=%v", out.Decision, s.Root.Readonly, s.Process.Capabilities.Bounding)
	}
	// A workload cannot pick a profile its rule does not list.
	c2 := mustParse(t, header+"profiles:\n- {name: loose, extends: baseline, capabilities: {allow: [ALL]}}\ndefaults: {profile: restricted}\n")
	s = engineSpec("x", "y", 1000)
	s.Annotations[SelectAnnotation] = "loose"
	_, err = c2.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
	if !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), RuleSelect) {
		t.Fatalf("unlisted selection: err = %v", err)
	}
	// Even a listed looser profile cannot lift the rule's ceiling: it is
	// applied on top, so capabilities stay the rule's.
	c3 := mustParse(t, header+"profiles:\n- {name: loose, extends: restricted, capabilities: {allow: [ALL]}}\ndefaults: {profile: restricted, selectable: [loose]}\n")
	s = engineSpec("x", "y", 1000)
	s.Annotations[SelectAnnotation] = "loose"
	if _, err := c3.Harden(s, spec.IdentityFromSpec(s), spec.Host{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Fatalf("selected profile widened capabilities: %v", s.Process.Capabilities.Bounding)
	}
}

// TestRefusedSelectionInAudit: in audit mode a refused selection is
// recorded next to what the rule's own profile would change (create, exec
// and update), and nothing is changed; in enforce mode it refuses.
func TestRefusedSelectionInAudit(t *testing.T) {
	for _, mode := range []string{"audit", "enforce"} {
		c := mustParse(t, header+"profiles:\n- {name: loose, extends: baseline, capabilities: {allow: [ALL]}}\ndefaults: {profile: restricted, mode: "+mode+"}\n")
		s := engineSpec("x", "y", 1000)
		s.Annotations[SelectAnnotation] = "loose"
		before, _ := spec.Clone(s)
		out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{})
		selectRefused := slices.ContainsFunc(out.Violations, func(v spec.Violation) bool { return v.Rule == RuleSelect })
		capsDropped := slices.ContainsFunc(out.Changes, func(ch spec.Change) bool { return strings.HasPrefix(ch.Path, "process.capabilities") })
		if mode == "enforce" {
			if !errors.Is(err, spec.ErrPolicyViolation) || !selectRefused {
				t.Errorf("enforce: err %v, violations %+v; want the selection refused", err, out.Violations)
			}
			continue
		}
		if err != nil || !selectRefused || !capsDropped {
			t.Errorf("audit create: err %v, violations %+v, changes %d (capabilities among them: %v); want the refused selection and the rule's changes", err, out.Violations, len(out.Changes), capsDropped)
		}
		if !reflect.DeepEqual(before, s) {
			t.Error("audit create changed the spec")
		}
		all := slices.Clone(spec.AllCapabilities)
		proc := &specs.Process{Args: []string{"sh"}, Capabilities: &specs.LinuxCapabilities{Bounding: all, Effective: slices.Clone(all), Permitted: slices.Clone(all)}}
		out, err = c.HardenExec(proc, s, spec.IdentityFromSpec(s), spec.Host{})
		if err != nil || !slices.ContainsFunc(out.Violations, func(v spec.Violation) bool { return v.Rule == RuleSelect }) || len(out.Changes) == 0 {
			t.Errorf("audit exec: err %v, violations %+v, changes %+v", err, out.Violations, out.Changes)
		}
		mem := int64(64 << 30)
		out, err = c.HardenUpdate(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}}, spec.IdentityFromSpec(s))
		if err != nil || !slices.ContainsFunc(out.Violations, func(v spec.Violation) bool { return v.Rule == RuleSelect }) || len(out.Changes) == 0 || mem != 64<<30 {
			t.Errorf("audit update: err %v, violations %+v, changes %+v, limit %d", err, out.Violations, out.Changes, mem)
		}
	}
}

func TestHardenExec(t *testing.T) {
	c, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	container := engineSpec("x", "y", 0)
	if _, err := c.Harden(container, spec.IdentityFromSpec(container), spec.Host{}); err != nil {
		t.Fatal(err)
	}
	// What the engine sends for an exec: its own idea of the capabilities.
	all := slices.Clone(spec.AllCapabilities)
	proc := &specs.Process{Args: []string{"sh"}, Capabilities: &specs.LinuxCapabilities{Bounding: all, Effective: slices.Clone(all), Permitted: slices.Clone(all)}}
	if _, err := c.HardenExec(proc, container, spec.IdentityFromSpec(container), spec.Host{}); err != nil {
		t.Fatal(err)
	}
	got, want := slices.Sorted(slices.Values(proc.Capabilities.Effective)), slices.Sorted(slices.Values(container.Process.Capabilities.Bounding))
	if !slices.Equal(got, want) || !proc.NoNewPrivileges {
		t.Fatalf("exec caps %v nnp %v, want the container's %v and nnp", proc.Capabilities.Effective, proc.NoNewPrivileges, container.Process.Capabilities.Bounding)
	}
}

func TestHardenUpdate(t *testing.T) {
	c := mustParse(t, header+`
profiles:
- {name: lower, extends: restricted}
- {name: refuse, extends: restricted, resources: {onExceed: refuse}}
rules:
- {name: l, profile: lower, match: {namespaces: [l]}}
- {name: r, profile: refuse, match: {namespaces: [r]}}
`)
	big := int64(64 << 30)
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &big}}
	if _, err := c.HardenUpdate(r, spec.IdentityFromSpec(engineSpec("l", "p", 1000))); err != nil {
		t.Fatal(err)
	}
	if *r.Memory.Limit != 4<<30 {
		t.Fatalf("lowered to %d, want 4Gi", *r.Memory.Limit)
	}
	big = 64 << 30
	r = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &big}}
	_, err := c.HardenUpdate(r, spec.IdentityFromSpec(engineSpec("r", "p", 1000)))
	if !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), "linux.resources.memory.limit") {
		t.Fatalf("refuse: err = %v", err)
	}
	// Fields the update does not name stay absent.
	r = &specs.LinuxResources{CPU: &specs.LinuxCPU{}}
	if _, err := c.HardenUpdate(r, spec.IdentityFromSpec(engineSpec("l", "p", 1000))); err != nil || r.Memory != nil || r.Pids != nil {
		t.Fatalf("update filled absent fields: %+v %v", r, err)
	}
}

func TestRunscDropsSELinux(t *testing.T) {
	c := mustParse(t, header+"defaults: {profile: strict, backend: runsc}\n")
	s := engineSpec("x", "y", 1000)
	out, err := c.Harden(s, spec.IdentityFromSpec(s), spec.Host{SELinux: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.SelinuxLabel != "" {
		t.Fatal("runsc spec kept an SELinux label runsc would reject")
	}
	for _, e := range out.Enforcement {
		if e.Control == spec.CtlSeccomp && e.Enforced {
			t.Fatal("runsc without --oci-seccomp reported seccomp as enforced")
		}
	}
}
