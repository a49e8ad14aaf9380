package oci

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/cairn-os/cairn/internal/limited"
	"github.com/cairn-os/cairn/internal/progress"
)

// ErrNotImage marks an archive that holds no container image.
var ErrNotImage = errors.New("not a container image archive")

// Caps on what Inspect reads of an archive. Real indexes, manifests and
// configs are a few KiB (registries refuse manifests over 4 MiB), and real
// archives have tens of members. Variables, so that tests can lower them.
var (
	maxDocument  int64 = 4 << 20  // one JSON document
	maxDocuments int64 = 32 << 20 // all the documents of one archive
	maxMembers         = 1 << 16
)

// Info describes an image archive.
type Info struct {
	Names []string // image names it carries (may be empty for an unnamed OCI layout)
	Archs []string // architectures of its manifests, where stated
}

// archive is an open image archive, read in passes: the member list and
// the top document first, then only the documents they point at.
type archive struct {
	f    *os.File
	file string
	read int64 // bytes of documents read so far
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
	a := &archive{f: f, file: file}
	names, docs, err := a.scan(map[string]bool{"index.json": true, "manifest.json": true})
	if err != nil {
		return nil, err
	}
	if data, ok := docs["index.json"]; ok {
		return a.inspectOCI(data, names)
	}
	if data, ok := docs["manifest.json"]; ok {
		return inspectDocker(file, data, names)
	}
	return nil, fmt.Errorf("%w: %s has neither index.json (OCI layout) nor manifest.json (docker save)", ErrNotImage, file)
}

// scan reads the archive from the start and returns the names of its
// members and the contents of the regular members named in want.
func (a *archive) scan(want map[string]bool) (map[string]bool, map[string][]byte, error) {
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	names, docs := map[string]bool{}, map[string][]byte{}
	tr := tar.NewReader(a.f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names, docs, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrNotImage, a.file, err)
		}
		if len(names) >= maxMembers {
			return nil, nil, fmt.Errorf("%w: %s has more than %d members; pack one image per archive", ErrNotImage, a.file, maxMembers)
		}
		name := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		names[name] = true
		if hdr.Typeflag == tar.TypeReg && want[name] {
			if docs[name], err = a.document(tr, name, hdr.Size); err != nil {
				return nil, nil, err
			}
		}
	}
}

// document reads one JSON member whole, within the caps.
func (a *archive) document(r io.Reader, name string, size int64) ([]byte, error) {
	if a.read+size > maxDocuments {
		return nil, fmt.Errorf("%w: %s: its JSON documents come to more than %s; pack one image per archive", ErrNotImage, a.file, progress.Size(maxDocuments))
	}
	data, err := limited.ReadAll(r, maxDocument)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s is %w; the archive is damaged or not an image", ErrNotImage, a.file, name, err)
	}
	a.read += int64(len(data))
	return data, nil
}

// blobName is the member that holds a blob.
func blobName(digest string) string {
	return "blobs/" + strings.Replace(digest, ":", "/", 1)
}

func (a *archive) inspectOCI(data []byte, names map[string]bool) (*Info, error) {
	var idx struct {
		Manifests []Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%w: %s: index.json lists no manifests", ErrNotImage, a.file)
	}
	unplaced := map[string]bool{} // manifests the index gives no platform
	info := &Info{}
	for _, m := range idx.Manifests {
		if !names[blobName(m.Digest)] {
			return nil, fmt.Errorf("%w: %s: index.json points at %s, which the archive lacks", ErrNotImage, a.file, blobName(m.Digest))
		}
		if n := m.Annotations[AnnotationImageName]; n != "" {
			info.Names = append(info.Names, n)
		}
		if m.Platform == nil {
			unplaced[blobName(m.Digest)] = true
		}
	}
	archs, err := a.configArchs(unplaced)
	if err != nil {
		return nil, err
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil {
			info.Archs = append(info.Archs, m.Platform.Architecture)
		} else if arch := archs[blobName(m.Digest)]; arch != "" {
			info.Archs = append(info.Archs, arch)
		}
	}
	return info, nil
}

// configArchs follows manifests to their configs for the architectures,
// by manifest member.
func (a *archive) configArchs(manifests map[string]bool) (map[string]string, error) {
	if len(manifests) == 0 {
		return nil, nil
	}
	_, docs, err := a.scan(manifests)
	if err != nil {
		return nil, err
	}
	configOf, configs := map[string]string{}, map[string]bool{}
	for name, data := range docs {
		var m struct {
			Config Descriptor `json:"config"`
		}
		if json.Unmarshal(data, &m) == nil && m.Config.Digest != "" {
			configOf[name] = blobName(m.Config.Digest)
			configs[configOf[name]] = true
		}
	}
	if _, docs, err = a.scan(configs); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, cfg := range configOf {
		var c struct {
			Architecture string `json:"architecture"`
		}
		json.Unmarshal(docs[cfg], &c)
		out[name] = c.Architecture
	}
	return out, nil
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
