package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cairn-os/cairn/image/oci"
	"github.com/cairn-os/cairn/internal/limited"
	"github.com/cairn-os/cairn/internal/registrytest"
)

func TestPull(t *testing.T) {
	reg := registrytest.Start(t)
	hello := func(arch string) registrytest.File {
		return registrytest.File{Path: "hello", Mode: 0o755, Data: []byte("hello for " + arch)}
	}
	arm := reg.Image("cairn/multi", "", "arm64", []string{"/hello"}, hello("arm64"))
	amd := reg.Image("cairn/multi", "", "amd64", []string{"/hello"}, hello("amd64"))
	reg.Index("cairn/multi", "1", amd, arm)
	reg.Image("cairn/amd", "1", "amd64", []string{"/hello"}, hello("amd64"))
	ctx := context.Background()
	cache := t.TempDir()
	p := &Puller{Cache: cache}

	ref := reg.Host + "/cairn/multi:1"
	img, err := p.Pull(ctx, ref, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != ref || img.Manifest.Digest.String() != arm.Digest || img.Cached {
		t.Fatalf("pulled %s manifest %s cached %v; want %s, the arm64 manifest %s, fetched", img.Name, img.Manifest.Digest, img.Cached, ref, arm.Digest)
	}
	archive := filepath.Join(t.TempDir(), "multi.tar")
	writeArchive(t, p, img, archive)
	info, err := oci.Inspect(archive)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Names, []string{ref}) || !slices.Equal(info.Archs, []string{"arm64"}) {
		t.Fatalf("archive holds %v for %v; want [%s] for [arm64]", info.Names, info.Archs, ref)
	}
	if got := layerFile(t, archive, img, "hello"); got != "hello for arm64" {
		t.Fatalf("the archive's layer has hello = %q", got)
	}

	// Again: everything comes from the cache; by digest too.
	if img, err = p.Pull(ctx, ref, "arm64"); err != nil || !img.Cached {
		t.Fatalf("second pull: cached %v, err %v; want everything cached", img != nil && img.Cached, err)
	}
	if img, err = p.Pull(ctx, reg.Host+"/cairn/multi@"+arm.Digest, "arm64"); err != nil || img.Manifest.Digest.String() != arm.Digest {
		t.Fatalf("pull by digest: %v", err)
	}

	for _, c := range []struct{ ref, arch, want string }{
		{reg.Host + "/cairn/amd:1", "arm64", "is for linux/amd64, but the board is linux/arm64"},
		{reg.Host + "/cairn/multi:1", "riscv64", "has no image for linux/riscv64 (it has linux/amd64, linux/arm64)"},
		{reg.Host + "/cairn/multi:2", "arm64", "the registry has no such image or tag"},
		{reg.Host + "/cairn/none:1", "arm64", "the registry has no such image or tag"},
		{"Not/A:Ref:", "arm64", "is neither an image archive nor an image reference"},
	} {
		if _, err := p.Pull(ctx, c.ref, c.arch); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("pull %s for %s: %v; want an error with %q", c.ref, c.arch, err, c.want)
		}
	}

	// Offline: what was pulled before still builds; nothing else does.
	off := &Puller{Cache: cache, Offline: true}
	reg.Stop()
	if img, err = off.Pull(ctx, ref, "arm64"); err != nil || img.Manifest.Digest.String() != arm.Digest {
		t.Fatalf("offline pull of a cached reference: %v", err)
	}
	if _, err := off.Pull(ctx, reg.Host+"/cairn/other:1", "arm64"); err == nil || !strings.Contains(err.Error(), "was never pulled into the image cache") {
		t.Errorf("offline pull of an unknown reference: %v", err)
	}
	if _, err := p.Pull(ctx, ref, "arm64"); err == nil || !strings.Contains(err.Error(), "cannot reach the registry") {
		t.Errorf("pull from a stopped registry: %v", err)
	}
}

func writeArchive(t *testing.T, p *Puller, img *Image, file string) {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteArchive(&buf, img, time.Unix(1780000000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// layerFile reads a file from the image's (gzip) layer in the archive.
func layerFile(t *testing.T, archive string, img *Image, name string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := "blobs/sha256/" + img.Layers[0].Digest.Encoded()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no %s in the archive: %v", want, err)
		}
		if hdr.Name != want {
			continue
		}
		zr, err := gzip.NewReader(tr)
		if err != nil {
			t.Fatal(err)
		}
		lr := tar.NewReader(zr)
		for {
			h, err := lr.Next()
			if err != nil {
				t.Fatalf("no %s in the layer: %v", name, err)
			}
			if h.Name == name {
				data, _ := io.ReadAll(lr)
				return string(data)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                       "docker.io/library/nginx:latest",
		"nginx:1.27":                  "docker.io/library/nginx:1.27",
		"registry.example:5000/a/b:2": "registry.example:5000/a/b:2",
	} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.json")
	enc := base64.StdEncoding.EncodeToString
	os.WriteFile(file, []byte(`{"auths": {
		"registry.example:5000": {"auth": "`+enc([]byte("ann:s3cret:x"))+`"},
		"https://index.docker.io/v1/": {"auth": "`+enc([]byte("bob:pw"))+`"},
		"broken.example": {"auth": "bm90LWEtcGFpcg=="}}}`), 0o600)
	p := &Puller{DockerConfig: file}
	for host, want := range map[string][2]string{
		"registry.example:5000": {"ann", "s3cret:x"},
		"registry-1.docker.io":  {"bob", "pw"},
		"other.example":         {"", ""},
	} {
		u, s, err := p.credentials(host)
		if err != nil || u != want[0] || s != want[1] {
			t.Errorf("credentials(%s) = %q, %q, %v; want %q", host, u, s, err, want)
		}
	}
	if _, _, err := p.credentials("broken.example"); err == nil || !strings.Contains(err.Error(), "not base64 of user:password") {
		t.Errorf("a broken entry: %v", err)
	}
	p.DockerConfig = filepath.Join(t.TempDir(), "missing.json")
	if u, _, err := p.credentials("registry.example:5000"); err != nil || u != "" {
		t.Errorf("no config file: %q, %v; want anonymous", u, err)
	}
}

// TestHugeManifest: a manifest over the cap in the cache (as a hostile
// registry could have sent it) is refused, not read whole into memory.
func TestHugeManifest(t *testing.T) {
	data := []byte(`{"schemaVersion":2}` + strings.Repeat(" ", maxDocument))
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	p := &Puller{Cache: t.TempDir(), Offline: true}
	os.MkdirAll(filepath.Dir(p.blobPath(d.Digest)), 0o755)
	if err := os.WriteFile(p.blobPath(d.Digest), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.record("registry.test/huge:1", d); err != nil {
		t.Fatal(err)
	}
	_, err := p.Pull(context.Background(), "registry.test/huge:1", "arm64")
	if !errors.Is(err, limited.ErrTooLarge) || !strings.Contains(err.Error(), "8.0 MiB") {
		t.Fatalf("Pull = %v, want an error naming the 8 MiB cap", err)
	}
}
