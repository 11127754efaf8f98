package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/record"
)

func parseRecord(args ...string) (recordOptions, error) {
	c := &cli{stdout: io.Discard, stderr: io.Discard}
	fs := flag.NewFlagSet("hardenctl record", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseRecordArgs(c, cmdRecord, fs, args)
}

func TestRecordArgs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	def := recordOptions{
		output: "/p/app.json", namespace: "default", runtime: "io.containerd.runc.v2", stopTimeout: 10 * time.Second,
		name: "recorded-app", image: "busybox", args: []string{},
	}
	with := func(f func(*recordOptions)) recordOptions {
		o := def
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name string
		args []string
		want recordOptions
		err  string // usage error containing this
	}{
		{name: "defaults", args: []string{"-o", "/p/app.json", "busybox"}, want: def},
		{name: "command with its own flags", args: []string{"--output", "/p/app.json", "busybox", "sh", "-c", "ls -l /", "--json"},
			want: with(func(o *recordOptions) { o.args = []string{"sh", "-c", "ls -l /", "--json"} })},
		{name: "-- before the image", args: []string{"-o", "/p/app.json", "--", "busybox", "-x"},
			want: with(func(o *recordOptions) { o.args = []string{"-x"} })},
		{name: "relative output", args: []string{"-o", "rel/x y.json", "busybox"},
			want: with(func(o *recordOptions) { o.output, o.name = filepath.Join(wd, "rel/x y.json"), "recorded-x-y" })},
		{name: "everything", args: []string{"-o", "/p/app.json", "--ctr", "/usr/bin/ctr", "--address", "/c.sock", "--namespace", "k8s.io",
			"--runtime", "io.containerd.runc.v2", "--run-flag=--env=A=1", "--run-flag", "--user=1000", "--duration", "1m", "--stop-timeout", "2s",
			"--socket-dir", "/tmp", "--without-nnp", "--print-policy", "--name", "app", "--json", "busybox", "/app", "--selftest"},
			want: with(func(o *recordOptions) {
				o.ctr, o.address, o.namespace, o.duration, o.stopTimeout, o.socketDir = "/usr/bin/ctr", "/c.sock", "k8s.io", time.Minute, 2*time.Second, "/tmp"
				o.runFlags = []string{"--env=A=1", "--user=1000"}
				o.withoutNNP, o.printPolicy, o.name, o.json, o.args = true, true, "app", true, []string{"/app", "--selftest"}
			})},

		{name: "no output", args: []string{"busybox"}, err: "-o FILE is required"},
		{name: "no image", args: []string{"-o", "x.json"}, err: "name the IMAGE"},
		{name: "flag after -- as image", args: []string{"-o", "x.json", "--", "-x"}, err: "looks like a flag"},
		{name: "harden runtime", args: []string{"-o", "x.json", "--runtime", "io.containerd.harden.v2", "busybox"}, err: "never reach the recorder"},
		{name: "seccomp run flag", args: []string{"-o", "x.json", "--run-flag=--seccomp-profile=/x", "busybox"}, err: "sets the seccomp profile itself"},
		{name: "privileged run flag", args: []string{"-o", "x.json", "--run-flag", "--privileged", "busybox"}, err: "sets the seccomp profile itself"},
		{name: "negative duration", args: []string{"-o", "x.json", "--duration", "-1s", "busybox"}, err: "--duration"},
		{name: "zero stop timeout", args: []string{"-o", "x.json", "--stop-timeout", "0s", "busybox"}, err: "--stop-timeout"},
		{name: "empty namespace", args: []string{"-o", "x.json", "--namespace", "", "busybox"}, err: "--namespace"},
		{name: "unknown flag", args: []string{"-o", "x.json", "--rm", "busybox"}, err: "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRecord(tc.args...)
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
	if _, err := parseRecord("-h"); err != errHelp {
		t.Errorf("-h: %v, want errHelp", err)
	}
}

// TestRecordPolicy: the policy --print-policy prints loads, and its
// profile installs the recorded file.
func TestRecordPolicy(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "app.json")
	prof, err := record.Profile([]string{"openat", "execve"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := record.WriteProfile(out, prof); err != nil {
		t.Fatal(err)
	}
	o, err := parseRecord("-o", out, "registry.example/app:1.2")
	if err != nil {
		t.Fatal(err)
	}
	text, err := recordPolicy(o, "harden-record-1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := profiles.Parse([]byte(text))
	if err != nil {
		t.Fatalf("printed policy does not load: %v\n%s", err, text)
	}
	if len(c.Policy.Rules) != 1 || c.Policy.Rules[0].Profile != "recorded-app" || !slices.Equal(c.Policy.Rules[0].Match.Images, []string{"registry.example/app:1.2"}) {
		t.Errorf("rule = %+v", c.Policy.Rules)
	}
	if p := c.Policy.Profiles; len(p) != 1 || p[0].Seccomp == nil || p[0].Seccomp.Profile != out || p[0].Extends != profiles.Baseline {
		t.Errorf("profile = %+v", p)
	}
	// A profile that harden would not load is not printed as if it did.
	if err := os.Remove(out); err != nil {
		t.Fatal(err)
	}
	if _, err := recordPolicy(o, "harden-record-1"); err == nil {
		t.Error("a policy naming a missing file was printed")
	}
}

func TestRecordReport(t *testing.T) {
	res := record.Result{
		Syscalls: []record.Syscall{{Name: "execve", Count: 2, Runtime: true, Workload: true}, {Name: "openat", Count: 9, Workload: true}},
		Sessions: []record.Session{{ContainerID: "c", Pid: 1, Notifications: 11}},
	}
	prof, err := record.Profile(res.Names(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := parseRecord("-o", "/x/app.json", "img", "cmd")
	rep := newRecordReport(o, &recording{name: "c", res: res, elapsed: 1500 * time.Millisecond}, prof)
	if rep.Notifications != 11 || rep.Duration != "1.5s" || !slices.Equal(rep.Command, []string{"cmd"}) {
		t.Errorf("report = %+v", rep)
	}
	want := slices.Clone(record.AlwaysAllowed)
	slices.Sort(want)
	if !slices.Equal(rep.Added, want) {
		t.Errorf("added = %v, want %v", rep.Added, want)
	}
	if len(rep.Allowed) != len(want)+2 || !slices.Contains(rep.Allowed, "openat") {
		t.Errorf("allowed = %v", rep.Allowed)
	}
	var b strings.Builder
	rep.print(&cli{stdout: &b})
	for _, s := range []string{"2 syscalls in 11 notifications", "runtime   1", "workload  2", "Wrote /x/app.json"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, b.String())
		}
	}
}

// TestRecordFailsCleanly: what can be checked before running anything is,
// with the reason, and nothing is written.
func TestRecordFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.json")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no such directory", []string{"record", "-o", filepath.Join(dir, "nope", "p.json"), "img"}, 1, "does not exist"},
		{"no ctr", []string{"record", "-o", out, "--ctr", filepath.Join(dir, "ctr"), "img"}, 1, "not an executable file"},
		{"harden runtime", []string{"record", "-o", out, "--runtime", "io.containerd.harden.v2", "img"}, 2, "record under the plain runc shim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := hardenctl(t, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	if err := os.WriteFile(out, []byte("{}"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o666); err != nil {
		t.Fatal(err)
	}
	if r := hardenctl(t, "", "record", "-o", out, "img"); r.code != 1 || !strings.Contains(r.stderr, "harden would refuse it") {
		t.Errorf("group-writable target: exit %d %q", r.code, r.stderr)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("files in %s: %v", dir, left)
	}
}
