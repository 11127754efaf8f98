package spec

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container types as CRI annotations name them.
const (
	TypeSandbox   = "sandbox"
	TypeContainer = "container"
)

// Engines harden can tell apart from a spec.
const (
	EngineContainerdCRI = "containerd-cri"
	EngineCRIO          = "cri-o"
	EnginePodman        = "podman"
	EngineDocker        = "docker"
	EngineUnknown       = "unknown"
)

// Identity is who a container is, as far as a policy rule can match it.
// IdentityFromSpec fills what the spec carries; the entry point adds what
// only it knows (the containerd namespace, the ID, the runtime handler, the
// image for engines that do not annotate it).
type Identity struct {
	ID              string            `json:"id,omitempty"`
	Engine          string            `json:"engine,omitempty"`
	EngineNamespace string            `json:"engineNamespace,omitempty"`
	RuntimeHandler  string            `json:"runtimeHandler,omitempty"`
	ContainerType   string            `json:"containerType,omitempty"`
	Namespace       string            `json:"namespace,omitempty"` // Kubernetes namespace
	Pod             string            `json:"pod,omitempty"`
	PodUID          string            `json:"podUID,omitempty"`
	Container       string            `json:"container,omitempty"`
	Image           string            `json:"image,omitempty"`
	SandboxID       string            `json:"sandboxID,omitempty"`
	Annotations     map[string]string `json:"-"`
}

// Annotation keys that engines write into the spec (containerd
// internal/cri/annotations, CRI-O pkg/annotations, Podman libpod).
const (
	annCRIContainerType = "io.kubernetes.cri.container-type"
	annCRISandboxID     = "io.kubernetes.cri.sandbox-id"
	annCRINamespace     = "io.kubernetes.cri.sandbox-namespace"
	annCRIPod           = "io.kubernetes.cri.sandbox-name"
	annCRIPodUID        = "io.kubernetes.cri.sandbox-uid"
	annCRIContainer     = "io.kubernetes.cri.container-name"
	annCRIImage         = "io.kubernetes.cri.image-name"
	annCRISandboxImage  = "io.kubernetes.cri.podsandbox.image-name"

	annCRIOContainerType = "io.kubernetes.cri-o.ContainerType"
	annCRIOImage         = "io.kubernetes.cri-o.ImageName"
	annCRIOHandler       = "io.kubernetes.cri-o.RuntimeHandler"
	annCRIOSandboxID     = "io.kubernetes.cri-o.SandboxID"
	annKubeNamespace     = "io.kubernetes.pod.namespace"
	annKubePod           = "io.kubernetes.pod.name"
	annKubePodUID        = "io.kubernetes.pod.uid"
	annKubeContainer     = "io.kubernetes.container.name"

	annPodmanManager = "io.container.manager"
)

// IdentityFromSpec reads the container's identity from the spec's
// annotations. Fields the engine does not provide stay empty; see
// docs/architecture.md for which engine provides which field.
func IdentityFromSpec(s *specs.Spec) Identity {
	var a map[string]string
	if s != nil {
		a = s.Annotations
	}
	id := Identity{Annotations: a, Engine: EngineUnknown, ContainerType: TypeContainer}
	switch {
	case a[annCRIContainerType] != "":
		id.Engine = EngineContainerdCRI
		id.ContainerType = a[annCRIContainerType]
		id.SandboxID = a[annCRISandboxID]
		id.Namespace = a[annCRINamespace]
		id.Pod = a[annCRIPod]
		id.PodUID = a[annCRIPodUID]
		id.Container = a[annCRIContainer]
		id.Image = a[annCRIImage]
		if id.ContainerType == TypeSandbox {
			id.Image = a[annCRISandboxImage]
		}
		// containerd does not write the runtime handler into the spec
		// (its io.containerd.cri.runtime-handler is a pod annotation a
		// workload could set): the shim fills it from the handler's options.
	case a[annCRIOContainerType] != "":
		id.Engine = EngineCRIO
		id.ContainerType = a[annCRIOContainerType]
		id.SandboxID = a[annCRIOSandboxID]
		id.Namespace = a[annKubeNamespace]
		id.Pod = a[annKubePod]
		id.PodUID = a[annKubePodUID]
		id.Container = a[annKubeContainer]
		id.Image = a[annCRIOImage]
		id.RuntimeHandler = a[annCRIOHandler]
	case a[annPodmanManager] == "libpod":
		id.Engine = EnginePodman
	}
	if id.ContainerType != TypeSandbox && id.ContainerType != TypeContainer {
		id.ContainerType = strings.ToLower(id.ContainerType)
	}
	return id
}
