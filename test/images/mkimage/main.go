// Command mkimage packs a root filesystem directory into a single-layer image archive that
// every engine in harden's test environment can load without a registry.
//
//	mkimage -rootfs DIR -name docker.io/library/busybox:harden-test -o busybox.tar -cmd /bin/sh
//
// The archive is an OCI image layout (oci-layout, index.json, blobs/sha256/...) and, in the same
// tar, a Docker "docker save" manifest.json pointing at the same blobs:
//   - `ctr images import` and Docker >= 25 read the OCI layout and name the image from the
//     io.containerd.image.name annotation in index.json;
//   - skopeo reads it as oci-archive:FILE:NAME through org.opencontainers.image.ref.name;
//   - Docker 20.10 `docker load` reads only manifest.json (RepoTags).
//
// The output is deterministic: entries are sorted, owners and times are normalised, gzip carries
// no name or time, so the same rootfs gives the same digests (for a given Go release).
// It uses only the standard library, so building it adds nothing to go.mod.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OCI media types and annotations (image-spec v1.1).
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	annotationRefName = "org.opencontainers.image.ref.name"
	annotationCtrName = "io.containerd.image.name"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type image struct {
	Created      string      `json:"created"`
	Architecture string      `json:"architecture"`
	OS           string      `json:"os"`
	Config       imageConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []history `json:"history"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// dockerManifest is one entry of the manifest.json that `docker save` writes.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// argv is a flag that takes either a JSON array (`["sh","-c","x y"]`) or words split on spaces.
type argv []string

func (a *argv) String() string { return strings.Join(*a, " ") }

func (a *argv) Set(s string) error {
	if strings.HasPrefix(strings.TrimSpace(s), "[") {
		return json.Unmarshal([]byte(s), (*[]string)(a))
	}
	*a = strings.Fields(s)
	return nil
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var (
		rootfs, name, out, workdir, user string
		cmd, entrypoint                  argv
		env, labels                      list
	)
	flag.StringVar(&rootfs, "rootfs", "", "root filesystem `directory` to pack as the only layer")
	flag.StringVar(&name, "name", "", "full image `reference`, e.g. docker.io/library/busybox:harden-test")
	flag.StringVar(&out, "o", "", "output archive `file`")
	flag.Var(&cmd, "cmd", "image Cmd: a JSON array or space-separated words")
	flag.Var(&entrypoint, "entrypoint", "image Entrypoint: a JSON array or space-separated words")
	flag.Var(&env, "env", "image Env entry `KEY=VALUE` (repeatable; default PATH)")
	flag.Var(&labels, "label", "image label `KEY=VALUE` (repeatable)")
	flag.StringVar(&workdir, "workdir", "", "image WorkingDir")
	flag.StringVar(&user, "user", "", "image User")
	flag.Parse()
	if rootfs == "" || name == "" || out == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	if len(env) == 0 {
		env = list{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	cfg := imageConfig{User: user, Env: env, Entrypoint: entrypoint, Cmd: cmd, WorkingDir: workdir}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
	if err := run(rootfs, name, out, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "mkimage: %v\n", err)
		os.Exit(1)
	}
}

// epoch is the time written into the layer and the config: SOURCE_DATE_EPOCH, or 0.
func epoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

func run(rootfs, name, out string, cfg imageConfig) error {
	mtime, err := epoch()
	if err != nil {
		return err
	}
	layerTar, err := tarDir(rootfs, mtime)
	if err != nil {
		return fmt.Errorf("pack rootfs %q: %w", rootfs, err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(layerTar); err != nil {
		return fmt.Errorf("compress layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress layer: %w", err)
	}

	img := image{
		Created:      mtime.Format(time.RFC3339),
		Architecture: "amd64",
		OS:           "linux",
		Config:       cfg,
		History:      []history{{Created: mtime.Format(time.RFC3339), CreatedBy: "harden test/images/mkimage"}},
	}
	img.RootFS.Type = "layers"
	img.RootFS.DiffIDs = []string{digest(layerTar)}
	configJSON, err := json.Marshal(img)
	if err != nil {
		return err
	}

	blobs := map[string][]byte{}
	add := func(mediaType string, b []byte) descriptor {
		d := descriptor{MediaType: mediaType, Digest: digest(b), Size: int64(len(b))}
		blobs[d.Digest] = b
		return d
	}
	configDesc := add(mediaTypeConfig, configJSON)
	layerDesc := add(mediaTypeLayer, gz.Bytes())
	manifestJSON, err := json.Marshal(manifest{
		SchemaVersion: 2, MediaType: mediaTypeManifest, Config: configDesc, Layers: []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := add(mediaTypeManifest, manifestJSON)
	manifestDesc.Platform = &platform{Architecture: "amd64", OS: "linux"}
	manifestDesc.Annotations = map[string]string{annotationRefName: name, annotationCtrName: name}
	indexJSON, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{manifestDesc}})
	if err != nil {
		return err
	}
	dockerJSON, err := json.Marshal([]dockerManifest{{
		Config:   blobPath(configDesc.Digest),
		RepoTags: []string{name},
		Layers:   []string{blobPath(layerDesc.Digest)},
	}})
	if err != nil {
		return err
	}

	var archive bytes.Buffer
	tw := tar.NewWriter(&archive)
	write := func(path string, b []byte) error {
		hdr := &tar.Header{Name: path, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		if err := write(blobPath(d), blobs[d]); err != nil {
			return err
		}
	}
	files := []struct {
		path string
		b    []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", indexJSON},
		{"manifest.json", dockerJSON},
	}
	for _, f := range files {
		if err := write(f.path, f.b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return writeFileAtomic(out, archive.Bytes())
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func blobPath(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }

// tarDir writes root as an uncompressed layer tar: sorted paths, numeric owners kept, times set
// to mtime, hard links kept as links, sockets and other special files other than devices skipped.
func tarDir(root string, mtime time.Time) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths) // WalkDir is already lexical per directory; make the whole order explicit

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	for _, p := range paths {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		var link string
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		if fi.Mode()&(fs.ModeSocket|fs.ModeNamedPipe) != 0 {
			continue
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, fmt.Errorf("header for %q: %w", p, err)
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = mtime, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, dup := seen[key]; dup {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				seen[key] = hdr.Name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write header %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, p); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy %q: %w", p, err)
	}
	return nil
}

// writeFileAtomic writes b to a temporary file next to path and renames it into place.
func writeFileAtomic(path string, b []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".mkimage-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
