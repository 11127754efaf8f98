package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	// orig holds the input when it had unknown fields; nil otherwise.
	orig []byte
}

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
	if !errors.Is(err, jsonv2.ErrUnknownName) {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	s = specs.Spec{}
	if err := jsonv2.Unmarshal(data, &s, lenientDecode); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	return &Document{Spec: &s, orig: bytes.Clone(data)}, nil
}

// strictDecode reads a spec the way runc will (encoding/json: object keys
// match fields without regard to case) but refuses what runc would resolve
// silently: a key given twice, in any spelling, where runc takes the last,
// which would let a second "noNewPrivileges" hide behind the one harden
// checked. Unknown fields fail here and take the preserving slow path.
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
	var typed specs.Spec
	if err := json.Unmarshal(d.orig, &typed); err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	knownBytes, err := json.Marshal(&typed)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	known, err := decodeGeneric(knownBytes)
	if err != nil {
		return nil, err
	}
	merged, err := decodeGeneric(out)
	if err != nil {
		return nil, err
	}
	keepUnknown(orig, known, merged)
	b, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return b, nil
}

func decodeGeneric(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep 64-bit values exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	return v, nil
}

// keepUnknown copies into out every key of orig that the typed round trip
// (known) lost, where out has an object at the same place.
func keepUnknown(orig, known, out any) {
	switch o := orig.(type) {
	case map[string]any:
		k, _ := known.(map[string]any)
		n, ok := out.(map[string]any)
		if !ok {
			return
		}
		for key, ov := range o {
			kv, isKnown := k[key]
			if !isKnown {
				// encoding/json (and so runc) matches keys without regard to
				// case and takes the last one: "nonewprivileges": false next
				// to harden's "noNewPrivileges": true would win. A key that
				// folds onto a known one is not unknown; it was decoded.
				if _, exists := n[key]; !exists && !foldsOnto(key, k) && !foldsOnto(key, n) {
					n[key] = ov
				}
				continue
			}
			if nv, exists := n[key]; exists {
				keepUnknown(ov, kv, nv)
			}
		}
	case []any:
		k, _ := known.([]any)
		n, ok := out.([]any)
		if !ok {
			return
		}
		for i := 0; i < len(o) && i < len(k) && i < len(n); i++ {
			keepUnknown(o[i], k[i], n[i])
		}
	}
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
	if err := WriteFileAtomic(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
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
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
