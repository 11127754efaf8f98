package security

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMatrix runs the probe under every configuration (the columns in
// configs), checks each harden column against its profile's claims and
// each engine column against the defaults the docs describe, then prints
// the table (and writes it with HARDEN_UPDATE_SECURITY_TABLE=1).
func TestMatrix(t *testing.T) {
	in := requireSuite(t)
	if have("HARDEN_DOCKERD29") && have("HARDEN_DOCKER") {
		docker = startDocker()
		t.Cleanup(func() {
			if err := docker.stop(); err != nil {
				t.Error(err)
			}
		})
	}
	results := map[string]map[string]finding{}
	var ran []config
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			if c.need != "" && !have(c.need) {
				missing(t, fmt.Sprintf("%s is not installed; run `make deps`", c.need))
			}
			if c.engine == engineDocker && docker == nil {
				missing(t, "the docker client is not installed; run `make deps`")
			}
			start := time.Now()
			out, id := runProbe(t, c)
			got := parseFindings(t, out)
			results[c.name] = got
			ran = append(ran, c)
			t.Logf("%s: open: %s (%s)", c.name, strings.Join(openVectors(got), ", "), time.Since(start).Round(time.Millisecond))
			if c.hardened() {
				assertRecord(t, c, id)
				assertProfile(t, c, got)
			} else {
				assertEngineDefault(t, c, got)
			}
		})
	}
	if len(ran) == 0 {
		return
	}
	assertNotApplicable(t, ran, results)
	table := renderTable(in.vectors, ran, results)
	t.Logf("results:\n%s", table)
	if os.Getenv("HARDEN_UPDATE_SECURITY_TABLE") == "" {
		return
	}
	if t.Failed() || len(ran) != len(configs) {
		t.Errorf("HARDEN_UPDATE_SECURITY_TABLE is set, but the run failed or skipped columns (%d of %d ran): tables not written", len(ran), len(configs))
		return
	}
	if err := writeResults(in.vectors, ran, results); err != nil {
		t.Error(err)
	}
}

// openVectors lists the open vectors of a column, in probe order.
func openVectors(got map[string]finding) []string {
	var out []string
	for _, v := range inst.vectors {
		if got[v.ID].Result == "open" {
			out = append(out, v.ID)
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// assertNotApplicable keeps "n/a" from hiding a regression: on runc and
// crun a harden column may report n/a only for vectors the host itself
// lacks, that is, vectors that are n/a under `ctr run` with no hardening
// too. (runsc columns are exempt: gVisor's Sentry has no cgroupfs, no
// /proc/sys/kernel/core_pattern and no /proc/keys, so those are n/a there
// whatever the profile; docs/security.md says which.)
func assertNotApplicable(t *testing.T, ran []config, results map[string]map[string]finding) {
	t.Helper()
	ref, ok := results[configs[0].name]
	if !ok {
		t.Errorf("the reference column %q did not run: n/a results cannot be checked", configs[0].name)
		return
	}
	for _, c := range ran {
		if !c.hardened() || c.backend == "runsc" {
			continue
		}
		for _, v := range inst.vectors {
			if f := results[c.name][v.ID]; f.Result == "n/a" && ref[v.ID].Result != "n/a" {
				t.Errorf("%s: %s is n/a (%s), but %s under %s: the vector went unmeasured", c.name, v.ID, f.Detail, ref[v.ID].Result, configs[0].name)
			}
		}
	}
}
