package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/harden-dev/harden/profiles"
)

var cmdAppArmorShow = &command{
	name:    "apparmor show",
	args:    "[--json] [NAME]",
	summary: "Print the AppArmor profile harden generates",
	detail: `NAME defaults to ` + profiles.AppArmorProfileName + `, the profile the strict built-in
profile uses. The text is what "hardenctl apparmor load" gives apparmor_parser.`,
	examples: []string{
		"hardenctl apparmor show",
		"hardenctl apparmor show harden-web > /etc/apparmor.d/harden-web",
	},
	run: runAppArmorShow,
}

var cmdAppArmorLoad = &command{
	name:    "apparmor load",
	args:    "[--json] [NAME]",
	summary: "Load (or replace) the generated AppArmor profile in the kernel",
	detail: `Runs apparmor_parser -Kr with the generated profile NAME (default
` + profiles.AppArmorProfileName + `). Exit status 1, with the reason, when the host kernel has no
AppArmor or apparmor_parser fails. Needs root.`,
	examples: []string{"sudo hardenctl apparmor load"},
	run:      runAppArmorLoad,
}

func appArmorName(cmd *command, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return profiles.AppArmorProfileName, nil
	case 1:
		return pos[0], nil
	}
	return "", usagef(cmd, "give at most one profile NAME")
}

func runAppArmorShow(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	jsonOut := fs.Bool("json", false, "print {\"name\", \"text\"} as JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	name, err := appArmorName(cmd, pos)
	if err != nil {
		return err
	}
	text, err := profiles.AppArmorText(name)
	if err != nil {
		return fmt.Errorf("generate apparmor profile: %w", err)
	}
	if *jsonOut {
		return writeJSON(c.stdout, map[string]string{"name": name, "text": text})
	}
	_, err = fmt.Fprint(c.stdout, text)
	return err
}

func runAppArmorLoad(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	jsonOut := fs.Bool("json", false, "print {\"name\", \"loaded\"} as JSON")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	name, err := appArmorName(cmd, pos)
	if err != nil {
		return err
	}
	if err := profiles.LoadAppArmor(name); err != nil {
		if errors.Is(err, profiles.ErrNoAppArmor) {
			return fmt.Errorf("load apparmor profile %s: %w; nothing was loaded (harden leaves AppArmor labels out of specs on such hosts)", name, err)
		}
		return fmt.Errorf("load apparmor profile %s: %w", name, err)
	}
	if *jsonOut {
		return writeJSON(c.stdout, map[string]any{"name": name, "loaded": true})
	}
	fmt.Fprintf(c.stdout, "loaded AppArmor profile %s\n", name)
	return nil
}
