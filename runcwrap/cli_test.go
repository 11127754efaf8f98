package runcwrap

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	type want struct {
		sub    string
		args   []string
		values map[string]string // subcommand flag -> last value
		global map[string]string // global flag -> last value
		err    string            // substring of Invocation.Err
		help   bool
	}
	for _, tc := range []struct {
		name string
		argv string // split on spaces; "_" stands for an empty argument
		want want
	}{
		// create and run
		{"create minimal", "create c1", want{sub: "create", args: []string{"c1"}}},
		{"create engine style", "--root /run/r --log /b/log.json --log-format json create --bundle /b --pid-file /b/init.pid c1",
			want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b", "pid-file": "/b/init.pid"}, global: map[string]string{"root": "/run/r", "log": "/b/log.json", "log-format": "json"}}},
		{"--flag=value", "--root=/r create --bundle=/b --pid-file=/p c1",
			want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b", "pid-file": "/p"}, global: map[string]string{"root": "/r"}}},
		{"legacy single-dash long flags", "-root /r -log-format=json create -bundle /b -pid-file=/p c1",
			want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b", "pid-file": "/p"}, global: map[string]string{"root": "/r", "log-format": "json"}}},
		{"short bundle", "create -b /b c1", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b"}}},
		{"short bundle with =", "create -b=/b c1", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b"}}},
		{"flags after the id are reordered", "create c1 --bundle /b --no-pivot", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b", "no-pivot": "true"}}},
		{"every create flag", "create --console-socket /s --pidfd-socket /f --pid-file /p --no-pivot --no-new-keyring --preserve-fds 3 -b /b c1",
			want{sub: "create", args: []string{"c1"}, values: map[string]string{"console-socket": "/s", "pidfd-socket": "/f", "pid-file": "/p", "no-pivot": "true", "no-new-keyring": "true", "preserve-fds": "3", "bundle": "/b"}}},
		{"run detached", "run -d --keep --no-subreaper --bundle /b c1", want{sub: "run", args: []string{"c1"}, values: map[string]string{"detach": "true", "keep": "true", "no-subreaper": "true", "bundle": "/b"}}},
		{"a bool flag swallows the id when reordering", "run -d c1 --bundle /b", want{sub: "run", err: "exactly 1 argument"}},
		{"same form twice keeps the last", "create --bundle /a --bundle /b c1", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b"}}},
		{"two forms of one flag", "create --bundle /a -b /b c1", want{sub: "create", err: "two forms"}},
		{"-- ends the flags", "create --bundle /b -- c1", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "/b"}}},
		{"-- as a flag's value", "create --bundle -- c1", want{sub: "create", args: []string{"c1"}, values: map[string]string{"bundle": "--"}}},
		{"global --", "--root /r -- create c1", want{sub: "create", args: []string{"c1"}, global: map[string]string{"root": "/r"}}},
		{"bool global does not take a value", "--systemd-cgroup --debug create c1", want{sub: "create", args: []string{"c1"}, global: map[string]string{"systemd-cgroup": "true", "debug": "true"}}},
		{"bool global =false", "--debug=false create c1", want{sub: "create", args: []string{"c1"}, global: map[string]string{"debug": "false"}}},
		{"bool global then a word is the subcommand", "--debug false create c1", want{sub: "false"}},
		{"rootless and criu take values", "--rootless true --criu /usr/sbin/criu run c1", want{sub: "run", args: []string{"c1"}, global: map[string]string{"rootless": "true", "criu": "/usr/sbin/criu"}}},
		{"missing subcommand flag value", "create c1 --bundle", want{sub: "create", values: map[string]string{"bundle": "c1"}, err: "exactly 1 argument"}},
		{"missing value at the end", "create --pid-file", want{sub: "create", err: "needs an argument"}},
		{"missing global value", "--root", want{}},
		{"unknown create flag", "create --config /x.json c1", want{sub: "create", err: "not defined: -config"}},
		{"crun's -f", "create -f /x.json c1", want{sub: "create", err: "not defined: -f"}},
		{"bad syntax", "create ---bundle /b c1", want{sub: "create", err: "bad flag syntax"}},
		{"no id", "create --bundle /b", want{sub: "create", err: "exactly 1 argument"}},
		{"two ids", "run c1 c2", want{sub: "run", err: "exactly 1 argument"}},
		{"bool with bad value", "run --detach=maybe c1", want{sub: "run", err: "invalid boolean"}},
		{"help", "create --help", want{sub: "create", help: true, err: "exactly 1"}},
		{"short help", "run -h c1", want{sub: "run", args: []string{"c1"}, help: true}},
		{"global help", "--help create c1", want{sub: "create", args: []string{"c1"}, help: true}},
		{"version", "--version", want{help: true}},
		{"short version", "-v", want{help: true}},
		{"help command", "help create", want{sub: "help", args: []string{"create"}, help: true}},
		{"restore", "restore --image-path /img --work-path /w -d -b /b --lsm-profile apparmor:x c1",
			want{sub: "restore", args: []string{"c1"}, values: map[string]string{"image-path": "/img", "bundle": "/b", "detach": "true", "lsm-profile": "apparmor:x"}}},

		// harden's own flags
		{"harden flags", "--harden-config /etc/h.toml --harden-runtime=crun --root /r create c1",
			want{sub: "create", args: []string{"c1"}, global: map[string]string{"harden-config": "/etc/h.toml", "harden-runtime": "crun", "root": "/r"}}},

		// exec
		{"exec command flags stay the command's", "exec -t c1 sh -c 'echo hi' --cap CAP_SYS_ADMIN",
			want{sub: "exec", args: []string{"c1", "sh", "-c", "'echo", "hi'", "--cap", "CAP_SYS_ADMIN"}, values: map[string]string{"tty": "true"}}},
		{"exec process file", "--root /r exec --process /p.json --detach --pid-file /pid c1",
			want{sub: "exec", args: []string{"c1"}, values: map[string]string{"process": "/p.json", "detach": "true", "pid-file": "/pid"}}},
		{"exec -p=", "exec -p=/p.json c1", want{sub: "exec", args: []string{"c1"}, values: map[string]string{"process": "/p.json"}}},
		{"exec inline flags", "exec --cap CAP_SYS_ADMIN --cap=CAP_NET_RAW -u 1000:1000 -e A=B -e C=D --cwd /tmp --no-new-privs --apparmor x --process-label l --preserve-fds 2 --cgroup cpu:/a --ignore-paused -g 5 c1 id",
			want{sub: "exec", args: []string{"c1", "id"}, values: map[string]string{"cap": "CAP_NET_RAW", "user": "1000:1000", "env": "C=D", "cwd": "/tmp", "no-new-privs": "true", "apparmor": "x", "process-label": "l", "preserve-fds": "2", "cgroup": "cpu:/a", "ignore-paused": "true", "additional-gids": "5"}}},
		{"exec --cap and -c together", "exec --cap CAP_SYS_ADMIN -c CAP_NET_RAW c1 sh", want{sub: "exec", err: "two forms"}},
		{"exec no-new-privs=false", "exec --no-new-privs=false c1 sh", want{sub: "exec", args: []string{"c1", "sh"}, values: map[string]string{"no-new-privs": "false"}}},
		{"exec flags after the id are the command", "exec c1 --user 0 sh", want{sub: "exec", args: []string{"c1", "--user", "0", "sh"}}},
		{"exec no id", "exec --tty", want{sub: "exec", err: "minimum of 1"}},

		// update
		{"update file", "update -r /res.json c1", want{sub: "update", args: []string{"c1"}, values: map[string]string{"resources": "/res.json"}}},
		{"update stdin", "update --resources - c1", want{sub: "update", args: []string{"c1"}, values: map[string]string{"resources": "-"}}},
		{"update inline", "update --memory 1g --memory-swap=2g --pids-limit 100 --cpu-quota 50000 --cpu-period 100000 --cpu-share 512 --cpuset-cpus 0-1 --blkio-weight 300 c1",
			want{sub: "update", args: []string{"c1"}, values: map[string]string{"memory": "1g", "memory-swap": "2g", "pids-limit": "100", "cpu-quota": "50000", "cpu-period": "100000", "cpu-share": "512", "cpuset-cpus": "0-1", "blkio-weight": "300"}}},
		{"update flags after the id", "update c1 --memory 1g", want{sub: "update", args: []string{"c1"}, values: map[string]string{"memory": "1g"}}},
		{"update docker's --cpu-shares is not runc's", "update --cpu-shares 512 c1", want{sub: "update", err: "not defined"}},

		// subcommands harden passes on
		{"state", "--root /r state c1", want{sub: "state", args: []string{"c1"}, global: map[string]string{"root": "/r"}}},
		{"kill", "kill --all c1 KILL", want{sub: "kill", args: []string{"c1", "KILL"}, values: map[string]string{"all": "true"}}},
		{"delete", "delete -f c1", want{sub: "delete", args: []string{"c1"}, values: map[string]string{"force": "true"}}},
		{"ps keeps ps arguments", "ps --format table c1 -ef", want{sub: "ps", args: []string{"c1", "-ef"}, values: map[string]string{"format": "table"}}},
		{"events", "events --interval 1s --stats c1", want{sub: "events", args: []string{"c1"}, values: map[string]string{"interval": "1s", "stats": "true"}}},
		{"list", "list -f json -q", want{sub: "list", values: map[string]string{"format": "json", "quiet": "true"}}},
		{"features", "features", want{sub: "features"}},
		{"spec", "spec --rootless -b /b", want{sub: "spec", values: map[string]string{"rootless": "true", "bundle": "/b"}}},
		{"unknown subcommand", "frobnicate --x c1", want{sub: "frobnicate"}},
		{"nothing", "", want{}},
		{"a dash", "- create c1", want{sub: "-"}},

		// global flags runc does not know (runsc's)
		{"unknown global =value", "--platform=ptrace --root /r create c1", want{sub: "create", args: []string{"c1"}, global: map[string]string{"root": "/r"}}},
		{"unknown global value", "--platform ptrace create c1", want{sub: "create", args: []string{"c1"}}},
		{"unknown global before a flag", "--oci-seccomp --root /r create c1", want{sub: "create", args: []string{"c1"}, global: map[string]string{"root": "/r"}}},
		{"unknown global before the subcommand", "--oci-seccomp create c1", want{sub: "create", args: []string{"c1"}}},
		{"unknown global before run and an unknown word", "--x run c1", want{sub: "run", args: []string{"c1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := split(tc.argv)
			inv, err := Parse(argv)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			w := tc.want
			if inv.Sub != w.sub {
				t.Fatalf("subcommand = %q, want %q", inv.Sub, w.sub)
			}
			if w.sub != "" && inv.Argv[inv.SubIndex] != w.sub {
				t.Fatalf("SubIndex %d points at %q", inv.SubIndex, inv.Argv[inv.SubIndex])
			}
			switch {
			case w.err == "" && inv.Err != nil:
				t.Fatalf("Err = %v", inv.Err)
			case w.err != "" && (inv.Err == nil || !strings.Contains(inv.Err.Error(), w.err)):
				t.Fatalf("Err = %v, want %q", inv.Err, w.err)
			}
			if w.err == "" && !slices.Equal(inv.Args, w.args) {
				t.Fatalf("args = %q, want %q", inv.Args, w.args)
			}
			for k, v := range w.values {
				if got, ok := inv.Value(k); !ok || got != v {
					t.Errorf("--%s = %q (%v), want %q", k, got, ok, v)
				}
			}
			for k, v := range w.global {
				if got, ok := inv.GlobalValue(k); !ok || got != v {
					t.Errorf("global --%s = %q (%v), want %q", k, got, ok, v)
				}
			}
			if inv.ShowsHelp() != w.help {
				t.Errorf("ShowsHelp = %v, want %v", inv.ShowsHelp(), w.help)
			}
			for i, idx := range inv.ArgIndex {
				if inv.Argv[idx] != inv.Args[i] {
					t.Errorf("ArgIndex[%d] = %d points at %q, not %q", i, idx, inv.Argv[idx], inv.Args[i])
				}
			}
		})
	}
}

func TestParseAmbiguous(t *testing.T) {
	for _, argv := range []string{
		"--x state create c1", // --x boolean: state; --x valued: create
		"--x create state c1", // the other way round
		"--x exec run c1",
		"--x create --y run c1",
	} {
		t.Run(argv, func(t *testing.T) {
			if _, err := Parse(split(argv)); !errors.Is(err, ErrAmbiguous) {
				t.Fatalf("err = %v, want ErrAmbiguous", err)
			}
		})
	}
	for _, argv := range []string{
		"--x state kill c1", // neither reading hardens
		"--x create c1",     // the other reading finds the unknown command c1
		"--x create",        // or none
	} {
		t.Run(argv, func(t *testing.T) {
			if _, err := Parse(split(argv)); err != nil {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv string
		edit func(inv *Invocation, r *rewrite)
		want string
	}{
		{"harden flags removed", "--harden-config /c --root /r --harden-runtime crun create c1", nil, "--root /r create c1"},
		{"harden flags with =", "--harden-config=/c -harden-runtime=crun create c1", nil, "create c1"},
		{"drop a cap", "exec --cap CAP_SYS_ADMIN --cap=CAP_KILL c1 sh", func(inv *Invocation, r *rewrite) {
			r.dropFlag(inv.Flags[0])
		}, "exec --cap=CAP_KILL c1 sh"},
		{"set a flag given twice", "update --memory 1g c1 --memory=2g", func(inv *Invocation, r *rewrite) {
			r.set(inv, "memory", "100")
		}, "update --memory=100 c1"},
		{"insert after the subcommand", "--root /r exec -t c1 sh", func(inv *Invocation, r *rewrite) {
			r.insert = append(r.insert, "--no-new-privs")
		}, "--root /r exec --no-new-privs -t c1 sh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse(split(tc.argv))
			if err != nil {
				t.Fatal(err)
			}
			r := newRewrite()
			if tc.edit != nil {
				tc.edit(inv, r)
			}
			if got := strings.Join(inv.apply(r), " "); got != tc.want {
				t.Fatalf("apply = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNamespaceHint(t *testing.T) {
	for _, tc := range []struct{ root, bundle, want string }{
		{"/var/run/docker/runtime-runc/moby", "/run/containerd/io.containerd.runtime.v2.task/moby/abc", "moby"},
		{"/run/docker/runtime-harden/moby", "/somewhere", "moby"},
		{"", "/run/docker/containerd/abc", "moby"},
		{"/run/containerd/runc/k8s.io", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc", "k8s.io"},
		{"/run/containerd/runc/default", "/run/containerd/io.containerd.runtime.v1.linux/default/abc", "default"},
		{"/run/runc", "/var/lib/containers/storage/overlay-containers/abc/userdata", ""},
		{"/run/dockerish", "/tmp/b", ""},
		{"", "/run/containerd/io.containerd.runtime.v2.task/x", ""},
	} {
		if got := namespaceHint(tc.root, tc.bundle); got != tc.want {
			t.Errorf("namespaceHint(%q, %q) = %q, want %q", tc.root, tc.bundle, got, tc.want)
		}
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	out := strings.Split(s, " ")
	for i, a := range out {
		if a == "_" {
			out[i] = ""
		}
	}
	return out
}
