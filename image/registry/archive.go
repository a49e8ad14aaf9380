package registry

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/distribution/reference"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cairn-os/cairn/image/oci"
)

// WriteArchive writes a pulled image as an OCI layout tar archive whose
// index names it (containerd's import uses that name), from the cache.
// mtime stamps the archive's members, for reproducible bytes.
func (p *Puller) WriteArchive(w io.Writer, img *Image, mtime time.Time) error {
	desc := img.Manifest
	desc.Annotations = map[string]string{oci.AnnotationImageName: img.Name}
	if named, err := reference.ParseNormalizedNamed(img.Name); err == nil {
		if tagged, ok := named.(reference.Tagged); ok {
			desc.Annotations[oci.AnnotationRefName] = tagged.Tag()
		}
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc},
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	header := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}} {
		if err := header(f.name, int64(len(f.data))); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	done := map[string]bool{}
	for _, d := range append([]ocispec.Descriptor{img.Manifest, img.Config}, img.Layers...) {
		if done[d.Digest.String()] {
			continue // an image may repeat a layer
		}
		done[d.Digest.String()] = true
		if err := header("blobs/"+d.Digest.Algorithm().String()+"/"+d.Digest.Encoded(), d.Size); err != nil {
			return err
		}
		f, err := os.Open(p.blobPath(d.Digest))
		if err != nil {
			return err
		}
		_, err = io.CopyN(tw, f, d.Size)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
