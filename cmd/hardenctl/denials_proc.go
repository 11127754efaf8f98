package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
)

// procInfo is what procfs says about a live process: enough to tell which
// container it runs in, and whether its pid is still the one a record saw.
type procInfo struct {
	PidNS  string    `json:"pidNamespace"` // "pid:[4026532212]"
	Cgroup string    `json:"cgroup"`       // /proc/PID/cgroup, every line
	Start  time.Time `json:"start"`
}

// userHZ is the unit of /proc/PID/stat's starttime (USER_HZ, 100 on every
// Linux architecture that runs containers).
const userHZ = 100

func readProcInfo(proc string, pid int, boot time.Time) (procInfo, error) {
	var p procInfo
	dir := proc + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return p, err
	}
	// The comm field is in parentheses and may hold spaces and ")": the
	// fields after the last ")" start with field 3 (state); starttime is 22.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return p, fmt.Errorf("%s/stat: no comm field", dir)
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return p, fmt.Errorf("%s/stat: %d fields", dir, len(fields))
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return p, fmt.Errorf("%s/stat: starttime %q", dir, fields[19])
	}
	p.Start = boot.Add(time.Duration(ticks) * time.Second / userHZ)
	if p.PidNS, err = os.Readlink(dir + "/ns/pid"); err != nil {
		return p, err
	}
	cg, err := os.ReadFile(dir + "/cgroup")
	if err != nil {
		return p, err
	}
	p.Cgroup = strings.TrimSpace(string(cg))
	return p, nil
}

// runningContainer is a container harden created whose init process is
// alive.
type runningContainer struct {
	ref  containerRef
	init procInfo
}

// reuseSlack absorbs the rounding of btime (whole seconds) when a
// process's start is compared with a record's time.
const reuseSlack = time.Second

// attributeDenials tells, for each record, which harden container the
// process belonged to. The kernel's record has only the host pid, so this
// works while the process lives: its pid namespace, else its cgroups, must
// be those of a container's init process (from the pid file in the
// container's state record). A process that has exited cannot be
// attributed, and a pid now held by a process that started after the record
// is someone else's.
func attributeDenials(ds []denial, recs []node.Record, proc string) {
	boot := bootTime(proc)
	hostNS, _ := os.Readlink(proc + "/1/ns/pid")
	var running []runningContainer
	for _, r := range recs {
		pid := r.Pid()
		if pid <= 0 {
			continue
		}
		info, err := readProcInfo(proc, pid, boot)
		if err != nil {
			continue
		}
		running = append(running, runningContainer{ref: containerRef{Namespace: r.Namespace, ID: r.ID}, init: info})
	}
	for i := range ds {
		d := &ds[i]
		info, err := readProcInfo(proc, d.Pid, boot)
		switch {
		case errors.Is(err, os.ErrNotExist):
			d.Attribution = "unknown (pid gone)"
			continue
		case err != nil:
			d.Attribution = "unknown (" + err.Error() + ")"
			continue
		case info.Start.After(d.Time.Add(reuseSlack)):
			d.Attribution = "unknown (pid reused)"
			continue
		}
		d.Attribution = "not a container harden created"
		for _, c := range running {
			switch {
			case info.PidNS != "" && info.PidNS != hostNS && info.PidNS == c.init.PidNS:
				d.Attribution = "pid namespace"
			case info.Cgroup != "" && info.Cgroup == c.init.Cgroup:
				d.Attribution = "cgroup"
			default:
				continue
			}
			ref := c.ref
			d.Container = &ref
			break
		}
	}
}

// loggingOf counts which containers ask the kernel to log their denials.
func loggingOf(recs []node.Record) containerLogging {
	var l containerLogging
	for _, r := range recs {
		l.Containers++
		// Audit mode records what enforce would do; the spec ran unchanged.
		if r.Result == node.ResultHardened && (hasRule(r, profiles.RuleSeccompLog) || hasRule(r, profiles.RuleSeccompComplain)) {
			l.Logged++
		}
	}
	return l
}
