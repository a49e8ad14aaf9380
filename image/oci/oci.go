// Package oci writes and checks container images as OCI image-layout tar
// archives, the form containerd imports (ctr images import). cairn builds the
// pause image this way, and checks the archives a config lists in images:.
package oci

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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

// ErrNotImage marks an archive that holds no container image.
var ErrNotImage = errors.New("not a container image archive")

// Info describes an image archive.
type Info struct {
	Names []string // image names it carries (may be empty for an unnamed OCI layout)
	Archs []string // architectures of its manifests, where stated
}

// Inspect reads an OCI layout or docker save archive and says what it
// holds, or why it is not one: it must have index.json (OCI) or
// manifest.json (docker), and the blobs they point at.
func Inspect(file string) (*Info, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	members := map[string][]byte{} // small JSON members only
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, file, err)
		}
		name := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		names[name] = true
		if hdr.Typeflag == tar.TypeReg && hdr.Size < 4<<20 && (name == "index.json" || name == "manifest.json" || strings.HasPrefix(name, "blobs/")) {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, file, err)
			}
			members[name] = data
		}
	}
	if data, ok := members["index.json"]; ok {
		return inspectOCI(file, data, members, names)
	}
	if data, ok := members["manifest.json"]; ok {
		return inspectDocker(file, data, names)
	}
	return nil, fmt.Errorf("%w: %s has neither index.json (OCI layout) nor manifest.json (docker save)", ErrNotImage, file)
}

func inspectOCI(file string, data []byte, members map[string][]byte, names map[string]bool) (*Info, error) {
	var idx struct {
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%w: %s: index.json lists no manifests", ErrNotImage, file)
	}
	info := &Info{}
	for _, m := range idx.Manifests {
		blobPath := "blobs/" + strings.Replace(m.Digest, ":", "/", 1)
		if !names[blobPath] {
			return nil, fmt.Errorf("%w: %s: index.json points at %s, which the archive lacks", ErrNotImage, file, blobPath)
		}
		if n := m.Annotations[AnnotationImageName]; n != "" {
			info.Names = append(info.Names, n)
		}
		if m.Platform != nil {
			info.Archs = append(info.Archs, m.Platform.Architecture)
		} else if arch := configArch(members, blobPath); arch != "" {
			info.Archs = append(info.Archs, arch)
		}
	}
	return info, nil
}

// configArch follows a manifest to its config for the architecture.
func configArch(members map[string][]byte, manifest string) string {
	var m struct {
		Config Descriptor `json:"config"`
	}
	if json.Unmarshal(members[manifest], &m) != nil {
		return ""
	}
	var c struct {
		Architecture string `json:"architecture"`
	}
	json.Unmarshal(members["blobs/"+strings.Replace(m.Config.Digest, ":", "/", 1)], &c)
	return c.Architecture
}

func inspectDocker(file string, data []byte, names map[string]bool) (*Info, error) {
	var ms []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(data, &ms); err != nil || len(ms) == 0 {
		return nil, fmt.Errorf("%w: %s: manifest.json lists no images", ErrNotImage, file)
	}
	info := &Info{}
	for _, m := range ms {
		for _, l := range append([]string{m.Config}, m.Layers...) {
			if !names[path.Clean(l)] {
				return nil, fmt.Errorf("%w: %s: manifest.json names %s, which the archive lacks", ErrNotImage, file, l)
			}
		}
		info.Names = append(info.Names, m.RepoTags...)
	}
	return info, nil
}
