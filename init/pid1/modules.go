package pid1

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// loadModules loads kernel modules by name with what they depend on, as
// the image's modules.dep lists it (u-root's kmodule resolves it). Names
// built into the kernel or already loaded are fine; the others that cannot
// be loaded are reported together.
func loadModules(log *slog.Logger, opts kmodule.ProbeOpts, names []string) error {
	p, err := kmodule.NewProber(opts)
	if err != nil {
		return fmt.Errorf("kernel modules: %w", err)
	}
	var failed []string
	for _, n := range names {
		err := p.Probe(n, "")
		if err != nil {
			if file, deps, ok := mixedName(opts, n); ok {
				err = loadFile(p, opts, file, deps)
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", n, err))
		}
	}
	log.Info("modules loaded", "count", len(names)-len(failed))
	if len(failed) > 0 {
		return fmt.Errorf("could not load %s", strings.Join(failed, ", "))
	}
	return nil
}

// mixedName finds the module file of a name that mixes '-' and '_'
// (nls_iso8859-1.ko), which kmodule's lookup misses: it tries the name
// with all '-' or all '_'. It returns the file, relative to the modules
// folder, and the names of what the file depends on.
func mixedName(opts kmodule.ProbeOpts, name string) (string, []string, bool) {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	f, err := os.Open(filepath.Join(opts.RootDir, "/lib/modules", kernelRelease(opts), "modules.dep"))
	if err != nil {
		return "", nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		file, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok || norm(strings.TrimSuffix(filepath.Base(file), ".ko")) != norm(name) {
			continue
		}
		var names []string
		for _, d := range strings.Fields(deps) {
			names = append(names, strings.TrimSuffix(filepath.Base(d), ".ko"))
		}
		return file, names, true
	}
	return "", nil, false
}

// loadFile loads a module file after what it depends on.
func loadFile(p *kmodule.Prober, opts kmodule.ProbeOpts, file string, deps []string) error {
	for _, d := range deps {
		if err := p.Probe(d, ""); err != nil {
			return fmt.Errorf("%s, which it needs: %w", d, err)
		}
	}
	path := filepath.Join(opts.RootDir, "/lib/modules", kernelRelease(opts), file)
	if opts.DryRunCB != nil {
		opts.DryRunCB(path)
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := kmodule.FileInit(f, "", 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// listedModules are the names of every module the image's modules.dep
// lists: in the initramfs, those that reach the root.
func listedModules(opts kmodule.ProbeOpts) ([]string, error) {
	f, err := os.Open(filepath.Join(opts.RootDir, "/lib/modules", kernelRelease(opts), "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("no kernel modules here: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if file, _, ok := strings.Cut(sc.Text(), ":"); ok {
			names = append(names, strings.TrimSuffix(filepath.Base(file), ".ko"))
		}
	}
	return names, sc.Err()
}

// kernelRelease is the kernel version the options name, else the running one.
func kernelRelease(opts kmodule.ProbeOpts) string {
	if opts.KVer != "" {
		return opts.KVer
	}
	var u unix.Utsname
	unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// loadListed loads every module the image lists.
func loadListed(log *slog.Logger, opts kmodule.ProbeOpts) error {
	names, err := listedModules(opts)
	if err != nil {
		return err
	}
	return loadModules(log, opts, names)
}
