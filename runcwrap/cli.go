package runcwrap

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// This file mirrors runc v1.4.0's command line (main.go, create.go, run.go,
// exec.go, update.go, restore.go, ... in github.com/opencontainers/runc
// v1.4.0) as parsed by github.com/urfave/cli v1.22.17 on top of Go's flag
// package. Being exact matters: a value-taking flag harden took for a
// boolean would shift the positional arguments, and the container ID or the
// command of an exec would be read wrong.
//
// How runc parses, and so how Parse does:
//   - Global flags come before the subcommand and are parsed by Go's flag
//     package: "-name" and "--name" are the same (runc's legacy single-dash
//     long flags), "--name=value" and "--name value" both work, a boolean
//     never takes the next argument (only "--name=false"), "--" ends the
//     flags, and the first non-flag argument is the subcommand.
//   - A subcommand's flags are parsed the same way after urfave/cli's
//     reorderArgs has moved flags that follow positional arguments in front
//     of them ("create ID --bundle B" works), except for exec and ps, which
//     set SkipArgReorder: there the first positional argument (the
//     container ID) ends the flags and the rest is the command.
//   - A flag given in two forms ("--bundle" and "-b") is an error; the same
//     form given twice keeps the last value.
//   - "--help"/"-h" anywhere among a command's flags shows help and runs
//     nothing; so do the global "--help" and "--version".

// kind is how a flag takes its value.
type kind int

const (
	boolFlag  kind = iota // never consumes the next argument; "--f=false" is allowed
	valueFlag             // string, int, duration: "--f v" or "--f=v"
	sliceFlag             // repeatable value flag (--cap, --env, --cgroup, ...)
)

// flagDef is one flag: its names (long first) and kind.
type flagDef struct {
	names []string
	kind  kind
}

func f(k kind, names ...string) flagDef { return flagDef{names: names, kind: k} }

// commandDef is one runc subcommand.
type commandDef struct {
	flags []flagDef
	// noReorder is urfave/cli's SkipArgReorder: flags end at the first
	// positional argument.
	noReorder bool
}

// helpFlag is urfave/cli's HelpFlag, added to the app and every command.
var helpFlag = f(boolFlag, "help", "h")

// Harden's own global flags. They are removed before the real runtime runs.
const (
	flagHardenConfig  = "harden-config"
	flagHardenRuntime = "harden-runtime"
)

// globalFlags are runc v1.4.0's global flags, urfave/cli's help and version
// flags, --criu (runc <= 1.1, still sent by older engines), and harden's own.
var globalFlags = []flagDef{
	f(boolFlag, "debug"),
	f(valueFlag, "log"),
	f(valueFlag, "log-format"),
	f(valueFlag, "root"),
	f(boolFlag, "systemd-cgroup"),
	f(valueFlag, "rootless"),
	f(valueFlag, "criu"),
	helpFlag,
	f(boolFlag, "version", "v"),
	f(valueFlag, flagHardenConfig),
	f(valueFlag, flagHardenRuntime),
}

// commands are runc v1.4.0's subcommands with their flags.
var commands = map[string]commandDef{
	"checkpoint": {flags: []flagDef{
		f(valueFlag, "image-path"), f(valueFlag, "work-path"), f(valueFlag, "parent-path"),
		f(boolFlag, "leave-running"), f(boolFlag, "tcp-established"), f(boolFlag, "tcp-skip-in-flight"),
		f(boolFlag, "link-remap"), f(boolFlag, "ext-unix-sk"), f(boolFlag, "shell-job"),
		f(boolFlag, "lazy-pages"), f(valueFlag, "status-fd"), f(valueFlag, "page-server"),
		f(boolFlag, "file-locks"), f(boolFlag, "pre-dump"), f(valueFlag, "manage-cgroups-mode"),
		f(sliceFlag, "empty-ns"), f(boolFlag, "auto-dedup"),
	}},
	"create": {flags: []flagDef{
		f(valueFlag, "bundle", "b"), f(valueFlag, "console-socket"), f(valueFlag, "pidfd-socket"),
		f(valueFlag, "pid-file"), f(boolFlag, "no-pivot"), f(boolFlag, "no-new-keyring"),
		f(valueFlag, "preserve-fds"),
	}},
	"delete": {flags: []flagDef{f(boolFlag, "force", "f")}},
	"events": {flags: []flagDef{f(valueFlag, "interval"), f(boolFlag, "stats")}},
	"exec": {noReorder: true, flags: []flagDef{
		f(valueFlag, "console-socket"), f(valueFlag, "pidfd-socket"), f(valueFlag, "cwd"),
		f(sliceFlag, "env", "e"), f(boolFlag, "tty", "t"), f(valueFlag, "user", "u"),
		f(sliceFlag, "additional-gids", "g"), f(valueFlag, "process", "p"), f(boolFlag, "detach", "d"),
		f(valueFlag, "pid-file"), f(valueFlag, "process-label"), f(valueFlag, "apparmor"),
		f(boolFlag, "no-new-privs"), f(sliceFlag, "cap", "c"), f(valueFlag, "preserve-fds"),
		f(sliceFlag, "cgroup"), f(boolFlag, "ignore-paused"),
	}},
	"features": {},
	"kill":     {flags: []flagDef{f(boolFlag, "all", "a")}},
	"list":     {flags: []flagDef{f(valueFlag, "format", "f"), f(boolFlag, "quiet", "q")}},
	"pause":    {},
	"ps":       {noReorder: true, flags: []flagDef{f(valueFlag, "format", "f")}},
	"restore": {flags: []flagDef{
		f(valueFlag, "console-socket"), f(valueFlag, "image-path"), f(valueFlag, "work-path"),
		f(boolFlag, "tcp-established"), f(boolFlag, "ext-unix-sk"), f(boolFlag, "shell-job"),
		f(boolFlag, "file-locks"), f(valueFlag, "manage-cgroups-mode"), f(valueFlag, "bundle", "b"),
		f(boolFlag, "detach", "d"), f(valueFlag, "pid-file"), f(boolFlag, "no-subreaper"),
		f(boolFlag, "no-pivot"), f(sliceFlag, "empty-ns"), f(boolFlag, "auto-dedup"),
		f(boolFlag, "lazy-pages"), f(valueFlag, "lsm-profile"), f(valueFlag, "lsm-mount-context"),
	}},
	"resume": {},
	"run": {flags: []flagDef{
		f(valueFlag, "bundle", "b"), f(valueFlag, "console-socket"), f(valueFlag, "pidfd-socket"),
		f(boolFlag, "detach", "d"), f(boolFlag, "keep"), f(valueFlag, "pid-file"),
		f(boolFlag, "no-subreaper"), f(boolFlag, "no-pivot"), f(boolFlag, "no-new-keyring"),
		f(valueFlag, "preserve-fds"),
	}},
	"spec":  {flags: []flagDef{f(valueFlag, "bundle", "b"), f(boolFlag, "rootless")}},
	"start": {},
	"state": {},
	"update": {flags: []flagDef{
		f(valueFlag, "resources", "r"), f(valueFlag, "blkio-weight"), f(valueFlag, "cpu-period"),
		f(valueFlag, "cpu-quota"), f(valueFlag, "cpu-burst"), f(valueFlag, "cpu-share"),
		f(valueFlag, "cpu-rt-period"), f(valueFlag, "cpu-rt-runtime"), f(valueFlag, "cpuset-cpus"),
		f(valueFlag, "cpuset-mems"), f(valueFlag, "kernel-memory"), f(valueFlag, "kernel-memory-tcp"),
		f(valueFlag, "memory"), f(valueFlag, "cpu-idle"), f(valueFlag, "memory-reservation"),
		f(valueFlag, "memory-swap"), f(valueFlag, "pids-limit"), f(valueFlag, "l3-cache-schema"),
		f(valueFlag, "mem-bw-schema"),
	}},
	// urfave/cli's own help command ("runc help create").
	"help": {noReorder: true},
	"h":    {noReorder: true},
}

// Subcommands harden changes before the runtime sees them. restore is one:
// it creates a container from <bundle>/config.json like create does.
func hardened(sub string) bool {
	switch sub {
	case "create", "run", "restore", "exec", "update":
		return true
	}
	return false
}

// Flag is one flag on the command line.
type Flag struct {
	Name  string // canonical (long) name; "" for a flag runc does not know
	As    string // the token as written, up to any "="
	Value string // the value; "true"/"false" text for booleans
	// Index is the flag's position in Invocation.Argv; ValueIndex that of
	// its value when it is a separate argument, else -1.
	Index, ValueIndex int
}

// Invocation is a parsed runc command line.
type Invocation struct {
	// Argv is the command line without the program name.
	Argv []string
	// Global are the global flags, in order. Flags runc does not know are
	// kept with an empty Name, for the runtime to judge.
	Global []Flag
	// Sub is the subcommand ("" when there is none); SubIndex its
	// position in Argv, or -1.
	Sub      string
	SubIndex int
	// Flags are the subcommand's flags in the order runc parses them.
	Flags []Flag
	// Args are the subcommand's positional arguments; ArgIndex their
	// positions in Argv.
	Args     []string
	ArgIndex []int
	// Err says why runc would reject the subcommand's flags or arguments.
	// Hardened subcommands with an error are refused; others are passed on
	// for the runtime to report.
	Err error
}

// Global returns the last value of a known global flag.
func (inv *Invocation) GlobalValue(name string) (string, bool) {
	return lastValue(inv.Global, name)
}

// Value returns the last value of a subcommand flag.
func (inv *Invocation) Value(name string) (string, bool) {
	return lastValue(inv.Flags, name)
}

// Values returns every value of a repeatable subcommand flag, in order.
func (inv *Invocation) Values(name string) []string {
	var out []string
	for _, fl := range inv.Flags {
		if fl.Name == name {
			out = append(out, fl.Value)
		}
	}
	return out
}

// Bool returns a boolean subcommand flag's value and whether it was given.
func (inv *Invocation) Bool(name string) (value, set bool) {
	v, ok := inv.Value(name)
	if !ok {
		return false, false
	}
	b, _ := strconv.ParseBool(v) // validated by Parse
	return b, true
}

// globalBool is Bool for global flags.
func (inv *Invocation) globalBool(name string) bool {
	v, ok := inv.GlobalValue(name)
	b, _ := strconv.ParseBool(v)
	return ok && b
}

// ShowsHelp reports whether runc would only print help or its version:
// then nothing is created and nothing needs hardening.
func (inv *Invocation) ShowsHelp() bool {
	if inv.globalBool("help") || inv.globalBool("version") {
		return true
	}
	if inv.Sub == "help" || inv.Sub == "h" {
		return true
	}
	b, _ := inv.Bool("help")
	return b
}

// ID is the container ID: the subcommand's first positional argument.
func (inv *Invocation) ID() string {
	if len(inv.Args) == 0 {
		return ""
	}
	return inv.Args[0]
}

func lastValue(fs []Flag, name string) (string, bool) {
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Name == name {
			return fs[i].Value, true
		}
	}
	return "", false
}

// ErrAmbiguous is returned when harden cannot tell which subcommand the
// runtime would run, and one reading would create or change a container.
var ErrAmbiguous = errors.New("ambiguous command line")

// Parse parses argv (without the program name) as runc v1.4.0 would. It
// returns an error only when the command line is ambiguous in a way that
// matters (see parseGlobal); a command runc would reject is returned with
// Err set.
func Parse(argv []string) (*Invocation, error) {
	inv := &Invocation{Argv: argv, SubIndex: -1}
	globals, sub, err := parseGlobal(argv, 0)
	inv.Global = globals
	if err != nil {
		return inv, err
	}
	if sub < 0 || sub >= len(argv) {
		return inv, nil
	}
	inv.Sub, inv.SubIndex = argv[sub], sub
	if def, ok := commands[inv.Sub]; ok {
		inv.Flags, inv.ArgIndex, inv.Err = parseCommand(def, argv, sub+1)
		for _, i := range inv.ArgIndex {
			inv.Args = append(inv.Args, argv[i])
		}
		if inv.Err == nil {
			inv.Err = checkArgs(inv.Sub, inv.Args)
		}
	}
	return inv, nil
}

// checkArgs is runc's checkArgs for the subcommands harden changes:
// create, run, restore and update take exactly the container ID; exec
// takes at least it. An empty ID is refused as runc refuses it.
func checkArgs(sub string, args []string) error {
	n := len(args)
	switch {
	case hardened(sub) && n > 0 && args[0] == "":
		return errors.New("container id cannot be empty")
	case (sub == "create" || sub == "run" || sub == "restore" || sub == "update") && n != 1:
		return fmt.Errorf("%q requires exactly 1 argument(s)", sub)
	case sub == "exec" && n < 1:
		return fmt.Errorf("%q requires a minimum of 1 argument(s)", sub)
	}
	return nil
}

// parseGlobal parses global flags from argv[i:] and returns them with the
// index of the subcommand (-1 if none).
//
// A global flag runc does not know (runsc's and crun's have their own) is
// kept for the runtime. Whether it takes a value cannot be known, so:
// "--flag=value" is whole; "--flag" followed by nothing or by another flag
// is a boolean; "--flag X" where X is not a runc subcommand takes X as its
// value (a runtime that reads it as a boolean would fail on the unknown
// subcommand X). "--flag X" where X is a subcommand can be read both ways;
// X is taken as the subcommand unless the other reading finds another
// subcommand runc knows and one of the two is hardened: then the command
// line is refused as ambiguous, since one reading would run a create or exec
// harden did not see. (A reading that finds no subcommand, or one runc does
// not know, runs nothing.)
func parseGlobal(argv []string, i int) ([]Flag, int, error) {
	var out []Flag
	for i < len(argv) {
		tok := argv[i]
		if len(tok) < 2 || tok[0] != '-' {
			return out, i, nil
		}
		if tok == "--" {
			if i+1 < len(argv) {
				return out, i + 1, nil
			}
			return out, -1, nil
		}
		name, value, hasValue, ok := splitFlag(tok)
		def, known := lookup(globalFlags, name)
		if !ok || !known {
			fl := Flag{As: tok, Index: i, ValueIndex: -1}
			if hasValue || i+1 >= len(argv) || strings.HasPrefix(argv[i+1], "-") {
				out = append(out, fl)
				i++
				continue
			}
			next := argv[i+1]
			if _, isCmd := commands[next]; !isCmd {
				fl.Value, fl.ValueIndex = next, i+1
				out = append(out, fl)
				i += 2
				continue
			}
			// Both readings: --flag is a boolean and next is the
			// subcommand, or --flag takes next and the rest decides.
			_, sub, err := parseGlobal(argv, i+2)
			if err != nil {
				return append(out, fl), -1, err
			}
			other := ""
			if sub >= 0 {
				other = argv[sub]
			}
			_, otherKnown := commands[other]
			if (hardened(next) || hardened(other)) && next != other && otherKnown {
				return append(out, fl), -1, fmt.Errorf("%w: harden-runc does not know the global flag %q: if it takes a value the subcommand is %q, else %q (write %s=VALUE)", ErrAmbiguous, tok, other, next, tok)
			}
			// Runc itself would reject the unknown flag; for other
			// runtimes the boolean reading is the likely one.
			return append(out, fl), i + 1, nil
		}
		fl := Flag{Name: def.names[0], As: tok[:len(tok)-len(value)-boolToInt(hasValue)], Index: i, ValueIndex: -1}
		switch {
		case def.kind == boolFlag:
			fl.Value = "true"
			if hasValue {
				if _, err := strconv.ParseBool(value); err != nil {
					// runc: invalid boolean value; the runtime reports it.
					fl.Name = ""
				}
				fl.Value = value
			}
			i++
		case hasValue:
			fl.Value = value
			i++
		case i+1 < len(argv):
			fl.Value, fl.ValueIndex = argv[i+1], i+1
			i += 2
		default:
			// runc: flag needs an argument. Nothing runs.
			out = append(out, fl)
			return out, -1, nil
		}
		out = append(out, fl)
	}
	return out, -1, nil
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitFlag splits a flag token as Go's flag package does: one or two
// dashes, then name[=value]. ok is false for bad syntax ("---x", "-=x").
func splitFlag(tok string) (name, value string, hasValue, ok bool) {
	s := tok[1:]
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	if s == "" || s[0] == '-' || s[0] == '=' {
		return "", "", false, false
	}
	name, value, hasValue = strings.Cut(s, "=")
	return name, value, hasValue, true
}

func lookup(defs []flagDef, name string) (flagDef, bool) {
	for _, d := range defs {
		if slices.Contains(d.names, name) {
			return d, true
		}
	}
	return flagDef{}, false
}

// parseCommand parses a subcommand's arguments argv[start:]: urfave/cli's
// reorderArgs (unless the command skips it), then Go's flag package, then
// urfave/cli's check that a flag is not given in two forms.
func parseCommand(def commandDef, argv []string, start int) (flags []Flag, args []int, err error) {
	defs := append(slices.Clone(def.flags), helpFlag)
	order := make([]int, 0, len(argv)-start)
	for i := start; i < len(argv); i++ {
		order = append(order, i)
	}
	if !def.noReorder {
		order = reorderArgs(defs, argv, order)
	}
	args = []int{}
	for k := 0; k < len(order); k++ {
		idx := order[k]
		tok := argv[idx]
		if len(tok) < 2 || tok[0] != '-' {
			args = order[k:]
			break
		}
		if tok == "--" {
			args = order[k+1:]
			break
		}
		name, value, hasValue, ok := splitFlag(tok)
		if !ok {
			return flags, nil, fmt.Errorf("bad flag syntax: %s", tok)
		}
		d, known := lookup(defs, name)
		if !known {
			return flags, nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		fl := Flag{Name: d.names[0], As: tok[:len(tok)-len(value)-boolToInt(hasValue)], Index: idx, ValueIndex: -1}
		switch {
		case d.kind == boolFlag:
			fl.Value = "true"
			if hasValue {
				if _, err := strconv.ParseBool(value); err != nil {
					return flags, nil, fmt.Errorf("invalid boolean value %q for -%s: %w", value, name, err)
				}
				fl.Value = value
			}
		case hasValue:
			fl.Value = value
		case k+1 < len(order):
			k++
			fl.Value, fl.ValueIndex = argv[order[k]], order[k]
		default:
			return flags, nil, fmt.Errorf("flag needs an argument: -%s", name)
		}
		flags = append(flags, fl)
	}
	// urfave/cli normalizeFlags: "--bundle x -b y" is an error.
	for _, d := range defs {
		var forms []string
		for _, fl := range flags {
			if fl.Name == d.names[0] {
				n, _, _, _ := splitFlag(fl.As + "=")
				if !slices.Contains(forms, n) {
					forms = append(forms, n)
				}
			}
		}
		if len(forms) > 1 {
			return flags, nil, fmt.Errorf("cannot use two forms of the same flag: %s", strings.Join(forms, " "))
		}
	}
	return flags, args, nil
}

// reorderArgs is urfave/cli v1.22.17's reorderArgs over argument indices:
// flags (and the argument after a flag without "=", which may be its value)
// move in front of the other arguments; "--" and what follows stay last.
// Like the original it treats every known flag, booleans too, as one that
// may take the next argument.
func reorderArgs(defs []flagDef, argv []string, order []int) []int {
	var reordered, remaining []int
	nextMayBeValue := false
	for k, idx := range order {
		arg := argv[idx]
		switch {
		case nextMayBeValue && !argIsFlag(defs, arg):
			nextMayBeValue = false
			reordered = append(reordered, idx)
		case arg == "--":
			remaining = append([]int{idx}, remaining...)
			remaining = append(remaining, order[k+1:]...)
			return append(reordered, remaining...)
		case argIsFlag(defs, arg):
			reordered = append(reordered, idx)
			nextMayBeValue = !strings.Contains(arg, "=")
		default:
			remaining = append(remaining, idx)
		}
	}
	return append(reordered, remaining...)
}

// argIsFlag is urfave/cli's argIsFlag.
func argIsFlag(defs []flagDef, arg string) bool {
	if arg == "-" || arg == "--" || !strings.HasPrefix(arg, "-") {
		return false
	}
	if strings.HasPrefix(arg, "--") {
		arg = strings.Replace(arg, "-", "", 2)
	}
	if strings.HasPrefix(arg, "-") {
		arg = strings.Replace(arg, "-", "", 1)
	}
	arg = strings.Split(arg, "=")[0]
	_, ok := lookup(defs, arg)
	return ok
}
