package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// probeScript runs inside the container and prints one key=value per line.
const probeScript = `
grep -E '^(CapBnd|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
echo uid=$(id -u)
echo pidsmax=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null)
echo memlimit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max 2>/dev/null)
for p in /proc/keys /proc/timer_list /proc/sched_debug /sys/firmware; do
  if awk -v p=$p '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; then echo "masked:$p=yes"; else echo "masked:$p=no"; fi
done
if (echo 1 > /proc/sysrq-trigger) 2>/dev/null; then echo sysrq=writable; else echo sysrq=blocked; fi
if touch /.harden-write-test 2>/dev/null; then echo rootfs=writable; else echo rootfs=readonly; fi
if touch /tmp/scratch 2>/dev/null; then echo tmp=writable; else echo tmp=readonly; fi
if unshare -n true 2>/dev/null; then echo unshare=allowed; else echo unshare=denied; fi
echo done=1
`

// engineLikeSpec is containerd's default spec (pkg/oci/spec.go) for a busybox
// rootfs: the capabilities `ctr run` grants, private namespaces, no masked
// paths and no seccomp, so every control harden adds is visible.
func engineLikeSpec(rootfs, id string, uid uint32) *specs.Spec {
	rootfs = filepath.Clean(rootfs)
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	cp := func() []string { return append([]string(nil), caps...) }
	return &specs.Spec{
		Version: "1.0.2-dev", // what Docker writes; crun 1.8 rejects versions newer than it knows
		Process: &specs.Process{
			User:         specs.User{UID: uid, GID: uid},
			Args:         []string{"/bin/sh", "-c", probeScript},
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: cp(), Effective: cp(), Permitted: cp()},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Root:     &specs.Root{Path: rootfs},
		Hostname: "harden-itest",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/harden-itest/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
}

type runtimeCase struct {
	name string
	bin  string
	args []string // global flags before the subcommand
}

func runtimes(t *testing.T) []runtimeCase {
	root := t.TempDir()
	return []runtimeCase{
		{"runc", need(t, "HARDEN_RUNC"), []string{"--root", filepath.Join(root, "runc")}},
		{"crun", need(t, "HARDEN_CRUN"), []string{"--root", filepath.Join(root, "crun")}},
	}
}

// runBundle runs the container to completion and returns the probe output.
func runBundle(t *testing.T, rt runtimeCase, bundle, id string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append(append([]string(nil), rt.args...), "run", "--bundle", bundle, id)
	cmd := exec.CommandContext(ctx, rt.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	// The container is gone once run returns; make sure of it on failure.
	_ = exec.Command(rt.bin, append(append([]string(nil), rt.args...), "delete", "--force", id)...).Run()
	if err != nil {
		t.Fatalf("%s run: %v\nstdout: %s\nstderr: %s", rt.name, err, stdout.String(), stderr.String())
	}
	out := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			out[k] = v
		}
	}
	if out["done"] != "1" {
		t.Fatalf("probe did not finish:\n%s\nstderr: %s", stdout.String(), stderr.String())
	}
	return out
}

// capMask turns capability names into the hex mask /proc/self/status shows.
func capMask(names []string) string {
	var m uint64
	for _, n := range names {
		for i, c := range spec.AllCapabilities {
			if c == n {
				m |= 1 << uint(i)
			}
		}
	}
	return fmt.Sprintf("%016x", m)
}

// writeBundle hardens the spec with the given built-in profile exactly as
// `hardenctl apply` and the entry points do, and writes the bundle.
func writeBundle(t *testing.T, s *specs.Spec, profile string) (string, *profiles.Outcome) {
	t.Helper()
	c, err := profiles.Parse([]byte("apiVersion: harden.dev/v1alpha1\nkind: Policy\ndefaults: {profile: " + profile + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Harden(s, spec.IdentityFromSpec(s), profiles.DetectHost())
	if err != nil {
		t.Fatalf("harden: %v", err)
	}
	bundle := t.TempDir()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return bundle, out
}

// TestHardenedContainers runs a container per runtime and built-in profile
// and checks, from inside, every control the profile claims.
func TestHardenedContainers(t *testing.T) {
	images := need(t, "HARDEN_IMAGES")
	for _, rt := range runtimes(t) {
		for _, tc := range []struct {
			profile  string
			uid      uint32
			caps     []string
			pids     string
			readonly bool
			unshare  string
		}{
			{profiles.Baseline, 0, profiles.BaselineCapabilities, "4096", false, ""},
			{profiles.Restricted, 1000, []string{"CAP_NET_BIND_SERVICE"}, "1024", false, ""},
			{profiles.Strict, 1000, []string{"CAP_NET_BIND_SERVICE"}, "512", true, "denied"},
		} {
			t.Run(rt.name+"/"+tc.profile, func(t *testing.T) {
				id := fmt.Sprintf("harden-itest-%s-%s-%d", rt.name, tc.profile, os.Getpid())
				s := engineLikeSpec(copyRootfs(t, images), id, tc.uid)
				bundle, _ := writeBundle(t, s, tc.profile)
				got := runBundle(t, rt, bundle, id)

				want := capMask(tc.caps)
				if got["CapBnd"] != want {
					t.Errorf("CapBnd = %s, want %s (%v)", got["CapBnd"], want, tc.caps)
				}
				if tc.uid == 0 && got["CapEff"] != want {
					t.Errorf("CapEff = %s, want %s", got["CapEff"], want)
				}
				if tc.uid != 0 && got["CapEff"] != "0000000000000000" {
					t.Errorf("CapEff = %s for uid %d, want none", got["CapEff"], tc.uid)
				}
				if got["CapAmb"] != "0000000000000000" {
					t.Errorf("CapAmb = %s, want none", got["CapAmb"])
				}
				if got["NoNewPrivs"] != "1" {
					t.Errorf("NoNewPrivs = %s, want 1", got["NoNewPrivs"])
				}
				if got["Seccomp"] != "2" {
					t.Errorf("Seccomp = %s, want 2 (filter mode)", got["Seccomp"])
				}
				if got["uid"] != strconv.Itoa(int(tc.uid)) {
					t.Errorf("uid = %s, want %d", got["uid"], tc.uid)
				}
				if got["pidsmax"] != tc.pids {
					t.Errorf("pids.max = %q, want %s", got["pidsmax"], tc.pids)
				}
				for _, p := range []string{"/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware"} {
					if _, err := os.Stat(p); err != nil {
						continue // this kernel has no such file; runc skips it too
					}
					if got["masked:"+p] != "yes" {
						t.Errorf("%s is not masked (no mount over it in /proc/self/mountinfo)", p)
					}
				}
				if got["sysrq"] != "blocked" {
					t.Errorf("/proc/sysrq-trigger is %s", got["sysrq"])
				}
				if wantRO := map[bool]string{true: "readonly", false: "writable"}[tc.readonly]; got["rootfs"] != wantRO {
					if !(tc.uid != 0 && got["rootfs"] == "readonly") { // non-root cannot write / anyway
						t.Errorf("rootfs = %s, want %s", got["rootfs"], wantRO)
					}
				}
				if got["tmp"] != "writable" {
					t.Errorf("/tmp is %s, want writable scratch space", got["tmp"])
				}
				if tc.unshare != "" && got["unshare"] != tc.unshare {
					t.Errorf("unshare = %s, want %s", got["unshare"], tc.unshare)
				}
			})
		}
	}
}

// TestRestrictedMemoryCeiling checks that the memory ceiling reaches the
// container's cgroup.
func TestRestrictedMemoryCeiling(t *testing.T) {
	rootfs := copyRootfs(t, need(t, "HARDEN_IMAGES"))
	rt := runtimes(t)[0]
	id := fmt.Sprintf("harden-itest-mem-%d", os.Getpid())
	bundle, _ := writeBundle(t, engineLikeSpec(rootfs, id, 1000), profiles.Restricted)
	got := runBundle(t, rt, bundle, id)
	if got["memlimit"] != strconv.Itoa(4<<30) {
		t.Fatalf("memory limit = %q, want %d", got["memlimit"], 4<<30)
	}
}

// TestUnhardenedBaseline shows the same spec without harden, so a passing
// suite proves harden made the difference (and the probe can see it).
func TestUnhardenedBaseline(t *testing.T) {
	rootfs := copyRootfs(t, need(t, "HARDEN_IMAGES"))
	rt := runtimes(t)[0]
	id := fmt.Sprintf("harden-itest-plain-%d", os.Getpid())
	s := engineLikeSpec(rootfs, id, 0)
	bundle := t.TempDir()
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	got := runBundle(t, rt, bundle, id)
	if got["Seccomp"] != "0" || got["NoNewPrivs"] != "0" || got["masked:/proc/keys"] != "no" {
		t.Fatalf("plain container already hardened? %v", got)
	}
}

// copyRootfs gives each container its own copy of the cached busybox rootfs,
// so a writable container cannot change what the next test sees.
func copyRootfs(t *testing.T, images string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", filepath.Join(images, "busybox-rootfs"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v: %s", err, out)
	}
	return dst
}
