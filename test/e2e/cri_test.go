package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crictl runs crictl against the instance's CRI socket.
func crictl(args ...string) (result, error) {
	a := append([]string{"--config", filepath.Join(inst.dir, "crictl.yaml")}, args...)
	return runCmd(90*time.Second, nil, env["HARDEN_CRICTL"], a...)
}

func mustCrictl(t *testing.T, args ...string) result {
	t.Helper()
	r, err := crictl(args...)
	if err != nil {
		t.Fatalf("crictl %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// pod is a CRI pod sandbox config, as crictl reads it (the CRI protobuf
// messages' JSON names).
type pod struct {
	name, namespace string
	runAsUser       *int64 // pod-level security context
	hostPID         bool
	handler         string
	file            string // written config
	id              string
}

func int64p(v int64) *int64 { return &v }

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

var podSeq int

func (p *pod) config(t *testing.T) string {
	t.Helper()
	podSeq++
	sc := map[string]any{}
	if p.runAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *p.runAsUser}
	}
	if p.hostPID {
		sc["namespace_options"] = map[string]any{"pid": 2} // NODE
	}
	uid := fmt.Sprintf("%s-%s-%d-%d", p.namespace, p.name, os.Getpid(), podSeq)
	cfg := map[string]any{
		"metadata":      map[string]any{"name": p.name, "namespace": p.namespace, "uid": uid, "attempt": 0},
		"log_directory": filepath.Join(inst.dir, "logs", uid),
		"linux":         map[string]any{"security_context": sc},
	}
	p.file = writeJSON(t, "pod.json", cfg)
	return p.file
}

// runPod runs the pod sandbox (`crictl runp --runtime HANDLER`) and removes
// it when the test ends.
func runPod(t *testing.T, p *pod) {
	t.Helper()
	r, err := tryRunPod(t, p)
	if err != nil {
		t.Fatalf("crictl runp %s/%s: %v\n%s", p.namespace, p.name, err, r)
	}
}

// tryRunPod runs the pod and returns crictl's result; on success the pod
// is removed when the test ends.
func tryRunPod(t *testing.T, p *pod) (result, error) {
	t.Helper()
	if p.handler == "" {
		p.handler = criHandler
	}
	r, err := crictl("runp", "--runtime", p.handler, p.config(t))
	if err != nil {
		return r, err
	}
	p.id = strings.TrimSpace(r.stdout)
	rememberID(p.id)
	id := p.id
	t.Cleanup(func() {
		if r, err := crictl("stopp", id); err != nil {
			t.Errorf("cleanup: crictl stopp %s: %v\n%s", id, err, r)
		}
		if r, err := crictl("rmp", "--force", id); err != nil {
			t.Errorf("cleanup: crictl rmp %s: %v\n%s", id, err, r)
		}
	})
	return r, nil
}

// containerConfig is a busybox container running script, then sleeping.
func containerConfig(t *testing.T, name string, runAsUser *int64, script string) string {
	t.Helper()
	sc := map[string]any{}
	if runAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *runAsUser}
	}
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": inst.image},
		"command":  []string{"sh", "-c", script + "\nexec sleep " + inst.token},
		"log_path": name + ".log",
		"linux":    map[string]any{"security_context": sc},
	}
	return writeJSON(t, name+".json", cfg)
}

// createContainer creates a container in the pod (not started) and removes
// it when the test ends.
func createContainer(t *testing.T, p *pod, ctrFile string) string {
	t.Helper()
	r := mustCrictl(t, "create", p.id, ctrFile, p.file)
	id := strings.TrimSpace(r.stdout)
	rememberID(id)
	t.Cleanup(func() {
		if r, err := crictl("rm", "--force", id); err != nil {
			t.Errorf("cleanup: crictl rm %s: %v\n%s", id, err, r)
		}
	})
	return id
}

// startProbe creates and starts a container that runs the probe as its
// init process, and returns the probe's output (from the container log).
func startProbe(t *testing.T, p *pod, name string, runAsUser *int64) (string, map[string]string) {
	t.Helper()
	id := createContainer(t, p, containerConfig(t, name, runAsUser, probeScript))
	mustCrictl(t, "start", id)
	return id, waitProbeLog(t, id)
}

func waitProbeLog(t *testing.T, id string) map[string]string {
	t.Helper()
	var last result
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r, err := crictl("logs", id)
		last = r
		if err == nil && strings.Contains(r.stdout, "done=1") {
			return parseProbe(t, r.stdout)
		}
	}
	t.Fatalf("container %s: probe output did not appear in its log within 30s:\n%s", id, last)
	return nil
}

// criPid returns the host pid of a container (inspect) or pod (inspectp).
func criPid(t *testing.T, verb, id string) int {
	t.Helper()
	r := mustCrictl(t, verb, "-o", "json", id)
	var v struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Info.Pid <= 0 {
		t.Fatalf("crictl %s %s: no pid (%v):\n%.2000s", verb, id, err, r.stdout)
	}
	return v.Info.Pid
}

// TestCRIPods runs pods through the CRI on the harden handler: the sandbox
// and the app container are hardened; the payments namespace gets the
// restricted profile with its memory ceiling, default gets baseline.
func TestCRIPods(t *testing.T) {
	in := requireSuite(t)
	decisions := in.path("cri-decisions.log")
	for _, tc := range []struct {
		name, namespace string
		user            *int64
		rule, profile   string
		caps            []string
		pids, memory    string // "" memory: no ceiling
	}{
		{"default", "default", nil, "defaults", "baseline", baselineCaps, "4096", ""},
		{"payments", "payments", int64p(1000), "e2e-payments", "restricted", restrictedCaps, "1024", strconv.Itoa(4 << 30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pod{name: "e2e-" + tc.name, namespace: tc.namespace, runAsUser: tc.user}
			runPod(t, p)
			cid, got := startProbe(t, p, "app", tc.user)
			root := tc.user == nil
			t.Logf("app container: %s", kernelView(got))
			assertHardened(t, "app container", got, tc.caps, root)
			assertMasked(t, "app container", got)

			pid := criPid(t, "inspect", cid)
			if v := cgroupFile(t, pid, "pids", "pids.max"); v != tc.pids {
				t.Errorf("app container pids.max = %s, want %s", v, tc.pids)
			}
			mem := cgroupFile(t, pid, "memory", "memory.limit_in_bytes")
			switch {
			case tc.memory != "" && mem != tc.memory:
				t.Errorf("app container memory.limit_in_bytes = %s, want the profile's ceiling %s", mem, tc.memory)
			case tc.memory == "" && mem == strconv.Itoa(4<<30):
				t.Errorf("app container memory.limit_in_bytes = %s: a ceiling from another profile", mem)
			}

			// The sandbox (pause) runs on the same handler and is hardened too.
			spid := criPid(t, "inspectp", p.id)
			sst := procStatus(t, spid)
			t.Logf("sandbox (pause, uid %s): %s", strings.Fields(sst["Uid"])[0], kernelView(sst))
			assertHardened(t, "pod sandbox", sst, tc.caps, strings.Fields(sst["Uid"])[0] == "0")
			if tc.memory != "" {
				if v := cgroupFile(t, spid, "memory", "memory.limit_in_bytes"); v != tc.memory {
					t.Errorf("sandbox memory.limit_in_bytes = %s, want %s", v, tc.memory)
				}
			}

			srec := createRecord(t, decisions, p.id)
			if srec.Identity.ContainerType != "sandbox" || srec.Result != "hardened" || srec.Decision.Profile != tc.profile || srec.Identity.Namespace != tc.namespace {
				t.Errorf("sandbox record: containerType %q result %q profile %q namespace %q, want sandbox hardened %s %s:\n%s",
					srec.Identity.ContainerType, srec.Result, srec.Decision.Profile, srec.Identity.Namespace, tc.profile, tc.namespace, srec)
			}
			if srec.Identity.Image != in.pause {
				t.Errorf("sandbox record: identity.image %q, want the sandbox image %s", srec.Identity.Image, in.pause)
			}
			crec := createRecord(t, decisions, cid)
			if crec.Identity.ContainerType != "container" || crec.Result != "hardened" || crec.Decision.Rule != tc.rule ||
				crec.Decision.Profile != tc.profile || crec.Identity.Pod != p.name || crec.Identity.Container != "app" {
				t.Errorf("container record: type %q result %q rule %q profile %q pod %q container %q, want container hardened by %s (%s) in %s/app:\n%s",
					crec.Identity.ContainerType, crec.Result, crec.Decision.Rule, crec.Decision.Profile, crec.Identity.Pod, crec.Identity.Container,
					tc.rule, tc.profile, p.name, crec)
			}
			// The handler's options table (ConfigBody) reached the shim:
			// its decisions go to cri-decisions.log, not the node file's log.
			if hasRecord(t, in.path("decisions.log"), func(r record) bool { return r.ID == cid || r.ID == p.id }) {
				t.Errorf("CRI decisions went to the node configuration's log: the runtime options table was not applied")
			}
		})
	}
}

// TestRuntimeHandlerRule checks that a rule can pick pods by their CRI
// runtime handler (the RuntimeClass handler): rule e2e-handler gives pods of
// handler harden-alt in namespace handler-match the restricted profile.
func TestRuntimeHandlerRule(t *testing.T) {
	in := requireSuite(t)
	p := &pod{name: "e2e-handler", namespace: "handler-match", handler: criAltHandler}
	runPod(t, p)
	rec := createRecord(t, in.path("cri-decisions.log"), p.id)
	if rec.Identity.RuntimeHandler != criAltHandler || rec.Decision.Rule != "e2e-handler" || rec.Decision.Profile != "restricted" {
		t.Errorf("pod on handler %s: identity.runtimeHandler %q, rule %q, profile %q; want %s, e2e-handler, restricted "+
			"(containerd 2.4 writes no runtime-handler annotation into the OCI spec; io.containerd.cri.runtime-handler "+
			"is a pod annotation CRI reads only for image pulls)\n%s",
			criAltHandler, rec.Identity.RuntimeHandler, rec.Decision.Rule, rec.Decision.Profile, criAltHandler, rec)
	}
	st := procStatus(t, criPid(t, "inspectp", p.id))
	t.Logf("sandbox: %s", kernelView(st))
	if want := capMask(restrictedCaps); st["CapBnd"] != want {
		t.Errorf("sandbox CapBnd = %s, want %s (restricted)", st["CapBnd"], want)
	}
}

// TestUpdate raises a restricted container's memory limit above its
// profile's 4Gi ceiling with `crictl update`: lowered to the ceiling
// (onExceed lower), or refused (a user profile with onExceed refuse).
func TestUpdate(t *testing.T) {
	in := requireSuite(t)
	decisions := in.path("cri-decisions.log")
	const ceiling = int64(4 << 30)
	request := strconv.FormatInt(8<<30, 10)

	t.Run("lower", func(t *testing.T) {
		p := &pod{name: "e2e-update", namespace: "payments", runAsUser: int64p(1000)}
		runPod(t, p)
		cid, _ := startProbe(t, p, "app", int64p(1000))
		pid := criPid(t, "inspect", cid)
		r, err := crictl("update", "--memory", request, cid)
		if err != nil {
			t.Fatalf("crictl update --memory %s: %v (onExceed lower should lower, not refuse)\n%s", request, err, r)
		}
		v := cgroupFile(t, pid, "memory", "memory.limit_in_bytes")
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n > ceiling {
			t.Errorf("memory.limit_in_bytes after update = %s, want at most %d", v, ceiling)
		}
		rec := findRecord(t, decisions, "update of "+cid, func(r record) bool { return r.Event == "update" && r.ID == cid })
		if rec.Result != "hardened" || !rec.hasChange("resources.ceiling") {
			t.Errorf("update record: result %q, want hardened with a resources.ceiling change:\n%s", rec.Result, rec)
		}
	})

	t.Run("refuse", func(t *testing.T) {
		p := &pod{name: "e2e-update-refuse", namespace: "refuse-update", runAsUser: int64p(1000)}
		runPod(t, p)
		cid, _ := startProbe(t, p, "app", int64p(1000))
		pid := criPid(t, "inspect", cid)
		before := cgroupFile(t, pid, "memory", "memory.limit_in_bytes")
		r, err := crictl("update", "--memory", request, cid)
		if err == nil {
			t.Errorf("crictl update --memory %s succeeded; profile restricted-refuse should refuse it", request)
		} else if !strings.Contains(r.stderr, "resources.ceiling") {
			t.Errorf("crictl update failed without naming resources.ceiling:\n%s", r)
		}
		if after := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); after != before || after != strconv.FormatInt(ceiling, 10) {
			t.Errorf("memory.limit_in_bytes = %s after the refused update (before %s), want %d", after, before, ceiling)
		}
		rec := findRecord(t, decisions, "update of "+cid, func(r record) bool { return r.Event == "update" && r.ID == cid })
		if rec.Result != "refused" || !rec.hasViolation("resources.ceiling") {
			t.Errorf("update record: result %q, want refused with a resources.ceiling violation:\n%s", rec.Result, rec)
		}
	})
}
