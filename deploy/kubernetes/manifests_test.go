// Package kubernetes holds no code: it tests the manifests in this
// directory. Every YAML document is decoded strictly (an unknown field is an
// error) into the Kubernetes API type its apiVersion and kind name, the
// cross-references between the objects are checked, the policies parse with
// profiles.Parse and decide as documented, the example pod passes the
// restricted profile, and the installer script is run against a directory
// tree standing for a node. Nothing here talks to a cluster.
package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	toml "github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/harden-dev/harden/node"
	"github.com/harden-dev/harden/profiles"
	"github.com/harden-dev/harden/spec"
)

const (
	namespace      = "harden-system"
	policyCM       = "harden-policy"
	settingsCM     = "harden-installer"
	scriptCM       = "harden-installer-script"
	daemonSetName  = "harden-node-installer"
	installedLabel = "harden.dev/installed"
)

// object is one decoded document.
type object struct {
	file string
	doc  int
	obj  any
}

// newTyped returns the API type for a document's apiVersion and kind.
func newTyped(tm metav1.TypeMeta) (any, bool) {
	switch tm.APIVersion + " " + tm.Kind {
	case "node.k8s.io/v1 RuntimeClass":
		return &nodev1.RuntimeClass{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1 Pod":
		return &corev1.Pod{}, true
	case "apps/v1 DaemonSet":
		return &appsv1.DaemonSet{}, true
	}
	return nil, false
}

// decodeAll decodes every document of every YAML file in this directory
// and below, strictly.
func decodeAll(t *testing.T) []object {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no YAML files found")
	}
	var out []object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for i := 0; ; i++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			var probe map[string]any
			if err := yaml.Unmarshal(doc, &probe); err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if len(probe) == 0 {
				continue // comments only
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			obj, ok := newTyped(tm)
			if !ok {
				t.Fatalf("%s: document %d: unexpected apiVersion %q kind %q", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: document %d (%s): %v", f, i, tm.Kind, err)
			}
			out = append(out, object{f, i, obj})
		}
	}
	return out
}

type manifests struct {
	runtimeClasses map[string]*nodev1.RuntimeClass
	configMaps     map[string]*corev1.ConfigMap
	namespaces     map[string]*corev1.Namespace
	serviceAccount map[string]*corev1.ServiceAccount
	daemonSets     map[string]*appsv1.DaemonSet
	pods           map[string]*corev1.Pod
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		runtimeClasses: map[string]*nodev1.RuntimeClass{}, configMaps: map[string]*corev1.ConfigMap{},
		namespaces: map[string]*corev1.Namespace{}, serviceAccount: map[string]*corev1.ServiceAccount{},
		daemonSets: map[string]*appsv1.DaemonSet{}, pods: map[string]*corev1.Pod{},
	}
	for _, o := range decodeAll(t) {
		var meta metav1.ObjectMeta
		var dst any
		switch v := o.obj.(type) {
		case *nodev1.RuntimeClass:
			meta, dst = v.ObjectMeta, m.runtimeClasses
		case *corev1.ConfigMap:
			meta, dst = v.ObjectMeta, m.configMaps
		case *corev1.Namespace:
			meta, dst = v.ObjectMeta, m.namespaces
		case *corev1.ServiceAccount:
			meta, dst = v.ObjectMeta, m.serviceAccount
		case *appsv1.DaemonSet:
			meta, dst = v.ObjectMeta, m.daemonSets
		case *corev1.Pod:
			meta, dst = v.ObjectMeta, m.pods
		}
		where := o.file + ": " + meta.Name
		if errs := utilvalidation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
			t.Errorf("%s: name: %v", where, errs)
		}
		for k, v := range meta.Labels {
			if errs := utilvalidation.IsQualifiedName(k); len(errs) > 0 {
				t.Errorf("%s: label key %q: %v", where, k, errs)
			}
			if errs := utilvalidation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%s: label %q value %q: %v", where, k, v, errs)
			}
		}
		switch o.obj.(type) {
		case *corev1.ConfigMap, *corev1.ServiceAccount, *appsv1.DaemonSet:
			if meta.Namespace != namespace {
				t.Errorf("%s: namespace %q, want %q", where, meta.Namespace, namespace)
			}
		case *corev1.Pod:
			// The example goes in the user's namespace (-n).
		default:
			if meta.Namespace != "" {
				t.Errorf("%s: a cluster-scoped object with namespace %q", where, meta.Namespace)
			}
		}
		key := meta.Name
		switch d := dst.(type) {
		case map[string]*nodev1.RuntimeClass:
			d[key] = o.obj.(*nodev1.RuntimeClass)
		case map[string]*corev1.ConfigMap:
			d[key] = o.obj.(*corev1.ConfigMap)
		case map[string]*corev1.Namespace:
			d[key] = o.obj.(*corev1.Namespace)
		case map[string]*corev1.ServiceAccount:
			d[key] = o.obj.(*corev1.ServiceAccount)
		case map[string]*appsv1.DaemonSet:
			d[key] = o.obj.(*appsv1.DaemonSet)
		case map[string]*corev1.Pod:
			d[key] = o.obj.(*corev1.Pod)
		}
	}
	return m
}

// handlers returns the HANDLERS setting as handler -> policy file.
func (m manifests) handlers(t *testing.T) map[string]string {
	t.Helper()
	cm := m.configMaps[settingsCM]
	if cm == nil {
		t.Fatalf("no ConfigMap %s", settingsCM)
	}
	out := map[string]string{}
	for _, pair := range strings.Fields(cm.Data["HANDLERS"]) {
		h, file, ok := strings.Cut(pair, "=")
		if !ok || h == "" || file == "" {
			t.Fatalf("HANDLERS entry %q is not HANDLER=FILE", pair)
		}
		out[h] = file
	}
	if len(out) == 0 {
		t.Fatal("HANDLERS is empty")
	}
	return out
}

func TestDecodeStrict(t *testing.T) {
	m := load(t)
	for kind, n := range map[string]int{
		"RuntimeClass": len(m.runtimeClasses), "ConfigMap": len(m.configMaps), "Namespace": len(m.namespaces),
		"ServiceAccount": len(m.serviceAccount), "DaemonSet": len(m.daemonSets), "Pod": len(m.pods),
	} {
		if n == 0 {
			t.Errorf("no %s in deploy/kubernetes", kind)
		}
	}
	// The strict decoder must reject a misspelt field: prove it does.
	bad := []byte("apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: x}\nhandlr: harden\n")
	if err := yaml.UnmarshalStrict(bad, &nodev1.RuntimeClass{}); err == nil || !strings.Contains(err.Error(), "handlr") {
		t.Errorf("UnmarshalStrict accepted an unknown field: %v", err)
	}
}

func TestRuntimeClassesMatchInstaller(t *testing.T) {
	m := load(t)
	hs := m.handlers(t)
	var rcHandlers, installed []string
	for name, rc := range m.runtimeClasses {
		if errs := utilvalidation.IsDNS1123Label(rc.Handler); len(errs) > 0 {
			t.Errorf("RuntimeClass %s: handler %q: %v", name, rc.Handler, errs)
		}
		rcHandlers = append(rcHandlers, rc.Handler)
		if rc.Scheduling == nil || rc.Scheduling.NodeSelector[installedLabel] != "true" {
			t.Errorf("RuntimeClass %s: scheduling.nodeSelector %s=true missing", name, installedLabel)
		}
	}
	for h := range hs {
		installed = append(installed, h)
	}
	sort.Strings(rcHandlers)
	sort.Strings(installed)
	if !slices.Equal(rcHandlers, installed) {
		t.Errorf("RuntimeClass handlers %v, installer HANDLERS %v: they must be the same", rcHandlers, installed)
	}
	for name, want := range map[string]string{"harden": "harden", "harden-runsc": "harden-runsc"} {
		if rc := m.runtimeClasses[name]; rc == nil || rc.Handler != want {
			t.Errorf("RuntimeClass %s with handler %s: missing", name, want)
		}
	}
}

func identity(ns, typ string) spec.Identity {
	return spec.Identity{Engine: "containerd-cri", EngineNamespace: "k8s.io", Namespace: ns, ContainerType: typ, Pod: "p", Container: "c"}
}

func TestPoliciesParse(t *testing.T) {
	m := load(t)
	cm := m.configMaps[policyCM]
	if cm == nil {
		t.Fatalf("no ConfigMap %s", policyCM)
	}
	pols := map[string]*profiles.Compiled{}
	for h, file := range m.handlers(t) {
		text, ok := cm.Data[file]
		if !ok {
			t.Errorf("handler %s: ConfigMap %s has no key %s", h, policyCM, file)
			continue
		}
		p, err := profiles.Parse([]byte(text))
		if err != nil {
			t.Errorf("%s/%s: %v", policyCM, file, err)
			continue
		}
		pols[h] = p
	}
	for key := range cm.Data {
		if errs := utilvalidation.IsConfigMapKey(key); len(errs) > 0 {
			t.Errorf("key %q: %v", key, errs)
		}
	}
	type want struct {
		rule, profile string
		mode          spec.Mode
		backend       spec.Backend
	}
	cases := []struct {
		handler, ns, typ string
		want             want
	}{
		{"harden", "payments", spec.TypeContainer, want{"payments", "restricted", spec.Enforce, spec.Runc}},
		{"harden", "payments", spec.TypeSandbox, want{"payments", "restricted", spec.Enforce, spec.Runc}},
		{"harden", "kube-system", spec.TypeContainer, want{"kube-system", "baseline", spec.Audit, spec.Runc}},
		{"harden", "default", spec.TypeContainer, want{"defaults", "baseline", spec.Enforce, spec.Runc}},
		{"harden-runsc", "default", spec.TypeContainer, want{"defaults", "restricted", spec.Enforce, spec.Runsc}},
		{"harden-runsc", "default", spec.TypeSandbox, want{"defaults", "restricted", spec.Enforce, spec.Runsc}},
	}
	for _, c := range cases {
		p := pols[c.handler]
		if p == nil {
			t.Errorf("no policy for handler %s", c.handler)
			continue
		}
		id := identity(c.ns, c.typ)
		id.RuntimeHandler = c.handler
		d, _, err := p.Decide(id)
		if err != nil {
			t.Errorf("%s %s: %v", c.handler, c.ns, err)
			continue
		}
		got := want{d.Rule, d.Profile, d.Mode, d.Backend}
		if got != c.want {
			t.Errorf("handler %s, namespace %s, %s: decided %+v, want %+v", c.handler, c.ns, c.typ, got, c.want)
		}
	}
	// The runsc policy must never let a refused pod container start
	// unhardened on runc.
	if p := pols["harden-runsc"]; p != nil && p.FailurePolicy != profiles.FailDeny {
		t.Errorf("policy-runsc.yaml: failurePolicy %q, want deny", p.FailurePolicy)
	}
}

func TestDaemonSet(t *testing.T) {
	m := load(t)
	ds := m.daemonSets[daemonSetName]
	if ds == nil {
		t.Fatalf("no DaemonSet %s", daemonSetName)
	}
	if m.namespaces[namespace] == nil {
		t.Errorf("no Namespace %s", namespace)
	} else if m.namespaces[namespace].Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("Namespace %s must allow privileged pods (hostPath, privileged init container)", namespace)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match the template's labels %v", sel, ds.Spec.Template.Labels)
	}
	ps := ds.Spec.Template.Spec
	if m.serviceAccount[ps.ServiceAccountName] == nil {
		t.Errorf("serviceAccountName %q: no such ServiceAccount", ps.ServiceAccountName)
	}
	if ps.HostPID {
		t.Error("hostPID must be off by default (only RESTART_CONTAINERD=true needs it)")
	}
	if m.configMaps[settingsCM].Data["RESTART_CONTAINERD"] != "false" {
		t.Error("RESTART_CONTAINERD must be false by default")
	}
	if mode := m.configMaps[settingsCM].Data["MODE"]; mode != "install" {
		t.Errorf("MODE %q, want install", mode)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes["policy"]; v.ConfigMap == nil || v.ConfigMap.Name != policyCM {
		t.Errorf("volume policy is not ConfigMap %s: %+v", policyCM, v)
	}
	if v := volumes["script"]; v.ConfigMap == nil || v.ConfigMap.Name != scriptCM || m.configMaps[scriptCM] == nil {
		t.Errorf("volume script is not ConfigMap %s: %+v", scriptCM, v)
	}
	for name, path := range map[string]string{"host-bin": "/usr/local/bin", "host-containerd": "/etc/containerd", "host-harden": "/etc/harden"} {
		if v := volumes[name]; v.HostPath == nil || v.HostPath.Path != path {
			t.Errorf("volume %s is not hostPath %s: %+v", name, path, v)
		}
	}
	if len(ps.InitContainers) != 1 || len(ps.Containers) != 1 {
		t.Fatalf("want one init container and one container, got %d and %d", len(ps.InitContainers), len(ps.Containers))
	}
	check := func(c corev1.Container, arg string, hostMounts []string) {
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != settingsCM {
			t.Errorf("%s: envFrom must be ConfigMap %s", c.Name, settingsCM)
		}
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("%s: volumeMount %s: no such volume", c.Name, vm.Name)
			}
			mounts[vm.Name] = vm.MountPath
		}
		if mounts["policy"] != env["POLICY_SRC"] || env["POLICY_SRC"] == "" {
			t.Errorf("%s: the policy ConfigMap is mounted at %q, POLICY_SRC is %q", c.Name, mounts["policy"], env["POLICY_SRC"])
		}
		for _, hm := range hostMounts {
			if want := env["HOST_ROOT"] + volumes[hm].HostPath.Path; mounts[hm] != want {
				t.Errorf("%s: %s mounted at %q, want %q (HOST_ROOT + host path)", c.Name, hm, mounts[hm], want)
			}
		}
		if len(c.Command) != 3 || c.Command[1] != filepath.Join(mounts["script"], "install.sh") || c.Command[2] != arg {
			t.Errorf("%s: command %q, want [/bin/sh %s/install.sh %s]", c.Name, c.Command, mounts["script"], arg)
		}
		if c.Image == "" {
			t.Errorf("%s: no image", c.Name)
		}
	}
	initC, main := ps.InitContainers[0], ps.Containers[0]
	check(initC, "apply", []string{"host-bin", "host-containerd", "host-harden", "host-harden-state"})
	check(main, "watch", []string{"host-harden"})
	if initC.SecurityContext == nil || initC.SecurityContext.Privileged == nil || !*initC.SecurityContext.Privileged {
		t.Error("the install init container must be privileged (nsenter for RESTART_CONTAINERD)")
	}
	if sc := main.SecurityContext; sc == nil || sc.Privileged != nil && *sc.Privileged ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("the policy-sync container must not be privileged and must drop every capability")
	}
	if main.Lifecycle != nil && main.Lifecycle.PreStop != nil {
		t.Error("no preStop: it would uninstall on every rolling update")
	}
}

// podSpec is what containerd's CRI makes of the example pod's container,
// starting from the spec containerd 2.4 wrote for a container with no
// securityContext in namespace payments: the user, the capability sets
// (drop ALL, add the listed ones) and no_new_privileges.
func podSpec(t *testing.T, sc *corev1.SecurityContext, ns string) (*specs.Spec, spec.Identity) {
	t.Helper()
	doc, err := spec.Parse(mustRead(t, "../../spec/testdata/engines/cri-container-restricted-ns.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := doc.Spec
	if sc.RunAsUser != nil {
		s.Process.User.UID = uint32(*sc.RunAsUser)
		s.Process.User.GID = uint32(*sc.RunAsUser)
		s.Process.User.AdditionalGids = nil
	}
	if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") {
		var caps []string
		for _, c := range sc.Capabilities.Add {
			caps = append(caps, "CAP_"+string(c))
		}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		s.Process.NoNewPrivileges = true
	}
	s.Annotations["io.kubernetes.cri.sandbox-namespace"] = ns
	id := spec.IdentityFromSpec(s)
	id.RuntimeHandler = "harden"
	return s, id
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExamplePod(t *testing.T) {
	m := load(t)
	if len(m.pods) != 1 {
		t.Fatalf("want one example pod, got %d", len(m.pods))
	}
	var pod *corev1.Pod
	for _, p := range m.pods {
		pod = p
	}
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName != "harden" || m.runtimeClasses["harden"] == nil {
		t.Fatalf("runtimeClassName must be harden (and that RuntimeClass must exist)")
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: runAsNonRoot and a non-zero runAsUser")
	}
	pol, err := profiles.Parse([]byte(m.configMaps[policyCM].Data["policy.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pod.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Fatalf("%s: no securityContext", c.Name)
		}
		// Pod Security "restricted", field by field.
		switch {
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s: privileged", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: allowPrivilegeEscalation must be false", c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 1000:
			t.Errorf("%s: runAsNonRoot with runAsUser 1000", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}):
			t.Errorf("%s: capabilities must drop ALL and add only NET_BIND_SERVICE", c.Name)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s: seccompProfile RuntimeDefault", c.Name)
		}

		// And harden's restricted profile, through the payments rule,
		// accepts the spec containerd makes of it.
		s, id := podSpec(t, sc, "payments")
		out, err := pol.Harden(s, id, spec.Host{})
		if err != nil {
			t.Fatalf("%s: restricted refuses the example: %v", c.Name, err)
		}
		if out.Decision.Profile != "restricted" || out.Decision.Mode != spec.Enforce {
			t.Errorf("%s in payments: decided %+v, want restricted/enforce", c.Name, out.Decision)
		}
		if s.Process.User.UID != 1000 || !s.Process.NoNewPrivileges ||
			!slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
			t.Errorf("%s: hardened process %+v", c.Name, s.Process)
		}

		// The same container as root is refused: the check above means something.
		root := sc.DeepCopy()
		zero := int64(0)
		root.RunAsUser = &zero
		s, id = podSpec(t, root, "payments")
		if _, err := pol.Harden(s, id, spec.Host{}); !errors.Is(err, spec.ErrPolicyViolation) || !strings.Contains(err.Error(), profiles.RuleNonRoot) {
			t.Errorf("%s as root in payments: %v, want a %s refusal", c.Name, err, profiles.RuleNonRoot)
		}
	}
}

// The installer script, run against a directory tree standing for the node.

func script(t *testing.T) string {
	t.Helper()
	m := load(t)
	text := m.configMaps[scriptCM].Data["install.sh"]
	if text == "" {
		t.Fatalf("ConfigMap %s has no install.sh", scriptCM)
	}
	p := filepath.Join(t.TempDir(), "install.sh")
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScriptSyntax(t *testing.T) {
	p := script(t)
	for _, sh := range []string{"sh", "dash", "busybox"} {
		bin, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		args := []string{"-n", p}
		if sh == "busybox" {
			args = append([]string{"sh"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("%s -n install.sh: %v\n%s", sh, err, out)
		}
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		if out, err := exec.Command(sc, "-s", "sh", p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	}
}

type node_ struct {
	t                                   *testing.T
	script, root, src, policy, hostConf string
	env                                 []string
}

const existingConfig = `version = 3

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "registry.k8s.io/pause:3.10.2"
`

func newNode(t *testing.T) *node_ {
	if testing.Short() {
		t.Skip("builds hardenctl")
	}
	dir := t.TempDir()
	n := &node_{t: t, script: script(t), root: filepath.Join(dir, "host"), src: filepath.Join(dir, "src"), policy: filepath.Join(dir, "policy")}
	for _, d := range []string{n.src, n.policy, n.root + "/etc/containerd", n.root + "/usr/local/bin", n.root + "/etc/harden", n.root + "/run/harden"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(n.src, "hardenctl"), "github.com/harden-dev/harden/cmd/hardenctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hardenctl: %v\n%s", err, out)
	}
	for _, b := range []string{"containerd-shim-harden-v2", "harden-runc"} {
		n.write(filepath.Join(n.src, b), "#!/bin/sh\n# stand-in for "+b+"\n", 0o755)
	}
	m := load(t)
	for k, v := range m.configMaps[policyCM].Data {
		n.write(filepath.Join(n.policy, k), v, 0o644)
	}
	n.hostConf = filepath.Join(n.root, "etc/containerd/config.toml")
	n.write(n.hostConf, existingConfig, 0o644)
	n.env = []string{"PATH=" + os.Getenv("PATH"), "HOST_ROOT=" + n.root, "HARDEN_SRC_BIN=" + n.src, "POLICY_SRC=" + n.policy}
	for k, v := range m.configMaps[settingsCM].Data {
		n.env = append(n.env, k+"="+v)
	}
	return n
}

func (n *node_) write(p, text string, mode os.FileMode) {
	n.t.Helper()
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node_) run(arg string, env ...string) (string, error) {
	cmd := exec.Command("sh", n.script, arg)
	cmd.Env = append(slices.Clone(n.env), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *node_) read(p string) string {
	n.t.Helper()
	return string(mustRead(n.t, filepath.Join(n.root, p)))
}

func TestInstallerScript(t *testing.T) {
	n := newNode(t)

	out, err := n.run("apply")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	for _, want := range []string{"installed " + n.root + "/etc/harden/policy.yaml", "installed " + n.root + "/usr/local/bin/containerd-shim-harden-v2",
		"backup: ", "containerd's configuration changed: restart containerd"} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	conf := n.read("etc/containerd/config.toml")
	if !strings.HasPrefix(conf, existingConfig) {
		t.Errorf("the existing configuration was not kept as it was:\n%s", conf)
	}
	var cfg struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType string         `toml:"runtime_type"`
					Options     map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal([]byte(conf), &cfg); err != nil {
		t.Fatalf("containerd config: %v\n%s", err, conf)
	}
	runtimes := cfg.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes
	for h, file := range load(t).handlers(t) {
		r, ok := runtimes[h]
		if !ok || r.RuntimeType != "io.containerd.harden.v2" {
			t.Errorf("handler %s not registered as io.containerd.harden.v2:\n%s", h, conf)
			continue
		}
		opts, _ := toml.Marshal(r.Options)
		nc, err := node.ParseConfig(opts)
		if err != nil {
			t.Errorf("handler %s: options are not a valid harden config: %v", h, err)
		}
		if nc.PolicyPath != "/etc/harden/"+file || nc.RuntimeHandler != h {
			t.Errorf("handler %s: PolicyPath %q RuntimeHandler %q, want /etc/harden/%s and %s", h, nc.PolicyPath, nc.RuntimeHandler, file, h)
		}
		st, err := os.Stat(filepath.Join(n.root, "etc/harden", file))
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("/etc/harden/%s: %v, mode %v; want 0644", file, err, st.Mode())
		}
		if _, err := profiles.Load(filepath.Join(n.root, "etc/harden", file)); err != nil {
			t.Errorf("the shim would not load the installed policy: %v", err)
		}
	}
	for _, b := range []string{"containerd-shim-harden-v2", "harden-runc", "hardenctl"} {
		if st, err := os.Stat(filepath.Join(n.root, "usr/local/bin", b)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v", b, err)
		}
	}

	// A second run changes nothing.
	out, err = n.run("apply")
	if err != nil {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	if strings.Contains(out, "installed /") || strings.Contains(out, "wrote ") || !strings.Contains(out, "no restart needed") {
		t.Errorf("the second install changed something:\n%s", out)
	}
	if got := n.read("etc/containerd/config.toml"); got != conf {
		t.Errorf("the second install changed containerd's config:\n%s", got)
	}

	// RESTART_CONTAINERD=true with nothing changed restarts nothing.
	if out, err = n.run("apply", "RESTART_CONTAINERD=true", "RESTART_COMMAND=false"); err != nil || !strings.Contains(out, "no restart needed") {
		t.Errorf("RESTART_CONTAINERD with an unchanged config: %v\n%s", err, out)
	}

	// An invalid policy stops a first install, naming the line.
	good := mustRead(t, filepath.Join(n.policy, "policy.yaml"))
	n.write(filepath.Join(n.policy, "policy.yaml"), strings.Replace(string(good), "mode: audit", "moed: audit", 1), 0o644)
	out, err = n.run("apply")
	if err == nil || !strings.Contains(out, "moed") || !strings.Contains(out, "line ") {
		t.Errorf("install with an invalid policy: %v\n%s", err, out)
	}
	installedPolicy := n.read("etc/harden/policy.yaml")
	if installedPolicy != string(good) {
		t.Error("an invalid policy replaced the installed one")
	}

	// watch: an invalid edit is reported and not copied; a valid one is.
	watch := func() string {
		cmd := exec.Command("sh", n.script, "watch")
		cmd.Env = append(slices.Clone(n.env), "SYNC_INTERVAL=1")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("watch after SIGTERM: %v\n%s", err, buf.String())
		}
		return buf.String()
	}
	out = watch()
	if strings.Count(out, "not installing policy.yaml") != 1 || n.read("etc/harden/policy.yaml") != string(good) {
		t.Errorf("watch with an invalid policy (want one report, the node's file kept):\n%s", out)
	}
	edited := strings.Replace(string(good), "profile: baseline\n  mode: audit", "profile: restricted\n  mode: audit", 1)
	if edited == string(good) {
		t.Fatal("the edit did not apply")
	}
	n.write(filepath.Join(n.policy, "policy.yaml"), edited, 0o644)
	out = watch()
	if !strings.Contains(out, "installed "+n.root+"/etc/harden/policy.yaml") || n.read("etc/harden/policy.yaml") != edited {
		t.Errorf("watch did not install the edited policy:\n%s", out)
	}

	// uninstall keeps the binaries while harden has containers on the node.
	state := filepath.Join(n.root, "run/harden/containers/k8s.io")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	n.write(filepath.Join(state, "abc.json"), "{}", 0o644)
	out, err = n.run("apply", "MODE=uninstall")
	if err != nil || !strings.Contains(out, "keeping the binaries") {
		t.Errorf("uninstall with containers: %v\n%s", err, out)
	}
	if got := n.read("etc/containerd/config.toml"); strings.TrimRight(got, "\n") != strings.TrimRight(existingConfig, "\n") {
		t.Errorf("uninstall left containerd's config as:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(n.root, "usr/local/bin/containerd-shim-harden-v2")); err != nil {
		t.Error("uninstall removed the shim while harden had containers")
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	out, err = n.run("apply", "MODE=uninstall")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	for _, b := range []string{"containerd-shim-harden-v2", "harden-runc", "hardenctl"} {
		if _, err := os.Stat(filepath.Join(n.root, "usr/local/bin", b)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("uninstall left %s: %v", b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(n.root, "etc/harden/policy.yaml")); err != nil {
		t.Errorf("uninstall removed the policy without REMOVE_POLICY=true: %v", err)
	}
}

// TestInstallerScriptRuncType: RUNTIME_TYPE=runc registers each handler as
// runc's runtime type with harden's shim as runtime_path (what pods with
// hostUsers: false need), idempotently, and refuses, before writing
// anything, handlers that name a policy a runc-type handler cannot select.
func TestInstallerScriptRuncType(t *testing.T) {
	n := newNode(t)
	out, err := n.run("apply", "RUNTIME_TYPE=runc")
	if err == nil || !strings.Contains(out, "handler harden-runsc names policy-runsc.yaml") {
		t.Errorf("RUNTIME_TYPE=runc with a second policy file: %v\n%s", err, out)
	}
	if got := n.read("etc/containerd/config.toml"); got != existingConfig {
		t.Errorf("a refused install changed containerd's config:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(n.root, "usr/local/bin/containerd-shim-harden-v2")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused install copied the shim: %v", err)
	}
	if out, err := n.run("apply", "RUNTIME_TYPE=runsc"); err == nil || !strings.Contains(out, "want harden or runc") {
		t.Errorf("RUNTIME_TYPE=runsc: %v\n%s", err, out)
	}

	out, err = n.run("apply", "RUNTIME_TYPE=runc", "HANDLERS=harden=policy.yaml harden-userns=policy.yaml")
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	conf := n.read("etc/containerd/config.toml")
	var cfg struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]map[string]any `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal([]byte(conf), &cfg); err != nil {
		t.Fatalf("containerd config: %v\n%s", err, conf)
	}
	runtimes := cfg.Plugins["io.containerd.cri.v1.runtime"].Containerd.Runtimes
	for _, h := range []string{"harden", "harden-userns"} {
		want := map[string]any{"runtime_type": "io.containerd.runc.v2", "runtime_path": "/usr/local/bin/containerd-shim-harden-v2"}
		if got := runtimes[h]; !reflect.DeepEqual(got, want) {
			t.Errorf("handler %s = %v, want %v (no options: containerd sends runc options)\n%s", h, got, want, conf)
		}
	}
	out, err = n.run("apply", "RUNTIME_TYPE=runc", "HANDLERS=harden=policy.yaml harden-userns=policy.yaml")
	if err != nil || strings.Contains(out, "wrote ") || !strings.Contains(out, "no restart needed") {
		t.Errorf("the second install changed something: %v\n%s", err, out)
	}
	if got := n.read("etc/containerd/config.toml"); got != conf {
		t.Errorf("the second install changed containerd's config:\n%s", got)
	}
	out, err = n.run("apply", "MODE=uninstall", "HANDLERS=harden=policy.yaml harden-userns=policy.yaml")
	if err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if got := n.read("etc/containerd/config.toml"); strings.TrimRight(got, "\n") != strings.TrimRight(existingConfig, "\n") {
		t.Errorf("uninstall left containerd's config as:\n%s", got)
	}
}
