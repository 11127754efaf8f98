package security

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/harden-dev/harden/probe"
)

// probeCmd is the probe as the container sees it.
const probeCmd = "/probe/harden-probe"

// finding is one line of the probe's output.
type finding = probe.Finding

// parseFindings reads the probe's output: one JSON object per line, every
// vector of package probe exactly once, no probe error.
func parseFindings(t *testing.T, out string) map[string]finding {
	t.Helper()
	got := map[string]finding{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		f, err := probe.ParseFinding([]byte(l))
		if err != nil {
			t.Error(err)
			continue
		}
		if _, dup := got[f.Vector]; dup {
			t.Errorf("vector %s reported twice", f.Vector)
		}
		if f.ProbeError() {
			t.Errorf("vector %s: %s", f.Vector, f.Detail)
		}
		got[f.Vector] = f
	}
	for _, v := range inst.vectors {
		if _, ok := got[v.ID]; !ok {
			t.Errorf("vector %s missing from the probe's output (did the probe die?); output:\n%s", v.ID, out)
		}
	}
	return got
}

// runProbe runs the probe under configuration c and returns its output and
// the container id.
func runProbe(t *testing.T, c config) (string, string) {
	t.Helper()
	switch c.engine {
	case engineCtr:
		return runCtr(t, c)
	case engineCRI:
		return runCRI(t, c)
	case engineDocker:
		return runDocker(t, c)
	}
	t.Fatalf("unknown engine %q", c.engine)
	return "", ""
}

// runCtr runs the probe with `ctr run --rm`: on the runc shim with ctr's
// defaults, or on harden's shim with the column's runtime configuration.
func runCtr(t *testing.T, c config) (string, string) {
	t.Helper()
	id := ids.next(c.name)
	t.Cleanup(func() { removeCtrContainer(t, "default", id) })
	args := []string{"run", "--rm",
		// ctr sends no runtime options: keep the runc shim's state in the run.
		"--runc-root", filepath.Join(inst.dir, "runc"), "--fifo-dir", filepath.Join(inst.dir, "fifo"),
		"--mount", fmt.Sprintf("type=bind,src=%s,dst=/probe,options=rbind:ro", inst.probeDir),
		// ctr's default spec has no /sys/fs/cgroup, so the probe could not
		// read its own pids and memory limits; CRI and Docker mount it
		// read-only, and so does this (it grants nothing: read-only).
		"--mount", "type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev",
	}
	if c.nonRoot {
		args = append(args, "--user", fmt.Sprintf("%d:%d", nonRootUser, nonRootUser))
	}
	if c.hardened() {
		args = append(args, "--runtime", hardenRuntime, "--runtime-config-path", inst.runtimeConfig(c))
	} else {
		args = append(args, "--runtime", runcRuntime)
	}
	args = append(args, inst.image, id, probeCmd)
	r, err := ctr("default", args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s%s", strings.Join(args, " "), err, r, recordHint(id))
	}
	return r.stdout, id
}

// removeCtrContainer deletes a task and its container if they are still
// there. A runsc task that failed to start stays "created" and runsc
// 2022-12-19 refuses to signal it; then `runsc delete --force` first.
func removeCtrContainer(t *testing.T, ns, id string) {
	t.Helper()
	if !ctrHas(ns, "containers", id) {
		return
	}
	if _, err := ctr(ns, "tasks", "delete", "--force", id); err != nil && ctrHas(ns, "tasks", id) {
		if rs := env["HARDEN_RUNSC"]; rs != "" {
			_, _ = runCmd(30*time.Second, nil, rs, "--root", filepath.Join(inst.dir, "runc", ns), "delete", "--force", id)
		}
		if r, err := ctr(ns, "tasks", "delete", "--force", id); err != nil && ctrHas(ns, "tasks", id) {
			t.Errorf("cleanup: delete task %s: %v\n%s", id, err, r)
		}
	}
	if r, err := ctr(ns, "containers", "delete", id); err != nil && !strings.Contains(r.stderr, "not found") {
		t.Errorf("cleanup: delete container %s: %v\n%s", id, err, r)
	}
}

// ctrHas reports whether `ctr tasks|containers ls -q` lists id.
func ctrHas(ns, what, id string) bool {
	r, err := ctr(ns, what, "ls", "-q")
	return err == nil && slices.Contains(strings.Fields(r.stdout), id)
}

// writeJSON writes v as JSON into the test's temp dir.
func writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCRI runs the probe as the only container of a pod: on containerd's
// default (runc) handler with no security context, or on the harden
// handler for the column's profile. Non-root columns set runAsUser on the
// pod and the container, as a restricted Kubernetes pod does.
func runCRI(t *testing.T, c config) (string, string) {
	t.Helper()
	sc := map[string]any{}
	if c.nonRoot {
		sc["run_as_user"] = map[string]any{"value": nonRootUser}
	}
	uid := ids.next(c.name)
	pod := writeJSON(t, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": uid, "namespace": "security", "uid": uid, "attempt": 0},
		"log_directory": filepath.Join(inst.dir, "logs", uid),
		"linux":         map[string]any{"security_context": sc},
	})
	ctrCfg := writeJSON(t, "container.json", map[string]any{
		"metadata": map[string]any{"name": "probe"},
		"image":    map[string]any{"image": inst.image},
		"command":  []string{probeCmd},
		"log_path": "probe.log",
		"mounts":   []map[string]any{{"container_path": "/probe", "host_path": inst.probeDir, "readonly": true}},
		"linux":    map[string]any{"security_context": sc},
	})
	runp := []string{"runp"}
	if c.hardened() {
		runp = append(runp, "--runtime", criHandler(c.profile))
	}
	r, err := crictl(append(runp, pod)...)
	if err != nil {
		t.Fatalf("crictl %s: %v\n%s", strings.Join(runp, " "), err, r)
	}
	podID := strings.TrimSpace(r.stdout)
	ids.add(podID)
	t.Cleanup(func() {
		if r, err := crictl("stopp", podID); err != nil {
			t.Errorf("cleanup: crictl stopp %s: %v\n%s", podID, err, r)
		}
		if r, err := crictl("rmp", "--force", podID); err != nil {
			t.Errorf("cleanup: crictl rmp %s: %v\n%s", podID, err, r)
		}
	})
	r, err = crictl("create", podID, ctrCfg, pod)
	if err != nil {
		t.Fatalf("crictl create: %v\n%s", err, r)
	}
	cid := strings.TrimSpace(r.stdout)
	ids.add(cid)
	if r, err := crictl("start", cid); err != nil {
		t.Fatalf("crictl start %s: %v\n%s%s", cid, err, r, recordHint(cid))
	}
	waitExited(t, cid)
	r, err = crictl("logs", cid)
	if err != nil {
		t.Fatalf("crictl logs %s: %v\n%s", cid, err, r)
	}
	return r.stdout, cid
}

// waitExited waits until a CRI container has exited.
func waitExited(t *testing.T, cid string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, err := crictl("inspect", "-o", "json", cid)
		if err != nil {
			last = r.String()
			continue
		}
		var v struct {
			Status struct {
				State    string `json:"state"`
				ExitCode int    `json:"exitCode"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			last = err.Error()
			continue
		}
		last = v.Status.State
		if v.Status.State == "CONTAINER_EXITED" {
			if v.Status.ExitCode != 0 {
				t.Errorf("probe exited with %d", v.Status.ExitCode)
			}
			return
		}
	}
	t.Fatalf("container %s did not exit within 90s (last state: %s)", cid, last)
}

// dockerEngine is the private Docker 29 engine, started in the background
// while the other columns run.
type dockerEngine struct {
	dir, script string
	envv        []string
	ready       chan struct{}
	err         error
}

var docker *dockerEngine

// startDocker starts the private Docker 29 engine in the background.
func startDocker() *dockerEngine {
	d := &dockerEngine{
		dir:    filepath.Join(inst.base, "d"),
		script: filepath.Join(inst.repo, "test", "env", "dockerd.sh"),
		envv:   inst.envv,
		ready:  make(chan struct{}),
	}
	go func() {
		defer close(d.ready)
		if r, err := runCmd(5*time.Minute, d.envv, d.script, "start", d.dir, "29"); err != nil {
			d.err = fmt.Errorf("start Docker 29: %v\n%s", err, r)
		}
	}()
	return d
}

// stop stops the engine (after its start finished) and removes its files.
func (d *dockerEngine) stop() error {
	<-d.ready
	if _, err := os.Stat(d.dir); err != nil {
		return nil
	}
	if r, err := runCmd(3*time.Minute, d.envv, d.script, "stop", d.dir); err != nil {
		return fmt.Errorf("stop Docker 29: %v\n%s", err, r)
	}
	return nil
}

// runDocker runs the probe with `docker run --rm` and Docker's defaults.
func runDocker(t *testing.T, c config) (string, string) {
	t.Helper()
	if docker == nil {
		t.Fatal("the Docker engine was not started")
	}
	<-docker.ready
	if docker.err != nil {
		t.Fatal(docker.err)
	}
	name := ids.next(c.name)
	envv := append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(docker.dir, "docker.sock"))
	args := []string{"run", "--rm", "--name", name, "-v", inst.probeDir + ":/probe:ro", inst.image, probeCmd}
	r, err := runCmd(2*time.Minute, envv, env["HARDEN_DOCKER"], args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r.stdout, name
}

// record is the part of a decision-log line the suite reads (node.Record).
type record struct {
	Event    string `json:"event"`
	ID       string `json:"id"`
	Result   string `json:"result"`
	Error    string `json:"error"`
	Runtime  string `json:"runtime"`
	Decision struct {
		Rule    string `json:"rule"`
		Profile string `json:"profile"`
		Mode    string `json:"mode"`
		Backend string `json:"backend"`
	} `json:"decision"`
	raw string
}

// createRecord returns the create record of container id from the run's
// decision log.
func createRecord(id string) (record, error) {
	f, err := os.Open(inst.path("decisions.log"))
	if err != nil {
		return record{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var found *record
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return record{}, fmt.Errorf("decision log line is not a record: %v", err)
		}
		if r.Event == "create" && r.ID == id {
			r.raw = sc.Text()
			found = &r
		}
	}
	if err := sc.Err(); err != nil {
		return record{}, err
	}
	if found == nil {
		return record{}, errors.New("no create record for " + id)
	}
	return *found, nil
}

// recordHint is the decision record of a container that failed, for the
// error message.
func recordHint(id string) string {
	r, err := createRecord(id)
	if err != nil {
		return ""
	}
	return "\ndecision record: " + r.raw
}

// assertRecord checks harden recorded the column's profile and backend for
// the container, hardened and enforced: otherwise the probe measured
// something else than the column claims.
func assertRecord(t *testing.T, c config, id string) {
	t.Helper()
	r, err := createRecord(id)
	if err != nil {
		t.Errorf("%s: %v", c.name, err)
		return
	}
	if r.Result != "hardened" || r.Decision.Profile != c.profile || r.Decision.Backend != c.backend || r.Decision.Mode != "enforce" ||
		!strings.Contains(filepath.Base(r.Runtime), c.backend) {
		t.Errorf("%s: decision record says result %q, profile %q, backend %q, mode %q, runtime %q; want hardened, %s, %s, enforce, %s:\n%s",
			c.name, r.Result, r.Decision.Profile, r.Decision.Backend, r.Decision.Mode, r.Runtime, c.profile, c.backend, c.backend, r.raw)
	}
}
