package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-os/cairn/image/apt"
	"github.com/cairn-os/cairn/image/deb"
)

// extractDir holds the unpacked packages in the cache. Its name changes
// when the extractor's rules do (v2: the extractor of image/deb that keeps
// every member inside its folder), so that nothing unpacked by older rules
// is used again.
const extractDir = "extract-v2"

// supply fetches packages and keeps each one unpacked once, in a folder
// named by the .deb's sha256 in the cache.
type supply struct {
	client *apt.Client
	index  *apt.Index
}

// unpack returns the folder holding the package's extracted files.
func (s *supply) unpack(ctx context.Context, p *apt.Package) (string, error) {
	path, err := s.client.Fetch(ctx, p)
	if err != nil {
		return "", err
	}
	key := p.SHA256
	if key == "" { // a local .deb: no index gives its sum
		if key, err = apt.FileSum(path); err != nil {
			return "", err
		}
	}
	dest := filepath.Join(s.client.Cache, extractDir, key)
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	s.client.Log.Info("unpacking", "package", p.String())
	if err := deb.Extract(path, dest); err != nil {
		// Another build sharing the cache may have unpacked it first.
		if _, serr := os.Stat(dest); serr == nil {
			return dest, nil
		}
		return "", err
	}
	return dest, nil
}

// lookup finds one package by name, explaining the miss.
func (s *supply) lookup(name, hint string) (*apt.Package, error) {
	p, ok := s.index.Lookup(name)
	if !ok {
		msg := fmt.Sprintf("%v: %s is in none of the configured repositories (%s)", apt.ErrNotFound, name, describeSources(s.client.Sources))
		if hint != "" {
			msg += "; " + hint
		}
		return nil, errors.New(msg)
	}
	return p, nil
}

func describeSources(srcs []apt.Source) string {
	var parts []string
	for _, s := range srcs {
		parts = append(parts, s.String())
	}
	if len(parts) == 0 {
		return "--debs folder"
	}
	return strings.Join(parts, ", ")
}

// kernel follows a metapackage (linux-image-arm64) to the package that has
// the kernel image, and returns its unpacked folder.
func (s *supply) kernel(ctx context.Context, name, hint string) (*apt.Package, string, error) {
	p, err := s.lookup(name, hint)
	if err != nil {
		return nil, "", err
	}
	for range 4 {
		dir, err := s.unpack(ctx, p)
		if err != nil {
			return nil, "", err
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "boot/vmlinu*")); len(m) > 0 {
			return p, dir, nil
		}
		next := ""
		for _, rel := range strings.Split(p.Depends, ",") {
			n, _, _ := strings.Cut(strings.TrimSpace(rel), " ")
			if strings.HasPrefix(n, "linux-image-") {
				next = n
				break
			}
		}
		if next == "" {
			return nil, "", fmt.Errorf("package %s has no kernel image and depends on none", p)
		}
		if p, err = s.lookup(next, hint); err != nil {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("kernel package %s: too many levels of metapackages", name)
}
