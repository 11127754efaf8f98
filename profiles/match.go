package profiles

import (
	"fmt"
	"slices"

	"github.com/harden-dev/harden/spec"
)

// glob matches s against a shell-style pattern where "*" matches any run of
// characters, "/" included (so "docker.io/*" matches every image under it),
// and "?" matches one character. There are no character classes: image
// references and names do not need them, and a pattern cannot be malformed.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	nextP, nextS := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextP, nextS = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextS > 0 && nextS <= len(s) {
			px, sx = nextP, nextS
			continue
		}
		return false
	}
	return true
}

func anyGlob(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return glob(p, s) })
}

// matches reports whether id matches m, and why (or why not), for explain.
func (m Match) matches(id spec.Identity) (bool, []string) {
	var why []string
	check := func(field string, patterns []string, value string) bool {
		if len(patterns) == 0 {
			return true
		}
		ok := anyGlob(patterns, value)
		why = append(why, fmt.Sprintf("%s %q %s %v", field, value, verdict(ok), patterns))
		return ok
	}
	ok := check("image", m.Images, id.Image) &&
		check("namespace", m.Namespaces, id.Namespace) &&
		check("pod", m.Pods, id.Pod) &&
		check("container", m.Containers, id.Container) &&
		check("engineNamespace", m.EngineNamespaces, id.EngineNamespace) &&
		check("runtimeHandler", m.RuntimeHandlers, id.RuntimeHandler) &&
		check("engine", m.Engines, id.Engine)
	if ok && m.ContainerType != "" {
		ok = m.ContainerType == id.ContainerType
		why = append(why, fmt.Sprintf("containerType %q %s %q", id.ContainerType, verdict(ok), m.ContainerType))
	}
	if ok {
		for _, k := range sortedKeys(m.Annotations) {
			v, present := id.Annotations[k]
			ok = present && glob(m.Annotations[k], v)
			why = append(why, fmt.Sprintf("annotation %s=%q %s %q", k, v, verdict(ok), m.Annotations[k]))
			if !ok {
				break
			}
		}
	}
	return ok, why
}

func verdict(ok bool) string {
	if ok {
		return "matches"
	}
	return "does not match"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
