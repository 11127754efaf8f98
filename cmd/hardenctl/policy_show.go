package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/harden-dev/harden/profiles"
)

var cmdPolicyShow = &command{
	name:    "policy show",
	args:    "[--default | --policy FILE] [--resolved] [--json]",
	summary: "Print the policy in force, or every profile fully resolved",
	detail: `Without flags it prints ` + profiles.DefaultPolicyPath + ` if it exists, else the
embedded default policy. --resolved prints each profile (built-in and the
policy's own) with every field its extends chain sets, so you can see what
"baseline" really contains.`,
	examples: []string{
		"hardenctl policy show",
		"hardenctl policy show --default > /etc/harden/policy.yaml",
		"hardenctl policy show --resolved --policy ./policy.yaml",
	},
	run: runPolicyShow,
}

// resolvedProfile is one profile in --resolved --json output; Profile uses
// the policy file's field names.
type resolvedProfile struct {
	Name    string   `json:"name"`
	Chain   []string `json:"chain"`
	Profile any      `json:"profile"`
}

func runPolicyShow(c *cli, cmd *command, fs *flag.FlagSet, args []string) error {
	var pol policyFlag
	pol.register(fs)
	useDefault := fs.Bool("default", false, "show the embedded default policy")
	resolved := fs.Bool("resolved", false, "show every profile with all fields resolved through extends")
	jsonOut := fs.Bool("json", false, "print JSON (the policy's field names)")
	pos, err := c.parse(cmd, fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(cmd, pos); err != nil {
		return err
	}
	if *useDefault && pol.path != "" {
		return usagef(cmd, "give --default or --policy, not both")
	}

	var (
		pc     *profiles.Compiled
		source string
		raw    []byte
	)
	if *useDefault {
		if pc, err = profiles.LoadDefault(); err != nil {
			return err
		}
		source, raw = pc.Source, profiles.DefaultPolicyYAML()
	} else {
		if pc, source, err = pol.load(); err != nil {
			return err
		}
		raw = profiles.DefaultPolicyYAML()
		if pc.Source != "(embedded default)" {
			if raw, err = os.ReadFile(pc.Source); err != nil {
				return fmt.Errorf("read policy: %w", err)
			}
		}
	}

	if !*resolved {
		if *jsonOut {
			var doc any
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				return fmt.Errorf("decode policy %s: %w", pc.Source, err)
			}
			return writeJSON(c.stdout, map[string]any{"source": pc.Source, "policy": doc})
		}
		fmt.Fprintf(c.stdout, "# policy: %s\n", source)
		_, err := c.stdout.Write(raw)
		return err
	}

	var out []resolvedProfile
	for _, name := range pc.ProfileNames() {
		r, ok := pc.Profile(name)
		if !ok {
			continue
		}
		body, err := marshalYAML(r.Profile)
		if err != nil {
			return fmt.Errorf("encode profile %s: %w", name, err)
		}
		if *jsonOut {
			var doc any
			if err := yaml.Unmarshal(body, &doc); err != nil {
				return fmt.Errorf("encode profile %s: %w", name, err)
			}
			out = append(out, resolvedProfile{Name: name, Chain: r.Chain, Profile: doc})
			continue
		}
		if len(out) > 0 {
			fmt.Fprintln(c.stdout, "---")
		}
		out = append(out, resolvedProfile{Name: name})
		fmt.Fprintf(c.stdout, "# profile %s, resolved (extends chain: %s)\n# policy: %s\n", name, strings.Join(r.Chain, " -> "), source)
		if _, err := c.stdout.Write(body); err != nil {
			return err
		}
	}
	if *jsonOut {
		return writeJSON(c.stdout, map[string]any{"source": pc.Source, "profiles": out})
	}
	return nil
}

// marshalYAML encodes v with every struct field, omitempty or not: in a
// resolved profile an absent field would read as "inherits", when it is
// really empty or unset.
func marshalYAML(v any) ([]byte, error) {
	n, err := fullNode(reflect.ValueOf(v))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// fullNode builds the YAML node of v, keeping the fields that omitempty
// would drop: nil pointers as null, nil lists as [].
func fullNode(v reflect.Value) (*yaml.Node, error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			val, err := fullNode(v.Field(i))
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, val)
		}
		return n, nil
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if v.Len() == 0 {
			n.Style = yaml.FlowStyle // []
		}
		for i := 0; i < v.Len(); i++ {
			e, err := fullNode(v.Index(i))
			if err != nil {
				return nil, err
			}
			if e.Kind == yaml.MappingNode {
				e.Style = yaml.FlowStyle // - {path: /proc, subtree: true}
			}
			n.Content = append(n.Content, e)
		}
		return n, nil
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return &n, nil
}
