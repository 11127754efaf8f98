package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/harden-dev/harden/profiles"
)

// Exit statuses. A refusal and a policy that does not validate are failures
// of the thing checked, not of hardenctl, but scripts need them as non-zero.
const (
	exitOK      = 0
	exitFailure = 1 // policy or validation failure, refusal, I/O error
	exitUsage   = 2 // bad command line
)

// command is one subcommand: its name as typed ("policy validate"), what
// `hardenctl help` shows, and the function that declares its flags and runs.
type command struct {
	name     string
	args     string // synopsis after the name
	summary  string // one line for the overview
	detail   string // paragraphs for `hardenctl help NAME`
	examples []string
	run      func(c *cli, cmd *command, fs *flag.FlagSet, args []string) error
}

// commands is every subcommand in the order the overview lists them. It is
// filled in init because help looks commands up.
var commands []*command

func init() {
	commands = []*command{
		cmdPolicyValidate,
		cmdPolicyShow,
		cmdDiff,
		cmdApply,
		cmdExplain,
		cmdPs,
		cmdInspect,
		cmdDenials,
		cmdProbe,
		cmdRecord,
		cmdInstall,
		cmdUninstall,
		cmdAppArmorShow,
		cmdAppArmorLoad,
		cmdVersion,
		cmdHelp,
	}
}

// groups are the first words of two-word commands.
var groups = map[string]string{
	"policy":   "validate and show harden policies",
	"apparmor": "show or load the generated AppArmor profile",
}

// cli is what every command gets: the streams and the output style.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	color          bool // stdout is a terminal and NO_COLOR is unset
	width          int  // terminal width, 0 when stdout is not a terminal
}

// run is main without os.Exit, so that the exit status is one return value.
// It never panics on bad input: a panic is a bug, and it is reported as one
// with the usual error prefix instead of a Go stack dump on the user.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if f, ok := stdout.(*os.File); ok {
		c.color, c.width = terminal(f)
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "hardenctl: internal error (please report it): %v\n", r)
			code = exitFailure
		}
	}()
	return c.exitCode(c.dispatch(args))
}

// dispatch finds the command named by the first one or two words of args.
func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		c.overview(c.stderr)
		return errUsagef("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.overview(c.stdout)
		return nil
	}
	cmd, rest := lookup(args)
	if cmd == nil {
		if desc, ok := groups[args[0]]; ok {
			if len(args) == 1 {
				c.groupUsage(c.stderr, args[0], desc)
				return errUsagef("%s: missing subcommand", args[0])
			}
			if isHelp(args[1]) {
				c.groupUsage(c.stdout, args[0], desc)
				return nil
			}
			return &usageError{help: "hardenctl help " + args[0], msg: fmt.Sprintf("%s: unknown subcommand %q", args[0], args[1])}
		}
		return &usageError{help: "hardenctl help", msg: fmt.Sprintf("unknown command %q", args[0])}
	}
	fs := flag.NewFlagSet("hardenctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself, in our format
	return cmd.run(c, cmd, fs, rest)
}

// lookup matches the longest command name at the start of args.
func lookup(args []string) (*command, []string) {
	if len(args) >= 2 {
		for _, cmd := range commands {
			if cmd.name == args[0]+" "+args[1] {
				return cmd, args[2:]
			}
		}
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd, args[1:]
		}
	}
	return nil, nil
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" || s == "help" }

// exitCode prints err the way every hardenctl error looks and maps it to
// the exit status.
func (c *cli) exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var st *exitStatus
	if errors.As(err, &st) && st.err == nil {
		return st.code // already reported
	}
	fmt.Fprintf(c.stderr, "hardenctl: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.help != "" {
			fmt.Fprintf(c.stderr, "Run '%s' for usage.\n", ue.help)
		}
		return exitUsage
	}
	if st != nil {
		return st.code
	}
	return exitFailure
}

// usageError is a bad command line: exit status 2.
type usageError struct {
	help string // the help command to point at, or ""
	msg  string
}

func (e *usageError) Error() string { return e.msg }

func errUsagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatus carries a specific exit status; with a nil err the message was
// already printed (validate prints one line per file).
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// errHelp means -h was given and the usage is printed: exit status 0.
var errHelp = &exitStatus{code: exitOK}

// parse parses flags and positional arguments in any order (Go's flag
// package stops at the first positional one; operators type
// "validate a.yaml --json"). Everything after "--" is positional.
func (c *cli) parse(cmd *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout, cmd, fs)
			return nil, errHelp
		}
		if err != nil {
			return nil, &usageError{help: "hardenctl help " + cmd.name, msg: cmd.name + ": " + err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usage prints one command's help: synopsis, description, flags, examples.
func (c *cli) usage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: hardenctl %s %s\n\n", cmd.name, cmd.args)
	fmt.Fprintln(w, cmd.summary+".")
	if cmd.detail != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.TrimSpace(cmd.detail))
	}
	if fs != nil {
		var flags []string
		fs.VisitAll(func(f *flag.Flag) {
			name, text := flag.UnquoteUsage(f)
			line := "  --" + f.Name
			if name != "" {
				line += " " + name
			}
			flags = append(flags, line+"\n      "+text)
		})
		if len(flags) > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fmt.Fprintln(w, strings.Join(flags, "\n"))
		}
	}
	if len(cmd.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range cmd.examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// overview is `hardenctl help`.
func (c *cli) overview(w io.Writer) {
	fmt.Fprintln(w, "hardenctl: validate harden policies and see what they do to containers.")
	fmt.Fprintln(w, "\nUsage: hardenctl COMMAND [flags]\n\nCommands:")
	t := newTable(w, false, 2)
	for _, cmd := range commands {
		t.row(cmd.name, cmd.summary)
	}
	t.flush()
	fmt.Fprintln(w, "\nEvery command takes --json for machine-readable output, and -h for its help")
	fmt.Fprintln(w, "with examples. The policy is --policy FILE, else "+profiles.DefaultPolicyPath+" if it")
	fmt.Fprintln(w, "exists, else the embedded default.")
	fmt.Fprintln(w, "\nExit status: 0 ok, 1 refused or invalid, 2 bad command line.")
}

func (c *cli) groupUsage(w io.Writer, group, desc string) {
	fmt.Fprintf(w, "Usage: hardenctl %s SUBCOMMAND [flags]\n\n%s.\n\nSubcommands:\n", group, desc)
	t := newTable(w, false, 2)
	for _, cmd := range commands {
		if sub, ok := strings.CutPrefix(cmd.name, group+" "); ok {
			t.row(sub, cmd.summary)
		}
	}
	t.flush()
}

// cmdHelp is `hardenctl help [COMMAND]`.
var cmdHelp = &command{
	name:     "help",
	args:     "[COMMAND]",
	summary:  "Show help for hardenctl or one command",
	examples: []string{"hardenctl help", "hardenctl help diff", "hardenctl help policy validate"},
	run: func(c *cli, self *command, fs *flag.FlagSet, args []string) error {
		pos, err := c.parse(self, fs, args)
		if err != nil {
			return err
		}
		if len(pos) == 0 {
			c.overview(c.stdout)
			return nil
		}
		cmd, rest := lookup(pos)
		if cmd == nil || len(rest) > 0 {
			if desc, ok := groups[pos[0]]; ok && len(pos) == 1 {
				c.groupUsage(c.stdout, pos[0], desc)
				return nil
			}
			return errUsagef("help: unknown command %q", strings.Join(pos, " "))
		}
		if cmd == self {
			c.usage(c.stdout, cmd, nil)
			return nil
		}
		// Each command declares its flags when it runs; -h prints them.
		fs = flag.NewFlagSet("hardenctl "+cmd.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return cmd.run(c, cmd, fs, []string{"-h"})
	},
}

// noArgs rejects positional arguments for commands that take none.
func noArgs(cmd *command, pos []string) error {
	if len(pos) > 0 {
		return &usageError{help: "hardenctl help " + cmd.name, msg: fmt.Sprintf("%s: unexpected argument %q", cmd.name, pos[0])}
	}
	return nil
}

// usagef is a usage error that points at the command's help.
func usagef(cmd *command, format string, args ...any) error {
	return &usageError{help: "hardenctl help " + cmd.name, msg: cmd.name + ": " + fmt.Sprintf(format, args...)}
}
