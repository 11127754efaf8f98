package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// Events a record describes.
const (
	EventCreate = "create"
	EventExec   = "exec"
	EventUpdate = "update"
)

// Results a record can have.
const (
	ResultHardened   = "hardened"   // enforce mode: the spec was changed (or needed nothing) and the container proceeds
	ResultAudited    = "audited"    // audit mode: nothing changed; the record lists what enforce would do
	ResultRefused    = "refused"    // the policy forbids it; the container (or exec, update) does not run
	ResultUnhardened = "unhardened" // harden failed and failurePolicy allow let it run as the engine asked
	ResultError      = "error"      // harden failed and the container does not run
)

// Record is one decision, as a line of the decision log and as the state
// `hardenctl ps` and `inspect` show.
type Record struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	Entry     string    `json:"entry"` // containerd-shim-harden-v2, harden-runc
	ID        string    `json:"id"`
	ExecID    string    `json:"execID,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Bundle    string    `json:"bundle,omitempty"`
	Result    string    `json:"result"`
	Error     string    `json:"error,omitempty"`
	Policy    string    `json:"policy,omitempty"`
	Runtime   string    `json:"runtime,omitempty"` // the binary the container was handed to
	PidFile   string    `json:"pidFile,omitempty"` // where the runtime writes the init pid
	// Root is the runtime's state directory (runc --root) for containers
	// harden-runc created: later commands find the record by ID and root.
	Root string `json:"root,omitempty"`
	// HardenMicros is the time harden itself took (read, decide, harden,
	// write), before handing over to the runtime.
	HardenMicros int64 `json:"hardenMicros,omitempty"`
	*profiles.Outcome
}

// Recorder writes records. The zero value discards them.
type Recorder struct {
	Log      string // decision log path; "" writes none
	StateDir string // per-container state; "" keeps none
}

// Recorder returns the recorder the configuration describes.
func (c Config) Recorder() *Recorder {
	return &Recorder{Log: c.Log(), StateDir: c.State()}
}

// MaxRecordSize bounds one log line. A record of a refused privileged spec
// with every host device stays far below it.
const MaxRecordSize = 1 << 20

// Write appends r to the decision log as one JSON line. The file is opened
// with O_APPEND and written with one write call, so lines from concurrent
// shims never interleave.
func (rc *Recorder) Write(r Record) error {
	if rc == nil || rc.Log == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode decision record: %w", err)
	}
	if len(b) > MaxRecordSize {
		return fmt.Errorf("decision record for %s is %d bytes, over the %d byte limit", r.ID, len(b), MaxRecordSize)
	}
	if err := os.MkdirAll(filepath.Dir(rc.Log), 0o750); err != nil {
		return fmt.Errorf("write decision log: %w", err)
	}
	f, err := os.OpenFile(rc.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("write decision log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write decision log: %w", err)
	}
	return nil
}

// statePath is where a container's create record lives.
func (rc *Recorder) statePath(namespace, id string) (string, error) {
	if namespace == "" {
		namespace = "_"
	}
	for _, part := range []string{namespace, id} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\x00") {
			return "", fmt.Errorf("invalid container namespace or id %q", part)
		}
	}
	return filepath.Join(rc.StateDir, "containers", namespace, id+".json"), nil
}

// StateFile is the file SaveState keeps container id's record in, or ""
// when the recorder keeps no state.
func (rc *Recorder) StateFile(namespace, id string) (string, error) {
	if rc == nil || rc.StateDir == "" {
		return "", nil
	}
	return rc.statePath(namespace, id)
}

// SaveState keeps a container's create record for `hardenctl ps`.
func (rc *Recorder) SaveState(r Record) error {
	if rc == nil || rc.StateDir == "" {
		return nil
	}
	p, err := rc.statePath(r.Namespace, r.ID)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save container state: %w", err)
	}
	if err := spec.ReplaceFile(p, b, 0o600); err != nil {
		return fmt.Errorf("save container state: %w", err)
	}
	return nil
}

// RemoveState forgets a deleted container.
func (rc *Recorder) RemoveState(namespace, id string) error {
	if rc == nil || rc.StateDir == "" {
		return nil
	}
	p, err := rc.statePath(namespace, id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// FindState finds the create record of container id among every
// namespace's records, for an entry point that knows the runtime's root
// directory but not the namespace (harden-runc's kill, state, delete, exec).
// Only a record with the same Root matches: the same ID under another root
// is another container. ok is false when there is none.
func (rc *Recorder) FindState(id, root string) (r Record, ok bool, err error) {
	if rc == nil || rc.StateDir == "" || id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00*?[\\") {
		return Record{}, false, nil
	}
	files, err := filepath.Glob(filepath.Join(rc.StateDir, "containers", "*", id+".json"))
	if err != nil {
		return Record{}, false, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // deleted meanwhile
		}
		var cand Record
		if err := json.Unmarshal(b, &cand); err != nil {
			return Record{}, false, fmt.Errorf("read container state %s: %w", f, err)
		}
		if cand.ID == id && cand.Root == root {
			return cand, true, nil
		}
	}
	return Record{}, false, nil
}

// States lists the saved container records, sorted by namespace and id.
func (rc *Recorder) States() ([]Record, error) {
	files, err := filepath.Glob(filepath.Join(rc.StateDir, "containers", "*", "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // deleted meanwhile
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("read container state %s: %w", f, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ResultOf names the result of a hardening outcome and its error.
func ResultOf(out *profiles.Outcome, err error) string {
	switch {
	case err != nil && errors.Is(err, spec.ErrPolicyViolation):
		return ResultRefused
	case err != nil:
		return ResultError
	case out != nil && out.Decision.Mode == spec.Audit:
		return ResultAudited
	}
	return ResultHardened
}
