package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	seccomprecord "github.com/harden-dev/harden/record"
)

// recordWorkloadImage is the image TestRecord builds: the busybox test
// rootfs with a shell script that does file work and no networking.
const recordWorkloadImage = "docker.io/library/harden-record-workload:e2e"

// recordWorkload is /workload.sh, the image's command. Its output depends
// only on what it computes, so two runs print the same.
const recordWorkload = `#!/bin/sh
set -e
mkdir -p /tmp/w/sub
echo "harden record workload" > /tmp/w/a.txt
cp /tmp/w/a.txt /tmp/w/sub/b.txt
ln -s a.txt /tmp/w/link
cut -d: -f1 /etc/passwd | sort > /tmp/w/users
echo "users: $(wc -l < /tmp/w/users) $(tr '\n' ' ' < /tmp/w/users)"
echo "sum: $(sha256sum /tmp/w/sub/b.txt | cut -c1-16)"
echo "link: $(readlink /tmp/w/link) $(cat /tmp/w/link)"
echo "files: $(find /tmp/w -type f | sort | tr '\n' ' ')"
chmod 600 /tmp/w/a.txt
echo "mode: $(stat -c %a /tmp/w/a.txt)"
rm -r /tmp/w
echo done
`

// recordJSON is the part of `hardenctl record --json` the test reads.
type recordJSON struct {
	Container string `json:"container"`
	Profile   string `json:"profile"`
	Stopped   bool   `json:"stopped"`
	ExitCode  int    `json:"exitCode"`
	Syscalls  []struct {
		Name     string `json:"name"`
		Count    uint64 `json:"count"`
		Runtime  bool   `json:"runtime"`
		Workload bool   `json:"workload"`
	} `json:"syscalls"`
	Added    []string `json:"added"`
	Allowed  []string `json:"allowed"`
	Sessions []struct {
		ContainerID string `json:"containerID"`
	} `json:"sessions"`
	Policy string `json:"policy"`
}

func (r recordJSON) names() []string {
	var out []string
	for _, s := range r.Syscalls {
		out = append(out, s.Name)
	}
	return out
}

// hardenctlRun is one finished hardenctl command.
type hardenctlRun struct {
	stdout, stderr string
	code           int
}

// hardenctlRecordBin is the hardenctl under test: $HARDEN_HARDENCTL, else
// bin/hardenctl. It must have the record command.
func hardenctlRecordBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("HARDEN_HARDENCTL")
	if bin == "" {
		repo, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(repo, "bin", "hardenctl")
	}
	if r, err := runCmd(30*time.Second, nil, bin, "help", "record"); err != nil {
		t.Fatalf("%s has no record command (%v): run make build, or set HARDEN_HARDENCTL\n%s", bin, err, r)
	}
	return bin
}

func runHardenctl(t *testing.T, bin string, args ...string) hardenctlRun {
	t.Helper()
	r, err := runCmd(3*time.Minute, append(os.Environ(), "NO_COLOR=1"), bin, args...)
	out := hardenctlRun{stdout: r.stdout, stderr: r.stderr}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		out.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("hardenctl %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return out
}

// recordArgs are the flags that point hardenctl record at the suite's
// containerd and keep ctr run state inside the instance.
func recordArgs(sockDir string) []string {
	a := []string{"--ctr", env["HARDEN_CTR"], "--address", inst.sock(), "--socket-dir", sockDir}
	for _, f := range ctrRunFlags() {
		a = append(a, "--run-flag="+f)
	}
	return a
}

// ctrRunImage is ctrRunArgs for another image than the suite's busybox.
func ctrRunImage(runtime string, flags []string, image, id string, command ...string) []string {
	a := append([]string{"run"}, ctrRunFlags()...)
	a = append(a, "--runtime", runtime)
	a = append(a, flags...)
	a = append(a, image, id)
	return append(a, command...)
}

// buildRecordWorkload packs the busybox test rootfs plus /workload.sh into
// an image archive with test/images/mkimage and imports it; the image is
// removed when the test ends.
func buildRecordWorkload(t *testing.T) {
	t.Helper()
	rootfsSrc := need(t, "HARDEN_BUSYBOX_ROOTFS")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mkimage := filepath.Join(dir, "mkimage")
	build := exec.Command("go", "build", "-o", mkimage, "./test/images/mkimage")
	build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mkimage: %v\n%s", err, out)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if r, err := runCmd(time.Minute, nil, "cp", "-a", rootfsSrc, rootfs); err != nil {
		t.Fatalf("copy rootfs: %v\n%s", err, r)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "workload.sh"), []byte(recordWorkload), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "workload.tar")
	if r, err := runCmd(time.Minute, nil, mkimage, "-rootfs", rootfs, "-name", recordWorkloadImage, "-o", archive, "-cmd", `["/workload.sh"]`); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, r)
	}
	t.Cleanup(func() {
		if r, err := ctr("default", "images", "rm", "--sync", recordWorkloadImage); err != nil {
			t.Errorf("cleanup: remove image: %v\n%s", err, r)
		}
	})
	mustCtr(t, "default", "images", "import", archive)
}

// assertNoRecordLeft checks that hardenctl record removed its container
// and its socket directory.
func assertNoRecordLeft(t *testing.T, sockDir string) {
	t.Helper()
	r := mustCtr(t, "default", "containers", "ls", "-q")
	for _, id := range strings.Fields(r.stdout) {
		if strings.HasPrefix(id, "harden-record-") {
			t.Errorf("container %s left", id)
			removeCtrContainer(t, "default", id)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(sockDir, "*")); len(left) > 0 {
		t.Errorf("hardenctl record left %v", left)
	}
}

// TestRecord records a workload image built here with `hardenctl record`
// under the runc shim, then checks the profile it wrote: the same workload
// reruns under it with the same output, a syscall the workload never made
// fails with EPERM, and a harden policy can name the file, with harden's
// shim running the workload under it.
func TestRecord(t *testing.T) {
	in := requireSuite(t)
	bin := hardenctlRecordBin(t)
	buildRecordWorkload(t)
	dir := t.TempDir()
	sockDir := t.TempDir()
	profile := filepath.Join(dir, "workload.json")

	// Reference: the workload without any seccomp filter.
	refID := newID("rec-ref")
	t.Cleanup(func() { removeCtrContainer(t, "default", refID) })
	ref := mustCtr(t, "default", ctrRunImage(runcRuntime, []string{"--rm"}, recordWorkloadImage, refID)...)
	if !strings.Contains(ref.stdout, "done") {
		t.Fatalf("the workload did not finish unconfined:\n%s", ref)
	}

	r := runHardenctl(t, bin, append(append([]string{"record", "-o", profile, "--json", "--print-policy", "--name", "recorded"}, recordArgs(sockDir)...), recordWorkloadImage)...)
	if r.code != 0 {
		t.Fatalf("hardenctl record: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var rec recordJSON
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
		t.Fatalf("hardenctl record --json: %v\n%s", err, r.stdout)
	}
	rememberID(rec.Container)
	assertNoRecordLeft(t, sockDir)
	t.Logf("recorded %d syscalls: %v; added %v", len(rec.Syscalls), rec.names(), rec.Added)
	if !strings.Contains(r.stderr, ref.stdout) {
		t.Errorf("the recorded run's output (on stderr) lacks the workload's:\nwant:\n%s\nstderr:\n%s", ref.stdout, r.stderr)
	}
	if len(rec.Sessions) != 1 || rec.Sessions[0].ContainerID != rec.Container {
		t.Errorf("sessions = %+v, want one for %s", rec.Sessions, rec.Container)
	}
	names := rec.names()
	// What the workload's commands do (busybox uses the older syscall of
	// some pairs): exec, open, list, chmod, ln -s.
	for _, want := range [][]string{{"execve"}, {"openat", "open"}, {"getdents64"}, {"chmod", "fchmodat"}, {"symlink", "symlinkat"}} {
		if !slices.ContainsFunc(want, func(n string) bool { return slices.Contains(names, n) }) {
			t.Errorf("the recording lacks %s, which the workload makes", strings.Join(want, " or "))
		}
	}
	var runtimePhase []string
	for _, s := range rec.Syscalls {
		if s.Runtime {
			runtimePhase = append(runtimePhase, s.Name)
		}
		if s.Count == 0 {
			t.Errorf("%s recorded with count 0", s.Name)
		}
	}
	if !slices.Contains(runtimePhase, "execve") {
		t.Errorf("no runtime phase ending in execve recorded: %v", runtimePhase)
	}
	// The syscall the denial check below uses must be one the workload
	// never made.
	if slices.Contains(names, "unshare") || slices.Contains(rec.Allowed, "unshare") {
		t.Fatalf("the workload made unshare; pick another syscall for the denial check")
	}

	// The file: what was reported, readable by harden.
	fi, err := os.Stat(profile)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o644 || st.Uid != 0 {
		t.Errorf("%s: mode %04o uid %d, want 0644 root", profile, fi.Mode().Perm(), st.Uid)
	}
	body, _ := os.ReadFile(profile)
	var f struct {
		DefaultAction   string `json:"defaultAction"`
		DefaultErrnoRet *uint  `json:"defaultErrnoRet"`
		ListenerPath    string `json:"listenerPath"`
		Syscalls        []struct {
			Names  []string `json:"names"`
			Action string   `json:"action"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if f.DefaultAction != "SCMP_ACT_ERRNO" || f.DefaultErrnoRet == nil || *f.DefaultErrnoRet != 1 || f.ListenerPath != "" ||
		len(f.Syscalls) != 1 || f.Syscalls[0].Action != "SCMP_ACT_ALLOW" || !slices.Equal(f.Syscalls[0].Names, rec.Allowed) {
		t.Errorf("profile is not one ALLOW rule for the reported names and ERRNO(EPERM) for the rest:\n%s", body)
	}

	t.Run("rerun", func(t *testing.T) {
		// Several runs: the runtime's own syscalls must be covered every
		// time, not only in the run that was recorded.
		for i := range 3 {
			id := newID("rec-rerun")
			t.Cleanup(func() { removeCtrContainer(t, "default", id) })
			got, err := ctr("default", ctrRunImage(runcRuntime, []string{"--rm", "--seccomp", "--seccomp-profile", profile}, recordWorkloadImage, id)...)
			if err != nil {
				t.Fatalf("run %d under the recorded profile: %v\n%s", i, err, got)
			}
			if got.stdout != ref.stdout {
				t.Errorf("run %d: output differs from the unconfined run:\ngot:\n%s\nwant:\n%s", i, got.stdout, ref.stdout)
			}
		}
	})

	t.Run("denied", func(t *testing.T) {
		// unshare(CLONE_NEWUSER) needs no capability: it works without the
		// filter, so a failure under it is the filter's.
		id := newID("rec-unshare-ok")
		t.Cleanup(func() { removeCtrContainer(t, "default", id) })
		if r, err := ctr("default", ctrRunImage(runcRuntime, []string{"--rm"}, recordWorkloadImage, id, "unshare", "-U", "true")...); err != nil {
			missing(t, "unshare -U fails without seccomp here too, so it cannot show the filter: "+err.Error()+"\n"+r.String())
		}
		id2 := newID("rec-unshare")
		t.Cleanup(func() { removeCtrContainer(t, "default", id2) })
		r, err := ctr("default", ctrRunImage(runcRuntime, []string{"--rm", "--seccomp", "--seccomp-profile", profile}, recordWorkloadImage, id2, "unshare", "-U", "true")...)
		if err == nil {
			t.Fatalf("unshare -U ran under the recorded profile:\n%s", r)
		}
		if !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("unshare failed, but not with EPERM:\n%s", r)
		}
	})

	t.Run("policy", func(t *testing.T) {
		// The policy --print-policy printed loads as written.
		printed := filepath.Join(dir, "printed-policy.yaml")
		if err := os.WriteFile(printed, []byte(rec.Policy), 0o644); err != nil {
			t.Fatal(err)
		}
		if v := runHardenctl(t, bin, "policy", "validate", printed); v.code != 0 || !strings.Contains(v.stdout, "ok") {
			t.Fatalf("hardenctl policy validate (printed policy): exit %d\n%s%s\n%s", v.code, v.stdout, v.stderr, rec.Policy)
		}
		if !strings.Contains(rec.Policy, "profile: "+profile) {
			t.Errorf("the printed policy does not name %s:\n%s", profile, rec.Policy)
		}

		// ctr containers carry no image identity: select the profile with
		// an annotation, and run the workload under harden's shim.
		pol := filepath.Join(dir, "policy.yaml")
		polYAML := "apiVersion: harden.dev/v1alpha1\nkind: Policy\nprofiles:\n" +
			"  - name: recorded\n    extends: baseline\n    seccomp: {profile: " + profile + "}\n" +
			"rules:\n  - name: e2e-recorded\n    match: {annotations: {" + ruleAnnotation + ": recorded}}\n    profile: recorded\n"
		decisions := filepath.Join(dir, "decisions.log")
		cfg := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(pol, []byte(polYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, []byte(in.nodeConfig(pol, decisions, nil)), 0o644); err != nil {
			t.Fatal(err)
		}
		if v := runHardenctl(t, bin, "policy", "validate", pol); v.code != 0 {
			t.Fatalf("hardenctl policy validate: exit %d\n%s%s", v.code, v.stdout, v.stderr)
		}
		flags := []string{"--rm", "--runtime-config-path", cfg, "--annotation", ruleAnnotation + "=recorded"}
		id := newID("rec-harden")
		t.Cleanup(func() { removeCtrContainer(t, "default", id) })
		got, err := ctr("default", ctrRunImage(hardenRuntime, flags, recordWorkloadImage, id)...)
		if err != nil {
			t.Fatalf("the workload under harden with the recorded profile: %v\n%s", err, got)
		}
		if got.stdout != ref.stdout {
			t.Errorf("output under harden differs:\ngot:\n%s\nwant:\n%s", got.stdout, ref.stdout)
		}
		dec := createRecord(t, decisions, id)
		if dec.Decision.Rule != "e2e-recorded" || dec.Decision.Profile != "recorded" || !dec.hasChange("seccomp.profile") || !strings.Contains(dec.raw, profile) {
			t.Errorf("decision does not install the recorded profile:\n%s", dec)
		}
		id2 := newID("rec-harden-unshare")
		t.Cleanup(func() { removeCtrContainer(t, "default", id2) })
		r, err := ctr("default", ctrRunImage(hardenRuntime, flags, recordWorkloadImage, id2, "unshare", "-U", "true")...)
		if err == nil || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("unshare -U under harden with the recorded profile: err %v, want EPERM\n%s", err, r)
		}
	})
}

// TestRecordUnderHarden: harden's shim replaces a container's seccomp
// profile with its policy's, recording filter included, so nothing can be
// recorded through it. The filter's listener is never contacted (under the
// runc shim runc refuses to start without it), and hardenctl record
// refuses that runtime up front.
func TestRecordUnderHarden(t *testing.T) {
	requireSuite(t)
	bin := hardenctlRecordBin(t)
	dir := t.TempDir()
	// A recording filter whose listener does not exist.
	f, err := seccomprecord.RecordingProfile(filepath.Join(dir, "nobody.sock"), "x")
	if err != nil {
		t.Fatal(err)
	}
	body, err := seccomprecord.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	rp := filepath.Join(dir, "recording.json")
	if err := os.WriteFile(rp, body, 0o644); err != nil {
		t.Fatal(err)
	}
	seccomp := []string{"--rm", "--seccomp", "--seccomp-profile", rp}

	id := newID("rec-runc-nolistener")
	t.Cleanup(func() { removeCtrContainer(t, "default", id) })
	if r, err := ctr("default", ctrRunArgs(runcRuntime, seccomp, id, "true")...); err == nil || !strings.Contains(r.stderr, "seccomp agent") {
		t.Errorf("runc started a container whose seccomp listener does not exist: %v\n%s", err, r)
	}

	// harden narrows its policy's filter to what the recording filter
	// allowed: every syscall the policy allows stays handed to the
	// recording agent, with its listener, so the runtime fails the same
	// way as plain runc's (and never allows more than the spec's filter).
	id2 := newID("rec-harden-narrowed")
	t.Cleanup(func() { removeCtrContainer(t, "default", id2) })
	if r, err := ctr("default", ctrRunArgs(hardenRuntime, seccomp, id2, "true")...); err == nil || !strings.Contains(r.stderr, "seccomp agent") {
		t.Errorf("harden started a container whose seccomp listener does not exist: %v\n%s", err, r)
	}
	dec := createRecord(t, inst.path("decisions.log"), id2)
	if !strings.Contains(dec.raw, "linux.seccomp.syscalls") {
		t.Errorf("harden did not narrow its filter to the recording filter:\n%s", dec)
	}

	v := runHardenctl(t, bin, append(append([]string{"record", "-o", filepath.Join(dir, "x.json"), "--runtime", hardenRuntime}, recordArgs(t.TempDir())...), inst.image)...)
	if v.code != 2 || !strings.Contains(v.stderr, "never reach the recorder") {
		t.Errorf("hardenctl record --runtime %s: exit %d, want 2 with the reason\n%s", hardenRuntime, v.code, v.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Error("a profile was written")
	}
}

// TestRecordStops covers the two ways a recording ends early: --duration
// stops the container and writes what it did, Ctrl-C removes it and
// writes nothing. Neither leaves a container or a socket.
func TestRecordStops(t *testing.T) {
	requireSuite(t)
	bin := hardenctlRecordBin(t)
	dir := t.TempDir()

	t.Run("duration", func(t *testing.T) {
		// A long-running workload stopped by --duration; meanwhile a
		// process exec'd into it (ctr tasks exec) gets its own filter and
		// listener fd, and is recorded too.
		sockDir := t.TempDir()
		out := filepath.Join(dir, "sleeper.json")
		args := append([]string{"record", "-o", out, "--json", "--duration", "6s", "--stop-timeout", "5s"}, recordArgs(sockDir)...)
		args = append(args, inst.image, "sh", "-c", `trap "echo stopping; exit 0" TERM; while :; do sleep 0.2; done`)
		cmd := exec.Command(bin, args...)
		var stdout, stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		name := waitRecordTask(t, cmd, done, &stderr)
		if r, err := ctr("default", "tasks", "exec", "--exec-id", "rec-exec", name, "mkdir", "/tmp/made-by-exec"); err != nil {
			t.Errorf("ctr tasks exec into the recorded container: %v\n%s", err, r)
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("hardenctl record did not end:\n%s", stderr.String())
		}
		if err != nil {
			t.Fatalf("hardenctl record: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		var rec recordJSON
		if err := json.Unmarshal([]byte(stdout.String()), &rec); err != nil {
			t.Fatal(err)
		}
		if !rec.Stopped || !strings.Contains(stderr.String(), "stopping") {
			t.Errorf("stopped = %v; the workload's TERM handler did not run?\n%s", rec.Stopped, stderr.String())
		}
		names := rec.names()
		if !slices.Contains(names, "clock_nanosleep") && !slices.Contains(names, "nanosleep") {
			t.Errorf("the sleep loop's syscalls are missing: %v", names)
		}
		if len(rec.Sessions) != 2 || !slices.ContainsFunc([]string{"mkdir", "mkdirat"}, func(n string) bool { return slices.Contains(names, n) }) {
			t.Errorf("the exec'd process was not recorded: %d sessions, syscalls %v", len(rec.Sessions), names)
		}
		if _, err := os.Stat(out); err != nil {
			t.Error(err)
		}
		assertNoRecordLeft(t, sockDir)
	})

	t.Run("interrupt", func(t *testing.T) {
		sockDir := t.TempDir()
		out := filepath.Join(dir, "interrupted.json")
		args := append([]string{"record", "-o", out}, recordArgs(sockDir)...)
		cmd := exec.Command(bin, append(args, inst.image, "sleep", inst.token)...)
		var stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitRecordTask(t, cmd, done, &stderr)
		_ = cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("hardenctl record did not end after SIGINT:\n%s", stderr.String())
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "no profile written") {
			t.Errorf("after SIGINT: %v, want exit 1 saying no profile was written\n%s", err, stderr.String())
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a profile was written after SIGINT")
		}
		assertNoRecordLeft(t, sockDir)
	})
}

// lockedBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitRecordTask waits until the container of a running hardenctl record
// has a task, remembers its name for teardown's checks and returns it.
func waitRecordTask(t *testing.T, cmd *exec.Cmd, done <-chan error, stderr *lockedBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`as container (harden-record-[0-9a-f]+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			rememberID(m[1])
			if r, err := ctr("default", "tasks", "ls"); err == nil {
				for _, line := range strings.Split(r.stdout, "\n") {
					if f := strings.Fields(line); len(f) >= 3 && f[0] == m[1] && f[2] == "RUNNING" {
						return m[1]
					}
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("hardenctl record ended before its container ran: %v\n%s", err, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("the container did not start within 60s:\n%s", stderr.String())
		}
	}
}
