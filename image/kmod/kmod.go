// Package kmod selects kernel modules from a distribution kernel's module
// tree: it reads each module's .modinfo for its dependencies, resolves the
// closure of a requested set and writes the modules.dep that the device's
// module loader reads. It knows nothing about boards or images.
package kmod

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrUnknown is wrapped when a requested module is neither a module file
// nor built into the kernel.
var ErrUnknown = errors.New("unknown kernel module")

// Tree is one kernel's module folder (lib/modules/VERSION).
type Tree struct {
	Dir     string
	Version string
	byName  map[string]string // normalised name -> path relative to Dir
	builtin map[string]bool
	deps    map[string][]string // relative path -> names it depends on
}

// Norm folds '-' into '_', as the kernel does for module names.
func Norm(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Open scans root/lib/modules/* (the one kernel version there).
func Open(root string) (*Tree, error) {
	vers, _ := filepath.Glob(filepath.Join(root, "lib/modules/*"))
	if len(vers) != 1 {
		return nil, fmt.Errorf("want one kernel version under %s/lib/modules, found %d", root, len(vers))
	}
	t := &Tree{Dir: vers[0], Version: filepath.Base(vers[0]), byName: map[string]string{}, builtin: map[string]bool{}, deps: map[string][]string{}}
	err := filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return err
		}
		rel, _ := filepath.Rel(t.Dir, p)
		t.byName[Norm(strings.TrimSuffix(d.Name(), ".ko"))] = rel
		return nil
	})
	if err != nil {
		return nil, err
	}
	if data, err := os.ReadFile(filepath.Join(t.Dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(data)) {
			t.builtin[Norm(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
		}
	}
	return t, nil
}

// Path returns a module's path relative to Dir; ok is false for built-ins.
func (t *Tree) Path(name string) (rel string, ok bool, err error) {
	n := Norm(name)
	if rel, ok := t.byName[n]; ok {
		return rel, true, nil
	}
	if t.builtin[n] {
		return "", false, nil
	}
	return "", false, fmt.Errorf("%w %q in kernel %s", ErrUnknown, name, t.Version)
}

func (t *Tree) depsOf(rel string) ([]string, error) {
	if d, ok := t.deps[rel]; ok {
		return d, nil
	}
	f, err := elf.Open(filepath.Join(t.Dir, rel))
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", rel, err)
	}
	defer f.Close()
	var out []string
	if s := f.Section(".modinfo"); s != nil {
		data, err := s.Data()
		if err != nil {
			return nil, err
		}
		for _, kv := range bytes.Split(data, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
				out = strings.Split(string(v), ",")
			}
		}
	}
	t.deps[rel] = out
	return out, nil
}

// Closure returns the module files (relative paths, sorted) that the named
// modules need, dependencies included. Built-in names are skipped.
func (t *Tree) Closure(names []string) ([]string, error) {
	seen := map[string]bool{}
	var visit func(string) error
	visit = func(name string) error {
		rel, ok, err := t.Path(name)
		if err != nil || !ok || seen[rel] {
			return err
		}
		seen[rel] = true
		deps, err := t.depsOf(rel)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return fmt.Errorf("%s (needed by %s): %w", d, name, err)
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for rel := range seen {
		out = append(out, rel)
	}
	sort.Strings(out)
	return out, nil
}

// Under lists the modules below a subtree (kernel/drivers/net/usb) or the
// one module file a .ko path names.
func (t *Tree) Under(prefix string) []string {
	var out []string
	for name, rel := range t.byName {
		if rel == prefix || strings.HasPrefix(rel, strings.TrimSuffix(prefix, "/")+"/") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// DepFile renders modules.dep for the given module files, each line listing
// every module the file needs, in load order.
func (t *Tree) DepFile(files []string) ([]byte, error) {
	var b bytes.Buffer
	for _, rel := range files {
		var order []string
		seen := map[string]bool{}
		var walk func(string) error
		walk = func(r string) error {
			deps, err := t.depsOf(r)
			if err != nil {
				return err
			}
			for _, d := range deps {
				dr, ok, err := t.Path(d)
				if err != nil {
					return err
				}
				if ok && !seen[dr] {
					seen[dr] = true
					if err := walk(dr); err != nil {
						return err
					}
					order = append(order, dr)
				}
			}
			return nil
		}
		if err := walk(rel); err != nil {
			return nil, err
		}
		// modules.dep lists the direct and indirect dependencies, the ones
		// to load last first.
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
		fmt.Fprintf(&b, "%s:", rel)
		for _, d := range order {
			fmt.Fprintf(&b, " %s", d)
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
