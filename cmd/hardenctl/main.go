// Command hardenctl is the operator's CLI for harden: validate and show
// policies, see what a policy does to a container spec (diff, explain),
// harden a bundle in place (apply), and manage the generated AppArmor
// profile. Each subcommand lives in its own file; this one only wires them.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
