// Command harden-probe runs inside a container and tries harden's escape
// and posture vectors (package probe), printing one JSON object per vector
// and line:
//
//	{"vector": "mount.tmpfs", "result": "blocked", "detail": "mount: EPERM"}
//
// It is static (CGO_ENABLED=0), so it runs in any image: `hardenctl probe`
// and the security suite (test/security) bind-mount it read-only into the
// containers they start. `harden-probe -list` prints the vector ids, the
// rules that stop each and what it stands for; `-only a,b` runs some. It
// exits 0 once every result is printed, 2 on an unknown vector id.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/harden-dev/harden/probe"
)

func main() {
	list := flag.Bool("list", false, "print the vector ids, the rules that stop them and what they stand for; run nothing")
	only := flag.String("only", "", "comma-separated vector `ids` to run (default: all)")
	flag.Parse()

	vs := probe.Vectors()
	if *list {
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, v := range vs {
			fmt.Fprintf(w, "%s\t%s\t%s\n", v.ID, strings.Join(v.Rules, ","), v.Desc)
		}
		_ = w.Flush()
		return
	}
	want := map[string]bool{}
	for _, id := range strings.Split(*only, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if _, ok := probe.Lookup(id); !ok {
			fmt.Fprintf(os.Stderr, "harden-probe: unknown vector %q (harden-probe -list names them)\n", id)
			os.Exit(2)
		}
		want[id] = true
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, v := range vs {
		if len(want) > 0 && !want[v.ID] {
			continue
		}
		if err := enc.Encode(probe.Run(v)); err != nil {
			fmt.Fprintf(os.Stderr, "harden-probe: write result: %v\n", err)
			os.Exit(1)
		}
	}
}
