// Package oci writes and checks container images as OCI image-layout tar
// archives, the form containerd imports (ctr images import). cairn builds the
// pause image this way, and checks the archives a config lists in images:.
// Checking reads only the archive's JSON documents into memory, each and
// all of them under a cap, and writes nothing.
package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types of the documents and layers written here.
const (
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaConfig   = "application/vnd.oci.image.config.v1+json"
	MediaLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Annotations naming an image in an index.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// Descriptor points at a blob.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform of a manifest in an index.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// File is one regular file of an image's single layer.
type File struct {
	Path string // absolute path in the container
	Mode fs.FileMode
	Data []byte
}

// Image is a single-layer image.
type Image struct {
	Ref        string // full name with tag (cairn.local/pause:1)
	Arch       string // GOARCH
	Entrypoint []string
	Files      []File
	Created    time.Time // also every file's time, for reproducible bytes
}

type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

func (b blob) desc(media string) Descriptor {
	return Descriptor{MediaType: media, Digest: b.digest, Size: int64(len(b.data))}
}

// Write writes the image as an OCI layout tar archive. The same image gives
// the same bytes.
func Write(w io.Writer, img Image) error {
	if img.Ref == "" || !strings.Contains(img.Ref, ":") {
		return fmt.Errorf("image reference %q needs a name and a tag", img.Ref)
	}
	layer, err := layerTar(img.Files, img.Created)
	if err != nil {
		return err
	}
	lb := newBlob(layer)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": img.Arch,
		"os":           "linux",
		"created":      img.Created.UTC().Format(time.RFC3339),
		"config":       map[string]any{"Entrypoint": img.Entrypoint},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{lb.digest}},
	})
	cb := newBlob(cfg)
	man, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaManifest,
		"config":        cb.desc(MediaConfig),
		"layers":        []Descriptor{lb.desc(MediaLayer)},
	})
	mb := newBlob(man)
	md := mb.desc(MediaManifest)
	_, tag, _ := cutTag(img.Ref)
	md.Annotations = map[string]string{AnnotationImageName: img.Ref, AnnotationRefName: tag}
	md.Platform = &Platform{Architecture: img.Arch, OS: "linux"}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": MediaIndex, "manifests": []Descriptor{md}})

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: img.Created, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := put("index.json", index); err != nil {
		return err
	}
	for _, b := range []blob{cb, lb, mb} {
		if err := put("blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:"), b.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// cutTag splits name:tag (a registry port is not a tag).
func cutTag(ref string) (name, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "", false
	}
	return ref[:i], ref[i+1:], true
}

// layerTar is an uncompressed layer holding the files and their folders.
func layerTar(files []File, mtime time.Time) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("image file path %q is not a clean absolute path", f.Path)
		}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range names {
		if err := tw.WriteHeader(&tar.Header{Name: d[1:] + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	for _, f := range sorted {
		if err := tw.WriteHeader(&tar.Header{Name: f.Path[1:], Mode: int64(f.Mode.Perm()), Size: int64(len(f.Data)), Typeflag: tar.TypeReg, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
