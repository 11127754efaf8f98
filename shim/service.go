package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

// Name is the runtime type containerd knows harden by.
const Name = "io.containerd.harden.v2"

// entry names this entry point in decision records.
const entry = "containerd-shim-harden-v2"

// DecisionTopic is the containerd event topic of decision records
// (`ctr events` shows them).
const DecisionTopic = "/harden/decision"

// Service is the task service containerd talks to. It embeds the runc
// task service and overrides the calls that carry a spec.
type Service struct {
	taskAPI.TTRPCTaskService // the runc shim's task service
	publisher                shim.Publisher

	mu         sync.Mutex
	nodeConfig node.Config
	configErr  error
	policies   map[string]*node.PolicyCache
	containers map[string]*container
	trimOnce   sync.Once // returns start-up memory after the first Create
}

// container is what harden remembers between Create and Delete.
type container struct {
	bundle   string
	identity spec.Identity
	config   node.Config
	process  *specs.Process // the container's process as created; nil: read the bundle
}

// NewService wraps the runc task service.
func NewService(inner taskAPI.TTRPCTaskService, publisher shim.Publisher) *Service {
	s := &Service{
		TTRPCTaskService: inner,
		publisher:        publisher,
		policies:         map[string]*node.PolicyCache{},
		containers:       map[string]*container{},
	}
	// Main started the warm-up when the process started; without Main
	// (tests), start it now.
	w := early
	if w == nil {
		w = startWarmUp()
	}
	s.nodeConfig, s.configErr = w.config, w.configErr
	if w.cache != nil {
		s.policies[s.nodeConfig.Policy()] = w.cache
	}
	return s
}

// trimDelay is how long after its first Create the shim returns the heap
// its start-up left unused (the warm-up's and the first Create's garbage,
// about 0.8 MiB) to the kernel. The Go runtime's background scavenger
// would keep most of it for minutes, and a shim lives as long as its
// container, one per `ctr run` or Docker container. Synchronously, in the
// warm-up, the GC and madvise calls cost 4-17 ms here, on the start path;
// a second later the container is running and nothing waits on the shim.
const trimDelay = time.Second

// earlyWarmUp is the node configuration and warmed policy cache Main
// starts on as soon as the shim's daemon process starts, before
// containerd's shim library sets up the task service: measured here, the
// service exists 5-15 ms after main and the first Create arrives 10-30 ms
// after main, while the warm-up takes 4-10 ms, so started in NewService it
// ran into Create and both paid for the cold paths.
type earlyWarmUp struct {
	config    node.Config
	configErr error
	cache     *node.PolicyCache
}

// early is the warm-up Main started; NewService adopts it.
var early *earlyWarmUp

// startWarmUp loads the node configuration and warms its policy in the
// background.
func startWarmUp() *earlyWarmUp {
	w := &earlyWarmUp{}
	w.config, w.configErr = node.LoadConfig(nodeConfigPath(), true)
	if w.configErr == nil {
		w.cache = node.NewPolicyCache(w.config.Policy())
		go warmUp(w.config, w.cache)
	}
	return w
}

// warmUp loads the node's policy and exercises the spec codec while
// containerd is still setting the task up, so the first Create does not pay
// for a cold policy load (a few ms) and the JSON codec's first use. Each
// `ctr run` and Docker container gets a new shim, so this is on every start.
func warmUp(cfg node.Config, cache *node.PolicyCache) {
	pol, err := cache.Get()
	if err != nil {
		return
	}
	// A container with the capabilities engines grant by default: after
	// hardening it has the profile's set, the key its seccomp filter is
	// cached under, so the first real container finds the filter built.
	d, err := spec.Parse(warmUpSpec)
	if err != nil {
		return
	}
	_, _ = pol.Harden(d.Spec, spec.IdentityFromSpec(d.Spec), cfg.HostFor(spec.Runc, pol))
	_, _ = d.Marshal()
}

var warmUpSpec = []byte(`{"ociVersion":"1.0.0","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0},
"capabilities":{"bounding":["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]}},
"linux":{"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network"}]}}`)

// RegisterTTRPC serves the wrapped task API, as v3 (containerd 2.x) and
// as v2 (containerd 1.7, and 2.0-2.2 through the legacy start answer).
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	taskv2.RegisterTTRPCTaskService(server, taskV2{s})
	return nil
}

func (s *Service) policy(path string) *node.PolicyCache {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc, ok := s.policies[path]
	if !ok {
		pc = node.NewPolicyCache(path)
		s.policies[path] = pc
	}
	return pc
}

// refusal is what the person who ran the container sees: the runc task
// service's errors travel the same way (errgrpc), and ctr, crictl, docker
// and kubelet events print the message.
func refusal(err error) error {
	// One %w only: errgrpc renders an error that wraps several as several
	// lines ("permission denied" repeated under the message).
	return errgrpc.ToGRPC(fmt.Errorf("%v: %w", err, errdefs.ErrPermissionDenied))
}

func failure(format string, args ...any) error {
	return errgrpc.ToGRPC(fmt.Errorf("harden: "+format+": %w", append(args, errdefs.ErrFailedPrecondition)...))
}

// Create hardens the bundle's config.json, then creates the task with the
// runtime the matched rule's backend names.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	start := time.Now()
	ns, _ := namespaces.Namespace(ctx)
	rec := node.Record{Time: start.UTC(), Event: node.EventCreate, Entry: entry, ID: r.ID, Namespace: ns, Bundle: r.Bundle,
		PidFile: filepath.Join(r.Bundle, "init.pid")} // the runc shim's pid file
	if s.configErr != nil {
		rec.Result, rec.Error = node.ResultError, s.configErr.Error()
		s.record(ctx, nil, rec)
		return nil, failure("%v", s.configErr)
	}
	cfg, err := decodeOptions(s.nodeConfig, r.Options)
	if err != nil {
		rec.Result, rec.Error = node.ResultError, err.Error()
		s.record(ctx, nil, rec)
		return nil, failure("%v", err)
	}
	rc := cfg.Recorder()
	rec.Policy = cfg.Policy()

	c, binary, herr := s.hardenCreate(ctx, r, cfg, ns, &rec)
	if herr != nil {
		if !s.allowUnhardened(ctx, cfg, herr, &rec) {
			s.record(ctx, rc, rec)
			if errors.Is(herr, spec.ErrPolicyViolation) {
				return nil, refusal(herr)
			}
			return nil, failure("%v", herr)
		}
		// failurePolicy allow: the container runs as the engine asked,
		// on the default runtime.
		if binary, err = cfg.RuntimeBinary(spec.Runc); err != nil {
			rec.Result, rec.Error = node.ResultError, err.Error()
			s.record(ctx, rc, rec)
			return nil, failure("%v", err)
		}
		c = &container{bundle: r.Bundle, identity: spec.Identity{ID: r.ID, EngineNamespace: ns}, config: cfg}
	}
	rec.Runtime = binary
	rec.HardenMicros = time.Since(start).Microseconds()
	if r.Options, err = runcOptions(cfg, binary); err != nil {
		return nil, failure("%v", err)
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		rec.Error = "runtime: " + err.Error()
		s.record(ctx, rc, rec)
		return nil, err
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	s.trimOnce.Do(func() { time.AfterFunc(trimDelay, debug.FreeOSMemory) })
	s.record(ctx, rc, rec)
	if serr := rc.SaveState(rec); serr != nil {
		log.G(ctx).WithError(serr).Warn("harden: save container state")
	}
	log.G(ctx).WithField("id", r.ID).WithField("took", time.Since(start)).Debug("harden: create")
	return resp, nil
}

// hardenCreate reads, decides, hardens and writes the bundle. It fills rec
// with the outcome and returns the runtime binary to delegate to.
func (s *Service) hardenCreate(ctx context.Context, r *taskAPI.CreateTaskRequest, cfg node.Config, ns string, rec *node.Record) (*container, string, error) {
	pol, err := s.policy(cfg.Policy()).Get()
	if err != nil {
		rec.Result, rec.Error = node.ResultError, err.Error()
		return nil, "", err
	}
	id, runs, err := node.HardenBundle(pol, cfg, r.Bundle, func(sp *specs.Spec) spec.Identity { return node.Identify(sp, r.ID, ns, cfg) }, rec)
	if err != nil {
		return nil, "", err
	}
	d := rec.Outcome.Decision
	if d.Backend == spec.Runsc && id.ContainerType == spec.TypeContainer && id.SandboxID != "" {
		// `runsc start` of a container that joins a sandbox hands runsc's
		// own stdio to it, and the runc task service waits for start's
		// output to end: the start would hang and the logs go nowhere.
		err := fmt.Errorf("rule %q picks backend runsc for a container in pod sandbox %s: runsc cannot run pod containers under the runc shim (use gVisor's containerd-shim-runsc-v1 as the pod's runtime)", d.Rule, id.SandboxID)
		rec.Result, rec.Error = node.ResultError, err.Error()
		return nil, "", err
	}
	binary, err := cfg.RuntimeBinary(d.Backend)
	if err != nil {
		rec.Result, rec.Error = node.ResultError, err.Error()
		return nil, "", err
	}
	// Keep the process as it will run (hardened, or as sent in audit mode):
	// every exec is checked against it, without reading the bundle again.
	return &container{bundle: r.Bundle, identity: id, config: cfg, process: runs.Process}, binary, nil
}

// allowUnhardened applies failurePolicy to an error that is not a refusal
// (node.Config.AllowUnhardened) and logs loudly when it lets a container
// through.
func (s *Service) allowUnhardened(ctx context.Context, cfg node.Config, err error, rec *node.Record) bool {
	pol, _ := s.policy(cfg.Policy()).Get()
	if !cfg.AllowUnhardened(pol, err) {
		return false
	}
	rec.Result = node.ResultUnhardened
	log.G(ctx).WithError(err).WithField("id", rec.ID).Error("harden: FAILED TO HARDEN; failurePolicy allow lets the container run UNHARDENED")
	return true
}

// Exec hardens the exec'd process against the container it joins: the
// engine builds the process from the spec it stored, not from the hardened
// bundle, so without this an exec would get the engine's capabilities.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	rec, rc, err := s.hardenExisting(ctx, node.EventExec, r.ID, r.ExecID, func(c *container, cfg node.Config, pol *profiles.Compiled, rec *node.Record) error {
		return s.hardenExec(r, c, cfg, pol, rec)
	})
	if err != nil {
		return nil, err
	}
	resp, err := s.TTRPCTaskService.Exec(ctx, r)
	if err != nil {
		rec.Error = "runtime: " + err.Error()
	}
	s.record(ctx, rc, rec)
	return resp, err
}

// hardenExisting runs apply for a request on a container harden created,
// and turns a failure into the recorded error the engine sees. On success
// the caller records the decision once the runtime has answered.
func (s *Service) hardenExisting(ctx context.Context, event, id, execID string, apply func(*container, node.Config, *profiles.Compiled, *node.Record) error) (node.Record, *node.Recorder, error) {
	ns, _ := namespaces.Namespace(ctx)
	rec := node.Record{Time: time.Now().UTC(), Event: event, Entry: entry, ID: id, ExecID: execID, Namespace: ns}
	c, cfg, pol, err := s.lookup(id)
	rc := cfg.Recorder()
	if err == nil {
		rec.Bundle, rec.Policy = c.bundle, pol.Source
		err = apply(c, cfg, pol, &rec)
	}
	rec.HardenMicros = time.Since(rec.Time).Microseconds()
	if err == nil {
		return rec, rc, nil
	}
	if rec.Result == "" {
		rec.Result = node.ResultError
	}
	rec.Error = err.Error()
	s.record(ctx, rc, rec)
	if errors.Is(err, spec.ErrPolicyViolation) {
		return rec, rc, refusal(err)
	}
	return rec, rc, failure("%s %s: %v", event, id, err)
}

func (s *Service) hardenExec(r *taskAPI.ExecProcessRequest, c *container, cfg node.Config, pol *profiles.Compiled, rec *node.Record) error {
	v, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return fmt.Errorf("decode exec process: %w", err)
	}
	proc, ok := v.(*specs.Process)
	if !ok {
		return fmt.Errorf("exec process is a %T, not an OCI process", v)
	}
	container := &specs.Spec{Process: c.process}
	if c.process == nil {
		doc, err := spec.ReadBundle(c.bundle)
		if err != nil {
			return err
		}
		container = doc.Spec
	}
	d, _, _ := pol.Decide(c.identity)
	out, herr := pol.HardenExec(proc, container, c.identity, cfg.Host(d.Backend))
	rec.Outcome, rec.Result = out, node.ResultOf(out, herr)
	if herr != nil {
		return herr
	}
	if r.Spec, err = typeurl.MarshalAnyToProto(proc); err != nil {
		return fmt.Errorf("encode exec process: %w", err)
	}
	return nil
}

// Update holds a resource update at or below the profile's ceilings.
func (s *Service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	rec, rc, err := s.hardenExisting(ctx, node.EventUpdate, r.ID, "", func(c *container, _ node.Config, pol *profiles.Compiled, rec *node.Record) error {
		return s.hardenUpdate(r, c, pol, rec)
	})
	if err != nil {
		return nil, err
	}
	resp, err := s.TTRPCTaskService.Update(ctx, r)
	if err != nil {
		rec.Error = "runtime: " + err.Error()
	}
	s.record(ctx, rc, rec)
	return resp, err
}

func (s *Service) hardenUpdate(r *taskAPI.UpdateTaskRequest, c *container, pol *profiles.Compiled, rec *node.Record) error {
	if r.Resources == nil {
		return nil
	}
	v, err := typeurl.UnmarshalAny(r.Resources)
	if err != nil {
		return fmt.Errorf("decode resources: %w", err)
	}
	res, ok := v.(*specs.LinuxResources)
	if !ok {
		return fmt.Errorf("update resources are a %T, not OCI Linux resources", v)
	}
	out, herr := pol.HardenUpdate(res, c.identity)
	rec.Outcome, rec.Result = out, node.ResultOf(out, herr)
	if herr != nil {
		return herr
	}
	if r.Resources, err = typeurl.MarshalAnyToProto(res); err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	return nil
}

// Delete forgets a deleted container.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err == nil && r.ExecID == "" {
		ns, _ := namespaces.Namespace(ctx)
		s.mu.Lock()
		c := s.containers[r.ID]
		delete(s.containers, r.ID)
		s.mu.Unlock()
		if c != nil {
			if rerr := c.config.Recorder().RemoveState(ns, r.ID); rerr != nil {
				log.G(ctx).WithError(rerr).Warn("harden: remove container state")
			}
		}
	}
	return resp, err
}

// lookup finds a container harden created and the current policy. A
// container harden does not know (created before a shim restart, or by
// another runtime) is refused: hardening it blind would not be safe.
func (s *Service) lookup(id string) (*container, node.Config, *profiles.Compiled, error) {
	s.mu.Lock()
	c, ok := s.containers[id]
	s.mu.Unlock()
	if !ok {
		return nil, s.nodeConfig, nil, fmt.Errorf("container %q was not created through harden", id)
	}
	pol, err := s.policy(c.config.Policy()).Get()
	return c, c.config, pol, err
}

// record writes the decision to the decision log, the shim log and
// containerd's event stream. None of these may fail the container: the
// decision is already made and enforced.
func (s *Service) record(ctx context.Context, rc *node.Recorder, rec node.Record) {
	entry := log.G(ctx).WithField("id", rec.ID).WithField("event", rec.Event).WithField("result", rec.Result)
	if rec.Outcome != nil {
		entry = entry.WithField("rule", rec.Outcome.Decision.Rule).WithField("profile", rec.Outcome.Decision.Profile).
			WithField("mode", rec.Outcome.Decision.Mode).WithField("changes", len(rec.Outcome.Changes))
	}
	if rec.Error != "" {
		entry = entry.WithField("error", rec.Error)
	}
	b, _ := json.Marshal(rec)
	entry.WithField("record", string(b)).Info("harden decision")
	if err := rc.Write(rec); err != nil {
		entry.WithError(err).Warn("harden: write decision log")
	}
	if s.publisher != nil {
		// Off the request path: publishing is a round trip to containerd,
		// and the event carries nothing the caller waits for.
		go func(ctx context.Context) {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return
			}
			ev, err := structpb.NewStruct(m)
			if err != nil {
				return
			}
			if err := s.publisher.Publish(ctx, DecisionTopic, ev); err != nil {
				entry.WithError(err).Debug("harden: publish decision event")
			}
		}(context.WithoutCancel(ctx))
	}
}
