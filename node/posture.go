package node

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Posture is what the kernel reports about a running process: the
// protections actually in force, whatever any spec said.
type Posture struct {
	Pid        int    `json:"pid"`
	CapBnd     string `json:"capBnd"`
	CapEff     string `json:"capEff"`
	CapPrm     string `json:"capPrm"`
	CapAmb     string `json:"capAmb"`
	NoNewPrivs bool   `json:"noNewPrivs"`
	Seccomp    int    `json:"seccomp"` // 0 off, 1 strict, 2 filter
	UID        string `json:"uid"`
	LSM        string `json:"lsm,omitempty"` // /proc/<pid>/attr/current
}

// ReadPosture reads /proc/<pid>/status and the LSM label of pid.
func ReadPosture(pid int) (Posture, error) {
	p := Posture{Pid: pid}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapBnd":
			p.CapBnd = v
		case "CapEff":
			p.CapEff = v
		case "CapPrm":
			p.CapPrm = v
		case "CapAmb":
			p.CapAmb = v
		case "NoNewPrivs":
			p.NoNewPrivs = v == "1"
		case "Seccomp":
			p.Seccomp, _ = strconv.Atoi(v)
		case "Uid":
			p.UID = strings.Fields(v + " ")[0]
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/attr/current", pid)); err == nil {
		p.LSM = strings.TrimRight(string(b), "\x00\n")
	}
	return p, sc.Err()
}

// Pid reads the record's pid file; 0 when the container has no process.
func (r Record) Pid() int {
	if r.PidFile == "" {
		return 0
	}
	b, err := os.ReadFile(r.PidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// CapNames decodes a /proc capability mask into names.
func CapNames(mask string, all []string) []string {
	v, err := strconv.ParseUint(mask, 16, 64)
	if err != nil {
		return nil
	}
	var out []string
	for i, n := range all {
		if v&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}
