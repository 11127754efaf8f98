package runcwrap

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// FuzzParseArgs checks Parse on any command line (no panic, consistent
// indices, harden's flags never reach the runtime) and that a create or run
// is always recognised, with its container ID and bundle, whatever mix of
// flags, flag spellings and separators the fuzzer builds around it.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"create c1", "--root /r --log /l --log-format json create --bundle /b --pid-file /p c1",
		"-root /r run -d -bundle=/b c1", "exec -t c1 sh -c x", "exec -p /p.json c1",
		"update -r - c1", "update --memory 1g c1", "--x create state c1", "--harden-config /c create c1",
		"create c1 --bundle /b", "create --bundle -- c1", "kill c1 KILL", "--debug false create c1",
	} {
		f.Add([]byte(strings.ReplaceAll(seed, " ", "\x00")))
	}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAnyArgv(t, strings.Split(string(data), "\x00"))
		checkGenerated(t, data)
	})
}

func checkAnyArgv(t *testing.T, argv []string) {
	inv, err := Parse(argv)
	if inv == nil {
		t.Fatalf("Parse(%q) returned no invocation", argv)
	}
	if err != nil {
		return
	}
	if inv.Sub != "" && (inv.SubIndex < 0 || inv.SubIndex >= len(argv) || argv[inv.SubIndex] != inv.Sub) {
		t.Fatalf("Parse(%q): SubIndex %d for %q", argv, inv.SubIndex, inv.Sub)
	}
	for i, idx := range inv.ArgIndex {
		if idx <= inv.SubIndex || idx >= len(argv) || argv[idx] != inv.Args[i] {
			t.Fatalf("Parse(%q): ArgIndex %v", argv, inv.ArgIndex)
		}
	}
	for _, fl := range append(slices.Clone(inv.Global), inv.Flags...) {
		if fl.Index < 0 || fl.Index >= len(argv) || fl.ValueIndex >= len(argv) {
			t.Fatalf("Parse(%q): flag %+v out of range", argv, fl)
		}
	}
	if hardened(inv.Sub) && inv.Err == nil && inv.ID() == "" && !inv.ShowsHelp() {
		if inv.Sub != "exec" || len(inv.Args) == 0 {
			t.Fatalf("Parse(%q): %s without a container ID and no error", argv, inv.Sub)
		}
	}
	out := inv.apply(newRewrite())
	removed := 0
	for _, fl := range inv.Global {
		if fl.Name == flagHardenConfig || fl.Name == flagHardenRuntime {
			removed++
			if fl.ValueIndex >= 0 {
				removed++
			}
		}
	}
	if len(out) != len(argv)-removed {
		t.Fatalf("apply(%q) = %q: removed %d arguments, want %d", argv, out, len(argv)-len(out), removed)
	}
	// The runtime's command line parses to the same subcommand.
	again, err := Parse(out)
	if err == nil && hardened(inv.Sub) && inv.Err == nil && (again.Sub != inv.Sub || !slices.Equal(again.Args, inv.Args)) {
		t.Fatalf("apply(%q) = %q parses as %q %q, not %q %q", argv, out, again.Sub, again.Args, inv.Sub, inv.Args)
	}
}

// gen draws choices from fuzz data.
type gen struct {
	data []byte
	n    int
}

func (g *gen) next(max int) int {
	if max <= 1 {
		return 0
	}
	b := byte(g.n * 7)
	if g.n < len(g.data) {
		b = g.data[g.n]
	}
	g.n++
	return int(b) % max
}

func (g *gen) word() string {
	const alphabet = "abcz09/._=:"
	n := 1 + g.next(6)
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[g.next(len(alphabet))])
	}
	return b.String()
}

// dashes picks "-" or "--" (runc takes both for long flags).
func (g *gen) dashes() string { return []string{"-", "--"}[g.next(2)] }

// valued writes a value flag in one of its spellings.
func (g *gen) valued(name, value string) []string {
	if value == "" || g.next(2) == 0 {
		return []string{g.dashes() + name + "=" + value}
	}
	return []string{g.dashes() + name, value}
}

// checkGenerated builds a create or run command line out of the data and
// checks Parse finds it.
func checkGenerated(t *testing.T, data []byte) {
	g := &gen{data: data}
	var argv []string
	globals := g.next(6)
	for range globals {
		switch g.next(9) {
		case 0:
			argv = append(argv, g.valued("root", "/"+g.word())...)
		case 1:
			argv = append(argv, g.valued("log", "/"+g.word())...)
		case 2:
			argv = append(argv, g.valued("log-format", []string{"json", "text"}[g.next(2)])...)
		case 3:
			argv = append(argv, g.dashes()+[]string{"debug", "systemd-cgroup"}[g.next(2)])
		case 4:
			argv = append(argv, g.dashes()+[]string{"debug", "systemd-cgroup"}[g.next(2)]+"="+[]string{"true", "false", "1", "0"}[g.next(4)])
		case 5:
			argv = append(argv, g.valued([]string{"rootless", "criu"}[g.next(2)], g.word())...)
		case 6:
			argv = append(argv, g.valued([]string{flagHardenConfig, flagHardenRuntime}[g.next(2)], g.word())...)
		case 7:
			// A flag runc does not know, in a spelling any runtime reads
			// the same way.
			argv = append(argv, "--unknown-"+g.word()+"="+g.word())
		case 8:
			// A flag runc does not know, followed by a known flag.
			argv = append(argv, "--oci-seccomp")
			argv = append(argv, g.valued("root", "/"+g.word())...)
		}
	}
	if g.next(4) == 0 {
		argv = append(argv, "--")
	}
	sub := []string{"create", "run", "restore"}[g.next(3)]
	argv = append(argv, sub)

	bundleName := []string{"bundle", "b"}[g.next(2)]
	var flags [][]string // each a flag with its value; the id goes between them
	bundle := ""
	nflags := g.next(8)
	for range nflags {
		switch g.next(5) {
		case 0:
			v := ""
			if g.next(5) != 0 {
				v = "/" + g.word()
			}
			bundle = v
			flags = append(flags, g.valued(bundleName, v))
		case 1:
			flags = append(flags, g.valued("pid-file", "/"+g.word()))
		case 2:
			flags = append(flags, g.valued("console-socket", "/"+g.word()))
		case 3:
			bools := map[string][]string{"create": {"no-pivot", "no-new-keyring"}, "run": {"no-pivot", "detach", "keep", "no-subreaper"}, "restore": {"no-pivot", "detach", "shell-job"}}[sub]
			name := bools[g.next(len(bools))]
			if g.next(2) == 0 {
				flags = append(flags, []string{g.dashes() + name})
			} else {
				flags = append(flags, []string{g.dashes() + name + "=" + []string{"true", "false"}[g.next(2)]})
			}
		case 4:
			if sub == "restore" {
				flags = append(flags, g.valued("image-path", "/"+g.word()))
			} else {
				flags = append(flags, g.valued("preserve-fds", fmt.Sprint(g.next(9))))
			}
		}
	}
	id := "c" + strings.ReplaceAll(g.word(), "=", "")
	// The id goes first, last (maybe after "--"), or after a flag that
	// cannot take it as a value (runc's reordering would swallow an id
	// that follows a bare boolean flag).
	pos := len(flags)
	if p := g.next(len(flags) + 2); p <= len(flags) && (p == 0 || len(flags[p-1]) == 2 || strings.Contains(flags[p-1][0], "=")) {
		pos = p
	}
	for i, fl := range flags {
		if i == pos {
			argv = append(argv, id)
		}
		argv = append(argv, fl...)
	}
	if pos == len(flags) {
		if g.next(3) == 0 {
			argv = append(argv, "--")
		}
		argv = append(argv, id)
	}

	inv, err := Parse(argv)
	if err != nil {
		t.Fatalf("Parse(%q): %v", argv, err)
	}
	if inv.Sub != sub || inv.Err != nil {
		t.Fatalf("Parse(%q) = %q (err %v), want %q", argv, inv.Sub, inv.Err, sub)
	}
	if inv.ID() != id || len(inv.Args) != 1 {
		t.Fatalf("Parse(%q): args %q, want [%q]", argv, inv.Args, id)
	}
	if got, _ := inv.Value("bundle"); got != bundle {
		t.Fatalf("Parse(%q): bundle %q, want %q", argv, got, bundle)
	}
	if inv.ShowsHelp() {
		t.Fatalf("Parse(%q) shows help", argv)
	}
}
