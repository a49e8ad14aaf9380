package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-os/cairn/cluster/manifest"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/image/oci"
	"github.com/cairn-os/cairn/image/registry"
)

// clusterImages checks the config's cluster.images: archives (relative to
// the config file) are inspected, registry references are pulled into the
// cache and packed as archives in the scratch folder. It returns the
// archives' paths. A problem names the config line.
func (o *Options) clusterImages(ctx context.Context, puller *registry.Puller) ([]string, error) {
	arch := o.Board.Arch
	return o.checkEach("cluster.images", o.Config.Cluster.Images, func(file, entry string) (string, string) {
		if isReference(file, entry) {
			archive, err := pull(ctx, puller, entry, arch, o.scratch, o.Epoch)
			if err != nil {
				return "", err.Error()
			}
			return archive, ""
		}
		info, err := oci.Inspect(file)
		switch {
		case err != nil:
			return "", fmt.Sprintf("%v; give an OCI layout or docker save archive (.tar)", err)
		case len(info.Archs) > 0 && !slices.Contains(info.Archs, arch):
			return "", fmt.Sprintf("%s is for %s, but the board is %s; build or pull the image for %s", entry, strings.Join(info.Archs, ", "), arch, arch)
		}
		return file, ""
	})
}

// isReference tells an images: entry that names a registry image from an
// archive: a file that exists, an entry ending in .tar, or a path starting
// with / or . is an archive.
func isReference(file, entry string) bool {
	if _, err := os.Stat(file); err == nil {
		return false
	}
	return !strings.HasSuffix(entry, ".tar") && !strings.HasPrefix(entry, "/") && !strings.HasPrefix(entry, ".")
}

// pull fetches ref for arch and writes it as an archive in dir.
func pull(ctx context.Context, p *registry.Puller, ref, arch, dir string, mtime time.Time) (string, error) {
	start := time.Now()
	img, err := p.Pull(ctx, ref, arch)
	if err != nil {
		return "", err
	}
	base := img.Name[strings.LastIndex(img.Name, "/")+1:]
	base = strings.NewReplacer(":", "-", "@", "-").Replace(base)
	f, err := os.CreateTemp(dir, "*-"+base+".tar")
	if err != nil {
		return "", err
	}
	err = p.WriteArchive(f, img, mtime)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: writing its archive: %w", ref, err)
	}
	p.Log.Info("image pulled", "ref", img.Name, "digest", img.Manifest.Digest, "cached", img.Cached, "took", time.Since(start).Round(time.Millisecond))
	return f.Name(), nil
}

// clusterManifests checks that a server config's cluster.manifests parse
// as Kubernetes objects and returns their paths.
func (o *Options) clusterManifests() ([]string, error) {
	if o.Config.Cluster.Role != "server" {
		return nil, nil
	}
	return o.checkEach("cluster.manifests", o.Config.Cluster.Manifests, func(file, entry string) (string, string) {
		data, err := os.ReadFile(file)
		if err == nil {
			_, err = manifest.Parse(data)
		}
		if err != nil {
			return "", fmt.Sprintf("%s: %v", entry, err)
		}
		return file, ""
	})
}

// checkEach resolves a list of files relative to the config and checks
// each; check returns the file to use (it may make one) or a problem. All
// problems are reported together, each with its config line.
func (o *Options) checkEach(field string, entries []string, check func(file, entry string) (use, problem string)) ([]string, error) {
	var out []string
	var probs configs.Problems
	for i, entry := range entries {
		file := entry
		if !filepath.IsAbs(file) {
			file = filepath.Join(filepath.Dir(o.configFile), file)
		}
		use, msg := check(file, entry)
		if msg != "" {
			probs = append(probs, o.Config.Problem(fmt.Sprintf("%s[%d]", field, i), msg))
			continue
		}
		out = append(out, use)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return out, nil
}
