// Package testenv is what the suites under test/ (e2e, security,
// integration) share: reading the environment `make deps` wrote, and
// reading the processes and mounts the kernel reports, to check that a run
// left nothing behind.
package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ReadEnv adds the `export NAME=value` lines of the env.sh deps.sh writes
// to env.
func ReadEnv(path string, env map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "))
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	return sc.Err()
}

// ReadName returns the image name kept in file, else fallback.
func ReadName(file, fallback string) (string, error) {
	b, err := os.ReadFile(file)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("image name: %w (run `make deps`)", err)
}

// Proc is a live process.
type Proc struct {
	PID     int
	Cmdline string // arguments joined by spaces
	Cgroup  string // /proc/PID/cgroup
}

// Processes lists live (not zombie) processes.
func Processes() []Proc {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []Proc
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		cg, _ := os.ReadFile(d + "/cgroup")
		out = append(out, Proc{PID: pid, Cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))), Cgroup: string(cg)})
	}
	return out
}

// ProcessesInCgroupOf lists live processes whose cgroup path names id.
func ProcessesInCgroupOf(id string) []string {
	var out []string
	for _, p := range Processes() {
		if strings.Contains(p.Cgroup, "/"+id+"\n") || strings.Contains(p.Cgroup, "/"+id+"/") {
			out = append(out, fmt.Sprintf("pid %d: %.120s", p.PID, p.Cmdline))
		}
	}
	return out
}

// MountsUnder lists the mount points at or below dir in this process's
// mount namespace.
func MountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		m := unescapeMount(f[4])
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
