package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxSpecSize bounds what Parse accepts. Real specs are tens of KiB (a large
// seccomp profile included); anything near this is an attack or a bug.
const MaxSpecSize = 16 << 20

// Document is a parsed OCI spec that remembers the JSON fields this
// runtime-spec version does not know, so that writing it back never drops
// what a newer engine added.
type Document struct {
	Spec *specs.Spec
	// orig holds the input when it had unknown fields or names a field
	// twice; nil otherwise.
	orig []byte
	// ambiguous: the input names a field twice (in any spelling). It was
	// decoded as runc decodes it (encoding/json: the last one wins, objects
	// merge), so harden decides on what runc would run; but a runtime with
	// another decoder (crun's yajl matches keys exactly) could read it
	// differently, so an enforced decision must hand the runtime harden's
	// own rendering, never the input.
	ambiguous bool
}

// Ambiguous reports whether the input named a field twice: the runtime
// must be given Marshal's output, not the input, for the decision to hold.
func (d *Document) Ambiguous() bool { return d.ambiguous }

// Parse decodes an OCI config.json.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("parse spec: %d bytes is larger than the %d byte limit", len(data), MaxSpecSize)
	}
	// Fast path: a strict decode succeeds when every field is known, and
	// then there is nothing to preserve.
	var s specs.Spec
	err := jsonv2.Unmarshal(data, &s, strictDecode)
	if err == nil {
		return &Document{Spec: &s}, nil
	}
	if errors.Is(err, jsontext.ErrDuplicateName) {
		return parseAmbiguous(data)
	}
	if !errors.Is(err, jsonv2.ErrUnknownName) {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	s = specs.Spec{}
	if err := jsonv2.Unmarshal(data, &s, lenientDecode); err != nil {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return parseAmbiguous(data)
		}
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	return &Document{Spec: &s, orig: bytes.Clone(data)}, nil
}

// parseAmbiguous decodes a spec that names a field twice exactly as runc
// does, with encoding/json: keys match without regard to case, the last
// value wins and objects given twice merge. harden then decides on the
// values runc would use, and Marshal renders each field once.
func parseAmbiguous(data []byte) (*Document, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	return &Document{Spec: &s, orig: bytes.Clone(data), ambiguous: true}, nil
}

// strictDecode reads a spec the way runc will (encoding/json: object keys
// match fields without regard to case) but stops at what runc would resolve
// silently: a key given twice, in any spelling, where runc takes the last.
// Such a document takes parseAmbiguous, which decodes it as runc does, so
// a second "noNewPrivileges" cannot hide behind the one harden checked.
// Unknown fields fail here and take the preserving slow path.
// json v2 (github.com/go-json-experiment/json) also decodes about three
// times faster than encoding/json, which matters on every container start.
var strictDecode = jsonv2.JoinOptions(
	jsonv1.DefaultOptionsV1(),
	jsonv1.ReportErrorsWithLegacySemantics(false), // so ErrUnknownName can be told apart
	jsontext.AllowDuplicateNames(false),
	jsonv2.RejectUnknownMembers(true),
)

// lenientDecode is strictDecode without the refusal of unknown fields.
var lenientDecode = jsonv2.JoinOptions(strictDecode, jsonv2.RejectUnknownMembers(false))

// encodeV1 writes what encoding/json would (omitempty as v1 defines it, nil
// slices as null), so the hardened file differs from the input only in what
// harden changed.
var encodeV1 = jsonv1.DefaultOptionsV1()

// Marshal encodes the (possibly hardened) spec, putting back every field the
// input had that the runtime-spec types do not know. Unknown fields inside
// arrays are kept by index for the elements that exist in both.
func (d *Document) Marshal() ([]byte, error) {
	out, err := jsonv2.Marshal(d.Spec, encodeV1)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	if d.orig == nil {
		return out, nil
	}
	orig, err := decodeGeneric(d.orig)
	if err != nil {
		return nil, err
	}
	merged, err := decodeGeneric(out)
	if err != nil {
		return nil, err
	}
	keepUnknown(orig, specType, merged)
	b, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return b, nil
}

var specType = reflect.TypeFor[specs.Spec]()

func decodeGeneric(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep 64-bit values exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	return v, nil
}

// keepUnknown copies into out every key of orig that names no field of the
// runtime-spec type t at that place, where out has an object there. A key
// is a field when it matches the field's JSON name without regard to case,
// as encoding/json (and so runc) matches it: such a key was decoded, and
// copying it back, even in another spelling, would let "nonewprivileges":
// false next to harden's "noNewPrivileges": true win in runc.
func keepUnknown(orig any, t reflect.Type, out any) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return
	}
	switch o := orig.(type) {
	case map[string]any:
		n, ok := out.(map[string]any)
		if !ok || t.Kind() != reflect.Struct {
			return // a map's keys are values, not fields
		}
		for key, ov := range o {
			name, ft, isField := jsonField(t, key)
			if !isField {
				if _, exists := n[key]; !exists && !foldsOnto(key, n) {
					n[key] = ov
				}
				continue
			}
			if nv, exists := n[name]; exists {
				keepUnknown(ov, ft, nv)
			}
		}
	case []any:
		n, ok := out.([]any)
		if !ok || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array) {
			return
		}
		for i := 0; i < len(o) && i < len(n); i++ {
			keepUnknown(o[i], t.Elem(), n[i])
		}
	}
}

// jsonField finds the field of struct type t that encoding/json would
// decode key into: its JSON name and type.
func jsonField(t reflect.Type, key string) (string, reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if n, typ, ok := jsonField(ft, key); ok {
					return n, typ, true
				}
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if strings.EqualFold(name, key) {
			return name, f.Type, true
		}
	}
	return "", nil, false
}

func foldsOnto(key string, m map[string]any) bool {
	for k := range m {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// ReadBundle reads <dir>/config.json.
func ReadBundle(dir string) (*Document, error) {
	p := filepath.Join(dir, "config.json")
	data, err := readLimited(p)
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	d, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("read bundle config %s: %w", p, err)
	}
	return d, nil
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSpecSize {
		return nil, fmt.Errorf("%s: larger than the %d byte limit", p, MaxSpecSize)
	}
	return data, nil
}

// WriteBundle writes the document to <dir>/config.json atomically.
func (d *Document) WriteBundle(dir string) error {
	b, err := d.Marshal()
	if err != nil {
		return err
	}
	if err := ReplaceFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces path with data so that a reader sees either the
// old file or the whole new one, never a half-written file, even across a
// crash: write a temporary file in the same directory, fsync it, rename it
// over path, fsync the directory. An existing file's mode is kept; perm is
// used for a new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// ReplaceFile is WriteFileAtomic without the fsyncs: readers still see the
// old file or the whole new one, but after a crash the new one may be
// missing or empty. It is for files that describe running containers (a
// bundle's config.json, harden's state records), which no crash leaves
// running: their directories are tmpfs on a node (/run), and an fsync there
// is free, but on a disk it costs milliseconds on every container's start
// path for a guarantee nothing needs.
func ReplaceFile(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, false)
}

func replaceFile(path string, data []byte, perm os.FileMode, durable bool) error {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".harden-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if durable {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}
