package main

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRunArgs runs hardenctl in process on arbitrary command lines: it must
// answer with exit status 0, 1 or 2 and never panic (run turns a panic
// into "internal error", which fails here). Commands that write or start
// containers (apply, apparmor load, install, uninstall, record, probe) are
// left out, and absolute paths are replaced with a testdata spec, so the
// fuzzer cannot reach devices or FIFOs.
var skipFuzz = map[string]bool{"apply": true, "load": true, "install": true, "uninstall": true, "record": true, "probe": true}

func FuzzRunArgs(f *testing.F) {
	for _, seed := range []string{
		"",
		"help",
		"help diff",
		"version --json",
		"policy validate testdata/policy/good.yaml",
		"policy validate --json -",
		"policy show --default --resolved",
		"diff --spec testdata/spec/netraw.json --unified",
		"diff --spec testdata/spec/privileged.json --json",
		"diff --spec - --output=patch",
		"diff --spec testdata/spec/netraw.json --exec-process testdata/spec/exec-process.json",
		"diff --spec testdata/spec/netraw.json --update testdata/spec/update-pids.json --json",
		"explain --spec testdata/spec/future-fields.json --image x --namespace k8s.io",
		"diff --bundle testdata --spec x",
		"apparmor show --json harden-x",
		"policy -h",
		"diff -- --spec",
	} {
		f.Add(seed, `{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`)
	}
	f.Fuzz(func(t *testing.T, line, stdin string) {
		args := strings.Fields(line)
		for i, a := range args {
			if skipFuzz[a] {
				return
			}
			if strings.HasPrefix(a, "/") || strings.Contains(a, "=/") || strings.Contains(a, "..") {
				args[i] = "testdata/spec/netraw.json"
			}
		}
		var out, errb bytes.Buffer
		code := run(args, strings.NewReader(stdin), &out, &errb)
		if code < 0 || code > 2 {
			t.Fatalf("%q: exit status %d", args, code)
		}
		if strings.Contains(errb.String(), "internal error") {
			t.Fatalf("%q: %s", args, errb.String())
		}
		if code != 0 && !strings.HasPrefix(errb.String(), "hardenctl: ") && !strings.Contains(errb.String(), "\nhardenctl: ") {
			t.Fatalf("%q: exit status %d without a hardenctl: error:\n%s", args, code, errb.String())
		}
	})
}
