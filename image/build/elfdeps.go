package build

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// libDirs are searched for shared libraries, in order, inside each unpacked
// package.
var libDirs = map[string][]string{
	"arm64": {"lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"},
	"amd64": {"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"},
}

// located is a file found in one of the unpacked package folders.
type located struct {
	rel  string // path in the image
	root string // unpacked package folder that has it
}

// find looks for rel (no leading slash) in the package folders.
func find(roots []string, rel string) (located, bool) {
	for _, r := range roots {
		if _, err := os.Lstat(filepath.Join(r, rel)); err == nil {
			return located{rel: rel, root: r}, true
		}
	}
	return located{}, false
}

// libClosure returns the binaries plus every shared library and the dynamic
// loader they need (DT_NEEDED, recursively), with the symlinks on the way.
func libClosure(roots []string, arch string, bins []string) ([]located, error) {
	var out []located
	seen := map[string]bool{}
	var add func(rel string) error
	add = func(rel string) error {
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		loc, ok := find(roots, rel)
		if !ok {
			return fmt.Errorf("/%s is in none of the unpacked packages", rel)
		}
		out = append(out, loc)
		full := filepath.Join(loc.root, rel)
		if target, err := os.Readlink(full); err == nil {
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(rel), target)
			}
			return add(trimSlash(path.Clean(target)))
		}
		f, err := elf.Open(full)
		if err != nil {
			return nil // not an ELF file: data, script or config
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				buf := make([]byte, p.Filesz)
				if _, err := p.ReadAt(buf, 0); err == nil {
					interp := string(buf[:len(buf)-1])
					if err := add(trimSlash(interp)); err != nil {
						return err
					}
				}
			}
		}
		libs, _ := f.ImportedLibraries()
		for _, lib := range libs {
			found := false
			for _, d := range libDirs[arch] {
				if _, ok := find(roots, path.Join(d, lib)); ok {
					if err := add(path.Join(d, lib)); err != nil {
						return err
					}
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("%s needs %s, which no unpacked package has; add the package that ships it", rel, lib)
			}
		}
		return nil
	}
	for _, b := range bins {
		if err := add(trimSlash(b)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}
