// Command runccalls times harden-runc's create or delete on its own, the
// calls that node.sh's in-situ numbers say are most of harden-runc's cost.
//
//   - create (-sub create, the default): each binary given runs `create` on
//     the same `runc spec` bundle with /bin/true as its runtime, so what is
//     timed is harden-runc's Go process from execve to its exec of the
//     runtime, plus /bin/true.
//   - delete (-sub delete): each binary first creates the container so
//     (untimed, with --pid-file), the pid file is then given the pid of a
//     process that has exited, as an engine's is when it deletes, and
//     `delete` is timed: the fast path, plus /bin/true.
//
// Binaries are interleaved round by round, the order rotating, and each is
// compared with the first by the median of the paired differences, which
// the machine's noise moves less than the medians. Used for
// docs/benchmarks.md, "harden-runc create" and "harden-runc delete":
//
//	go run ./test/bench/runccalls -n 150 OLD/harden-runc bin/harden-runc
//	go run ./test/bench/runccalls -sub delete -n 150 OLD/harden-runc bin/harden-runc
//
// The bundle, the state directory and the decision log are in a temporary
// directory (HARDEN_CONFIG names a node configuration there), removed at the
// end; nothing runs a container.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

type sample struct {
	wall, cpu time.Duration
	faults    int64
}

func main() {
	rounds := flag.Int("n", 100, "rounds")
	sub := flag.String("sub", "create", "the call to time: create or delete")
	runc := flag.String("runc", "", "runc binary for `runc spec` (default: runc in PATH, else $HARDEN_CACHE/bin/runc)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: runccalls [-sub create|delete] [-n ROUNDS] [-runc RUNC] HARDEN-RUNC...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *sub != "create" && *sub != "delete" {
		fmt.Fprintf(os.Stderr, "runccalls: -sub %q: want create or delete\n", *sub)
		os.Exit(2)
	}
	if err := run(*sub, *rounds, *runc, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "runccalls:", err)
		os.Exit(1)
	}
}

func findRunc(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("runc"); err == nil {
		return p, nil
	}
	cache := os.Getenv("HARDEN_CACHE")
	if cache == "" {
		cache = "/var/cache/harden"
	}
	p := filepath.Join(cache, "bin", "runc")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no runc for `runc spec` in PATH or at %s: give -runc", p)
	}
	return p, nil
}

func run(sub string, rounds int, runcFlag string, bins []string) error {
	for i, b := range bins {
		abs, err := filepath.Abs(b)
		if err != nil {
			return err
		}
		bins[i] = abs
	}
	runc, err := findRunc(runcFlag)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "runccalls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command(runc, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("%s spec: %v: %s", runc, err, out)
	}
	spec, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("StateDir = %q\nDecisionLog = %q\n", filepath.Join(dir, "state"), filepath.Join(dir, "decisions.log"))
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		return err
	}
	env := append(os.Environ(), "HARDEN_CONFIG="+config)
	pidFile := filepath.Join(bundle, "init.pid")
	exited := exec.Command("/bin/true")
	if err := exited.Run(); err != nil {
		return err
	}
	global := []string{"--root", filepath.Join(dir, "root"), "--log", filepath.Join(bundle, "log.json")}

	res := make([][]sample, len(bins))
	for r := 0; r < rounds; r++ {
		for k := range bins {
			i := (r + k) % len(bins)
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
				return err
			}
			id := fmt.Sprintf("c%d-%d", r, i)
			create := append([]string{bins[i], "--harden-runtime", "/bin/true"}, global...)
			create = append(create, "create", "--bundle", bundle, "--pid-file", pidFile, id)
			timed := create
			if sub == "delete" {
				if _, err := once(create, env); err != nil {
					return err
				}
				if err := os.WriteFile(pidFile, []byte(strconv.Itoa(exited.Process.Pid)), 0o644); err != nil {
					return err
				}
				timed = append(append([]string{bins[i]}, global...), "delete", id)
			}
			s, err := once(timed, env)
			if err != nil {
				return err
			}
			if sub == "delete" {
				// The delete must have forgotten the container, as it does
				// for an engine.
				left, _ := filepath.Glob(filepath.Join(dir, "state", "containers", "*", id+".json"))
				if len(left) != 0 {
					return fmt.Errorf("%s: delete %s left its record %s", bins[i], id, left[0])
				}
			}
			res[i] = append(res[i], s)
		}
	}

	fmt.Printf("%d rounds, harden-runc %s with /bin/true as its runtime, on a `%s spec` bundle\n", rounds, sub, filepath.Base(runc))
	fmt.Printf("%-40s %10s %10s %12s %10s %7s\n", "binary", "median", "p95", "paired diff", "cpu", "faults")
	for i, b := range bins {
		wall := pick(res[i], func(s sample) float64 { return ms(s.wall) })
		diff := make([]float64, rounds)
		for r := range diff {
			diff[r] = ms(res[i][r].wall) - ms(res[0][r].wall)
		}
		fmt.Printf("%-40s %8.2f ms %8.2f ms %+9.2f ms %7.2f ms %7.0f\n", b, quantile(wall, 0.5), quantile(wall, 0.95),
			quantile(diff, 0.5), quantile(pick(res[i], func(s sample) float64 { return ms(s.cpu) }), 0.5),
			quantile(pick(res[i], func(s sample) float64 { return float64(s.faults) }), 0.5))
	}
	return nil
}

// once runs argv and returns its wall time from just before the fork to
// the reaped exit, and its CPU time and page faults (the process and what
// it exec'd).
func once(argv, env []string) (sample, error) {
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("%v: %v: %s", argv, err, out.Bytes())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sample{wall: wall, cpu: cpu, faults: ru.Minflt + ru.Majflt}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pick(s []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}

func quantile(v []float64, q float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[int(q*float64(len(v)-1)+0.5)]
}
