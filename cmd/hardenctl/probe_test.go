package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/probe")

// parseProbe runs parseProbeArgs as dispatch would.
func parseProbe(args ...string) (probeOptions, error) {
	c := &cli{stdout: io.Discard, stderr: io.Discard}
	fs := flag.NewFlagSet("hardenctl probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseProbeArgs(c, cmdProbe, fs, args)
}

func TestProbeArgs(t *testing.T) {
	def := probeOptions{engine: "containerd", namespace: "default", timeout: 2 * time.Minute, image: "busybox"}
	with := func(f func(*probeOptions)) probeOptions {
		o := def
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		args []string
		want probeOptions
		err  string // usage error containing this
	}{
		{name: "defaults", args: []string{"busybox"}, want: def},
		{name: "harden runtime, flags after the image", args: []string{"busybox", "--runtime", "io.containerd.harden.v2", "--fail-open", "--json"},
			want: with(func(o *probeOptions) { o.runtime, o.failOpen, o.json = "io.containerd.harden.v2", true, true })},
		{name: "containerd in full", args: []string{"--address", "/tmp/c.sock", "--namespace", "k8s.io", "--user", "1000:1000",
			"--probe", "./p", "--cli", "/usr/bin/ctr", "--timeout", "30s", "--run-flag", "--runc-root=/tmp/r", "--run-flag=--fifo-dir=/tmp/f", "busybox"},
			want: with(func(o *probeOptions) {
				o.address, o.namespace, o.user, o.probe, o.cli, o.timeout = "/tmp/c.sock", "k8s.io", "1000:1000", "./p", "/usr/bin/ctr", 30*time.Second
				o.runFlags = []string{"--runc-root=/tmp/r", "--fifo-dir=/tmp/f"}
			})},
		{name: "docker has no namespace", args: []string{"--engine", "docker", "--runtime", "harden", "busybox"},
			want: with(func(o *probeOptions) { o.engine, o.runtime, o.namespace = "docker", "harden", "" })},
		{name: "cri", args: []string{"--engine", "cri", "--runtime-handler", "harden", "--namespace", "payments", "--user", "1000", "busybox"},
			want: with(func(o *probeOptions) { o.engine, o.handler, o.namespace, o.user = "cri", "harden", "payments", "1000" })},
		{name: "after --", args: []string{"--json", "--", "busybox"}, want: with(func(o *probeOptions) { o.json = true })},

		{name: "no image", args: nil, err: "name one image (got 0 arguments)"},
		{name: "two images", args: []string{"a", "b"}, err: "name one image (got 2 arguments)"},
		{name: "unknown engine", args: []string{"--engine", "podman", "busybox"}, err: `--engine "podman"`},
		{name: "cri takes a handler", args: []string{"--engine", "cri", "--runtime", "x", "busybox"}, err: "--runtime-handler"},
		{name: "handler only for cri", args: []string{"--runtime-handler", "harden", "busybox"}, err: "--runtime-handler is for --engine cri"},
		{name: "docker namespace", args: []string{"--engine", "docker", "--namespace", "x", "busybox"}, err: "--namespace is for containerd and cri"},
		{name: "cri run flags", args: []string{"--engine", "cri", "--run-flag", "--privileged", "busybox"}, err: "--run-flag is for ctr run and docker run"},
		{name: "user name", args: []string{"--user", "nobody", "busybox"}, err: `--user "nobody"`},
		{name: "user gid only", args: []string{"--user", ":10", "busybox"}, err: "--user"},
		{name: "zero timeout", args: []string{"--timeout", "0s", "busybox"}, err: "--timeout must be positive"},
		{name: "bad timeout", args: []string{"--timeout", "soon", "busybox"}, err: "invalid value"},
		{name: "unknown flag", args: []string{"--privileged", "busybox"}, err: "flag provided but not defined"},
		{name: "image like a flag", args: []string{"--", "-x"}, err: "looks like a flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProbe(tc.args...)
			if tc.err != "" {
				var ue *usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want a usage error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := parseProbe("-h"); err != errHelp {
		t.Errorf("-h: %v, want errHelp", err)
	}
}

// TestProbeCommandLines checks what each engine's CLI is asked to do.
func TestProbeCommandLines(t *testing.T) {
	o, err := parseProbe("--address", "/c.sock", "--namespace", "ns", "--runtime", "io.containerd.harden.v2", "--user", "1000:1001",
		"--run-flag", "--runc-root=/r", "img")
	if err != nil {
		t.Fatal(err)
	}
	ctr := newProbeEngine(o, "harden-probe-1", "/tmp/s/harden-probe", "/tmp/s").(*ctrEngine)
	assertArgs(t, "ctr global", ctr.cli.global, "--address /c.sock --namespace ns")
	assertArgs(t, "ctr run", ctr.runArgs(), "run --rm --runtime io.containerd.harden.v2 --user 1000:1001 "+
		"--mount type=bind,src=/tmp/s/harden-probe,dst=/harden-probe,options=rbind:ro "+
		"--mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev "+
		"--runc-root=/r img harden-probe-1 /harden-probe")

	o, _ = parseProbe("--engine", "docker", "--address", "/d.sock", "--runtime", "harden", "--run-flag", "--privileged", "img")
	docker := newProbeEngine(o, "harden-probe-2", "/tmp/s/harden-probe", "/tmp/s").(*dockerEngine)
	assertArgs(t, "docker global", docker.cli.global, "--host unix:///d.sock")
	assertArgs(t, "docker run", docker.runArgs(), "run --rm --name harden-probe-2 --runtime harden "+
		"--volume /tmp/s/harden-probe:/harden-probe:ro --privileged img /harden-probe")
	o, _ = parseProbe("--engine", "docker", "img")
	docker = newProbeEngine(o, "harden-probe-2", "/b", "/").(*dockerEngine)
	assertArgs(t, "docker global, default host", docker.cli.global, "")
	assertArgs(t, "docker run, defaults", docker.runArgs(), "run --rm --name harden-probe-2 --volume /b:/harden-probe:ro img /harden-probe")

	o, _ = parseProbe("--engine", "cri", "--address", "unix:///c.sock", "--runtime-handler", "harden", "--namespace", "payments", "--user", "1000:1001", "img")
	cri := newProbeEngine(o, "harden-probe-3", "/tmp/s/harden-probe", "/tmp/s").(*criEngine)
	assertArgs(t, "crictl global", cri.cli.global, "--runtime-endpoint unix:///c.sock --image-endpoint unix:///c.sock")
	assertJSON(t, "pod config", cri.podConfig(), `{"linux":{"security_context":{"run_as_group":{"value":1001},"run_as_user":{"value":1000}}},
		"log_directory":"/tmp/s/logs","metadata":{"attempt":0,"name":"harden-probe-3","namespace":"payments","uid":"harden-probe-3"}}`)
	assertJSON(t, "container config", cri.containerConfig(), `{"command":["/harden-probe"],"image":{"image":"img"},
		"linux":{"security_context":{"run_as_group":{"value":1001},"run_as_user":{"value":1000}}},"log_path":"probe.log",
		"metadata":{"name":"probe"},"mounts":[{"container_path":"/harden-probe","host_path":"/tmp/s/harden-probe","readonly":true}]}`)
	o, _ = parseProbe("--engine", "cri", "img")
	cri = newProbeEngine(o, "n", "/b", "/d").(*criEngine)
	assertArgs(t, "crictl global, default endpoint", cri.cli.global, "")
	assertJSON(t, "no user", cri.securityContext(), `{}`)
}

func assertArgs(t *testing.T, what string, got []string, want string) {
	t.Helper()
	if strings.Join(got, " ") != want {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, " "), want)
	}
}

func assertJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad want: %v", what, err)
	}
	wb, _ := json.Marshal(w)
	if string(g) != string(wb) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, wb)
	}
}

// TestProbeReport renders testdata/probe/<case>/probe.jsonl (what a
// container printed) as the table and as --json, against golden files;
// `go test ./cmd/hardenctl -run TestProbeReport -update` rewrites them.
func TestProbeReport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		width int
		color bool
	}{
		{name: "baseline", args: []string{"--runtime", "io.containerd.harden.v2", "docker.io/library/busybox:harden-test"}},
		{name: "ctr-default", args: []string{"--address", "/run/containerd/containerd.sock", "--user", "0:0", "busybox"}, width: 160},
		{name: "partial", args: []string{"--engine", "cri", "--runtime-handler", "harden", "--namespace", "payments", "busybox"}, width: 100, color: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "probe", tc.name)
			in, err := os.ReadFile(filepath.Join(dir, "probe.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			o, err := parseProbe(tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			o.probe = "/usr/local/bin/harden-probe"
			lines, other := splitProbeOutput(in)
			rep := newProbeReport(o, "harden-probe-0123456789ab", lines, other)

			var text bytes.Buffer
			rep.print(&cli{stdout: &text, color: tc.color, width: tc.width})
			golden(t, filepath.Join(dir, "out.txt"), text.Bytes())
			var js bytes.Buffer
			if err := writeJSON(&js, rep); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "out.json"), js.Bytes())

			// Every known vector appears exactly once, in the probe's order.
			vs := probe.Vectors()
			for i, v := range vs {
				if rep.Vectors[i].Vector != v.ID {
					t.Fatalf("row %d is %s, want %s", i, rep.Vectors[i].Vector, v.ID)
				}
			}
			s := rep.Summary
			if s.Open+s.Blocked+s.NotApplicable+s.Missing != s.Total || s.Total != len(rep.Vectors) || len(s.OpenVectors) != s.Open {
				t.Errorf("summary does not add up: %+v with %d rows", s, len(rep.Vectors))
			}
		})
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n%s", file, unifiedDiff(file, "got", splitLines(want), splitLines(got), 2))
	}
}

// TestProbeReportCounts checks the summary of the partial case without the
// golden files: what is missing, unknown, duplicated or not a result.
func TestProbeReportCounts(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "probe", "partial", "probe.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines, other := splitProbeOutput(in)
	rep := newProbeReport(probeOptions{engine: "containerd"}, "x", lines, other)
	s := rep.Summary
	known := len(probe.Vectors())
	if s.Total != known+1 || s.Missing != known-4 || s.Open != 2 || s.Blocked != 2 || s.ProbeErrors != 1 {
		t.Errorf("summary %+v; want %d vectors (one unknown), %d missing, 2 open, 2 blocked, 1 probe error", s, known+1, known-4)
	}
	last := rep.Vectors[len(rep.Vectors)-1]
	if last.Vector != "future.vector" || last.control() != "?" {
		t.Errorf("an unknown vector is listed last without metadata: %+v", last)
	}
	if len(rep.Other) != 3 {
		t.Errorf("other lines %q: want the entrypoint's line, the duplicate and the line that is not a result", rep.Other)
	}
}

func TestStageProbe(t *testing.T) {
	src := filepath.Join(t.TempDir(), "harden-probe")
	if err := os.WriteFile(src, []byte("\x7fELF not really"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir, bin, err := stageProbe(src)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if filepath.Dir(bin) != dir || !strings.HasPrefix(filepath.Base(dir), "harden-probe.") {
		t.Errorf("staged at %s in %s", bin, dir)
	}
	if b, _ := os.ReadFile(bin); string(b) != "\x7fELF not really" {
		t.Errorf("staged copy differs: %q", b)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o755 | os.ModeDir, bin: 0o555} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, mode)
		}
	}
}

// TestFindProbe: a static harden-probe is accepted; a dynamic program or
// something that is not a program is refused with the way out.
func TestFindProbe(t *testing.T) {
	static := filepath.Join(t.TempDir(), "harden-probe")
	build := exec.Command("go", "build", "-o", static, "../harden-probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build harden-probe: %v\n%s", err, out)
	}
	if got, err := findProbe(static); err != nil || got != static {
		t.Errorf("findProbe(static) = %q, %v", got, err)
	}
	// hardenctl itself links libseccomp: dynamic.
	if _, err := findProbe(binary); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("findProbe(hardenctl) = %v, want a refusal naming dynamic linking", err)
	}
	text := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := findProbe(text); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("findProbe(script) = %v", err)
	}
	if _, err := findProbe(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("findProbe(missing) = %v", err)
	}
}

// TestProbeFailsCleanly runs the binary where no container can start: the
// errors name the problem and the exit status is 1 (2 for usage).
func TestProbeFailsCleanly(t *testing.T) {
	r := hardenctl(t, "", "probe")
	r.want(t, 2)
	r.has(t, "stderr", "hardenctl: probe: name one image", "Run 'hardenctl help probe' for usage.")

	r = hardenctl(t, "", "probe", "--probe", binary, "busybox")
	r.want(t, 1)
	r.has(t, "stderr", "dynamically linked")

	static := filepath.Join(t.TempDir(), "harden-probe")
	build := exec.Command("go", "build", "-o", static, "../harden-probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build harden-probe: %v\n%s", err, out)
	}
	r = hardenctl(t, "", "probe", "--probe", static, "--cli", filepath.Join(t.TempDir(), "ctr"), "busybox")
	r.want(t, 1)
	r.has(t, "stderr", "--cli", "is not an executable file")

	// An engine CLI that fails at once: its message is shown, nothing is
	// printed on stdout, and no staged copy is left behind.
	tmp := t.TempDir()
	cmd := exec.Command(binary, "probe", "--probe", static, "--cli", "/bin/false", "busybox")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || stdout.Len() != 0 {
		t.Errorf("probe with a failing CLI: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	// /bin/false cannot list containers either, so hardenctl cannot
	// tell whether one is left, and says so.
	if !strings.Contains(stderr.String(), "hardenctl: false run: exit status 1; probe: container harden-probe-") ||
		!strings.Contains(stderr.String(), "may be left: false containers: exit status 1") {
		t.Errorf("stderr does not say which commands failed:\n%s", stderr.String())
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "harden-probe.*")); len(left) > 0 {
		t.Errorf("staged probe left: %v", left)
	}
}
