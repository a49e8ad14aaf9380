package pid1

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// loadAll loads every module listed in root's modules.dep.
func loadAll(log *slog.Logger, root string) error {
	deps, err := readDeps(root)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(deps.byName))
	for n := range deps.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return deps.load(log, names)
}

// modDeps is modules.dep: module name -> its file and the files it needs.
type modDeps struct {
	dir    string
	byName map[string]string   // normalised name -> relative path
	needs  map[string][]string // relative path -> relative paths, load order last first
}

func normMod(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(s), ".ko"), "-", "_")
}

func readDeps(root string) (*modDeps, error) {
	var u unix.Utsname
	unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	dir := filepath.Join(root, "/lib/modules", rel)
	data, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel %s has no modules here: %w", rel, err)
	}
	d := &modDeps{dir: dir, byName: map[string]string{}, needs: map[string][]string{}}
	for _, line := range strings.Split(string(data), "\n") {
		p, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		d.byName[normMod(p)] = p
		d.needs[p] = strings.Fields(rest)
	}
	return d, nil
}

// loadModules loads modules by name with their dependencies; names that are
// built into the kernel or already loaded are fine.
func loadModules(log *slog.Logger, root string, names []string) error {
	d, err := readDeps(root)
	if err != nil {
		return err
	}
	return d.load(log, names)
}

func (d *modDeps) load(log *slog.Logger, names []string) error {
	builtin, _ := os.ReadFile(filepath.Join(d.dir, "modules.builtin"))
	isBuiltin := map[string]bool{}
	for _, l := range strings.Fields(string(builtin)) {
		isBuiltin[normMod(l)] = true
	}
	loaded := map[string]bool{}
	load := func(rel string) error {
		if loaded[rel] {
			return nil
		}
		loaded[rel] = true
		f, err := os.Open(filepath.Join(d.dir, rel))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := kmodule.FileInit(f, "", 0); err != nil && err != unix.EEXIST {
			return err
		}
		return nil
	}
	var failed []string
	count := 0
	for _, n := range names {
		rel, ok := d.byName[normMod(n)]
		if !ok {
			if !isBuiltin[normMod(n)] {
				failed = append(failed, n+" (not in this image)")
			}
			continue
		}
		needs := d.needs[rel]
		var err error
		for i := len(needs) - 1; i >= 0 && err == nil; i-- {
			err = load(needs[i])
		}
		if err == nil {
			err = load(rel)
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", n, err))
			continue
		}
		count++
	}
	log.Info("modules loaded", "count", count)
	if len(failed) > 0 {
		return fmt.Errorf("could not load %s", strings.Join(failed, ", "))
	}
	return nil
}
