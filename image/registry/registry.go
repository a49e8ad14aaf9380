// Package registry pulls container images from registries (the OCI
// distribution API: Docker Hub, GHCR, a private registry) at build time and
// packs each as an OCI layout archive for one architecture, the form the
// build bakes in and the node imports at boot. Blobs are kept in a cache
// keyed by digest, so a rebuild fetches nothing that has not changed, and
// the digest each reference last resolved to is recorded, so a build with
// --offline still works. Layers are streamed to disk and checked against
// their digest; only manifests, indexes and configs are read into memory,
// and only up to 8 MiB each.
//
// The HTTP side is containerd's remotes/docker resolver: token and basic
// auth, the Docker Hub name rules, and per-registry mirrors and TLS in
// containerd's hosts.toml layout.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/limited"
	"github.com/cairn-os/cairn/internal/progress"
)

// Puller fetches images into a cache folder.
type Puller struct {
	// Cache holds blobs/sha256/HEX and refs/ (what each reference
	// resolved to last).
	Cache string
	// Offline uses only the cache: a reference must have been pulled
	// before, and its blobs must still be there.
	Offline bool
	// Hosts is a folder of per-registry settings in containerd's layout
	// (HOST[:PORT]/hosts.toml: mirrors, CA, client certificates); a
	// missing folder means plain HTTPS to each registry.
	Hosts string
	// DockerConfig is a docker config.json whose "auths" give registry
	// credentials; a missing file means anonymous pulls.
	DockerConfig string
	Progress     io.Writer // progress bars; nil for none
	Log          *slog.Logger
}

// DefaultHosts is CAIRN_REGISTRIES, else ~/.config/cairn/registries.
func DefaultHosts() string {
	if d := os.Getenv("CAIRN_REGISTRIES"); d != "" {
		return d
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "cairn", "registries")
}

// DefaultDockerConfig is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
func DefaultDockerConfig() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// Image is a pulled image.
type Image struct {
	Name     string             // normalised reference (docker.io/library/nginx:1.27)
	Manifest ocispec.Descriptor // the architecture's manifest
	Config   ocispec.Descriptor // its config blob
	Layers   []ocispec.Descriptor
	Cached   bool // nothing was fetched
}

// Normalize parses a reference the way docker does (nginx means
// docker.io/library/nginx:latest) and says in one sentence what is wrong
// with one that does not parse.
func Normalize(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("%q is neither an image archive nor an image reference (%w); give a .tar archive or a reference such as registry.example:5000/app:1.0", ref, err)
	}
	return named.String(), nil
}

// Pull fetches ref's image for linux/arch into the cache.
func (p *Puller) Pull(ctx context.Context, ref, arch string) (*Image, error) {
	name, err := Normalize(ref)
	if err != nil {
		return nil, err
	}
	var (
		top     ocispec.Descriptor
		fetcher remotes.Fetcher
	)
	if p.Offline {
		if top, err = p.recorded(name); err != nil {
			return nil, err
		}
	} else {
		resolver := docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, config.HostOptions{
			HostDir:     config.HostDirFromRoot(p.Hosts),
			Credentials: p.credentials,
		})})
		var resolved string
		resolved, top, err = resolver.Resolve(ctx, name)
		if err != nil {
			return nil, resolveError(ref, err)
		}
		if fetcher, err = resolver.Fetcher(ctx, resolved); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	}
	img := &Image{Name: name, Cached: true}
	// get fetches a blob: a document (manifest, index, config) is read into
	// memory later, so it is refused past maxDocument before any download.
	get := func(d ocispec.Descriptor, bar *progress.Bar, document bool) error {
		if document && d.Size > maxDocument {
			return fmt.Errorf("%s: %s is said to be %s, more than a manifest or config can be (%s): %w; the registry is broken or hostile, so pull from another",
				ref, d.Digest, progress.Size(d.Size), progress.Size(maxDocument), limited.ErrTooLarge)
		}
		fetched, err := p.blob(ctx, fetcher, d, bar)
		if fetched {
			img.Cached = false
		}
		if err != nil {
			return fmt.Errorf("%s: blob %s: %w", ref, d.Digest, err)
		}
		return nil
	}
	if err := get(top, nil, true); err != nil {
		return nil, err
	}
	man := top
	switch top.MediaType {
	case ocispec.MediaTypeImageIndex, images.MediaTypeDockerSchema2ManifestList:
		if man, err = p.choose(ref, top, arch); err != nil {
			return nil, err
		}
		if err := get(man, nil, true); err != nil {
			return nil, err
		}
	case ocispec.MediaTypeImageManifest, images.MediaTypeDockerSchema2Manifest:
	default:
		return nil, fmt.Errorf("%s is a %q, which cairn cannot bake in; push it as an OCI or Docker v2 image", ref, top.MediaType)
	}
	var m ocispec.Manifest
	if err := p.readJSON(man.Digest, &m); err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", ref, err)
	}
	img.Manifest, img.Config, img.Layers = man, m.Config, m.Layers
	if err := get(m.Config, nil, true); err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := p.readJSON(m.Config.Digest, &cfg); err != nil {
		return nil, fmt.Errorf("%s: image config: %w", ref, err)
	}
	if cfg.Architecture != arch || (cfg.OS != "" && cfg.OS != "linux") {
		return nil, fmt.Errorf("%s is for %s/%s, but the board is linux/%s; push an image for linux/%s under this reference, or a multi-architecture one", ref, cfg.OS, cfg.Architecture, arch, arch)
	}
	var total int64
	for _, l := range m.Layers {
		if !p.have(l) {
			total += l.Size
		}
	}
	var bar *progress.Bar
	if total > 0 && p.Progress != nil {
		bar = progress.New(p.Progress, "pulling "+ref, total)
	}
	for _, l := range m.Layers {
		if err := get(l, bar, false); err != nil {
			return nil, err
		}
	}
	if bar != nil {
		bar.Done()
	}
	if !p.Offline {
		if err := p.record(name, top); err != nil {
			return nil, fmt.Errorf("image cache: %w", err)
		}
	}
	return img, nil
}

// resolveError turns the resolver's error into a sentence with the fix.
func resolveError(ref string, err error) error {
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: the registry has no such image or tag; check the name and tag", ref)
	case strings.Contains(err.Error(), "401 Unauthorized") || strings.Contains(err.Error(), "403 Forbidden"):
		return fmt.Errorf("%s: the registry refused access (%w); put credentials for it in %s (docker login writes them)", ref, err, DefaultDockerConfig())
	}
	return fmt.Errorf("%s: cannot reach the registry (%w); check the name and the network, or build with --offline to use what an earlier build pulled", ref, err)
}

// choose picks the manifest for linux/arch from an index.
func (p *Puller) choose(ref string, index ocispec.Descriptor, arch string) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := p.readJSON(index.Digest, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: index: %w", ref, err)
	}
	want := platforms.Only(ocispec.Platform{OS: "linux", Architecture: arch})
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if want.Match(*m.Platform) && m.Platform.Architecture == arch {
			return m, nil
		}
		have = append(have, platforms.Format(*m.Platform))
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s has no image for linux/%s (it has %s); pick a tag built for %s", ref, arch, strings.Join(have, ", "), arch)
}

func (p *Puller) blobPath(d digest.Digest) string {
	return filepath.Join(p.Cache, "blobs", d.Algorithm().String(), d.Encoded())
}

// have reports whether the cache holds the blob (checked when written).
func (p *Puller) have(d ocispec.Descriptor) bool {
	st, err := os.Stat(p.blobPath(d.Digest))
	return err == nil && st.Size() == d.Size
}

// blob makes sure the cache holds d, fetching and verifying it if not.
func (p *Puller) blob(ctx context.Context, f remotes.Fetcher, d ocispec.Descriptor, bar *progress.Bar) (fetched bool, err error) {
	if err := d.Digest.Validate(); err != nil {
		return false, err
	}
	if p.have(d) {
		return false, nil
	}
	if f == nil {
		return false, errors.New("not in the image cache, and --offline forbids fetching it; build once without --offline")
	}
	dst := p.blobPath(d.Digest)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	rc, err := f.Fetch(ctx, d)
	if err != nil {
		return true, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return true, err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	var r io.Reader = io.LimitReader(rc, d.Size+1)
	if bar != nil {
		r = bar.Reader(r)
	}
	v := d.Digest.Verifier()
	n, err := io.Copy(io.MultiWriter(tmp, v), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return true, err
	case n != d.Size:
		return true, fmt.Errorf("the registry sent %d bytes, the manifest says %d", n, d.Size)
	case !v.Verified():
		return true, errors.New("the registry sent bytes whose digest does not match")
	}
	return true, os.Rename(tmp.Name(), dst)
}

// maxDocument bounds a manifest, index or config read into memory:
// registries refuse manifests over 4 MiB, and configs are a few KiB.
const maxDocument = 8 << 20

func (p *Puller) readJSON(d digest.Digest, v any) error {
	f, err := os.Open(p.blobPath(d))
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := limited.ReadAll(f, maxDocument)
	if err != nil {
		return fmt.Errorf("blob %s is %w, more than a manifest or config can be; the registry is broken or hostile, so pull from another", d, err)
	}
	return json.Unmarshal(data, v)
}

// refFile is where the digest name last resolved to is kept.
func (p *Puller) refFile(name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(p.Cache, "refs", hex.EncodeToString(sum[:16])+".json")
}

type refRecord struct {
	Name       string             `json:"name"`
	Descriptor ocispec.Descriptor `json:"descriptor"`
}

func (p *Puller) record(name string, d ocispec.Descriptor) error {
	f := p.refFile(name)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	data, _ := json.Marshal(refRecord{Name: name, Descriptor: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}})
	return atomicfile.Write(f, data, 0o644)
}

func (p *Puller) recorded(name string) (ocispec.Descriptor, error) {
	data, err := os.ReadFile(p.refFile(name))
	var rec refRecord
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil || rec.Name != name {
		return ocispec.Descriptor{}, fmt.Errorf("%s was never pulled into the image cache %s, and --offline forbids pulling it; build once without --offline", name, p.Cache)
	}
	return rec.Descriptor, nil
}

// credentials reads the docker config's "auths" entry for host (Docker Hub
// is stored under its old index URL).
func (p *Puller) credentials(host string) (string, string, error) {
	if p.DockerConfig == "" {
		return "", "", nil
	}
	data, err := os.ReadFile(p.DockerConfig)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", nil
	} else if err != nil {
		return "", "", err
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", "", fmt.Errorf("%s: %w", p.DockerConfig, err)
	}
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "registry-1.docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "docker.io")
	}
	for _, k := range keys {
		a, ok := cfg.Auths[k]
		if !ok {
			continue
		}
		if a.IdentityToken != "" {
			return "", a.IdentityToken, nil
		}
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		user, secret, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return "", "", fmt.Errorf("%s: the auth entry for %s is not base64 of user:password", p.DockerConfig, k)
		}
		return user, secret, nil
	}
	return "", "", nil
}
