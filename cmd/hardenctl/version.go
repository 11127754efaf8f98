package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v0.1.0".
var version = ""

var cmdVersion = &command{
	name:     "version",
	args:     "[--json]",
	summary:  "Print hardenctl's version, commit and Go version",
	examples: []string{"hardenctl version", "hardenctl version --json"},
	run:      runVersion,
}

// versionInfo is version's --json output.
type versionInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func runVersion(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(cmd, pos); err != nil {
		return err
	}
	v := versionInfo{Version: version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Go = bi.GoVersion
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if *jsonOut {
		return writeJSON(c.stdout, v)
	}
	line := "hardenctl " + v.Version
	if v.Commit != "" {
		line += ", commit " + v.Commit
		if v.Modified {
			line += " (modified)"
		}
	}
	fmt.Fprintf(c.stdout, "%s, %s\n", line, v.Go)
	return nil
}
