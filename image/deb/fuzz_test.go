package deb

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzExtract reads and unpacks arbitrary bytes as a package, next to a
// folder that stands for the rest of the build host, and checks that
// nothing outside the package's folder changed. The caps are lowered so
// that no input unpacks for long.
func FuzzExtract(f *testing.F) {
	b, n := maxExtracted, maxMembers
	f.Cleanup(func() { maxExtracted, maxMembers = b, n })
	maxExtracted, maxMembers = 1<<20, 64
	for _, ext := range []string{".gz", ".xz", ".zst", ""} {
		f.Add(debBytes(f, control, ext, dir("./"), dir("./usr/"), file("./usr/a", "a"), hardlink("./usr/b", "./usr/a"), symlink("./usr/c", "a")))
	}
	f.Add(debBytes(f, control, "", symlink("evil", "../../../outside"), file("evil/pwned", "x")))
	f.Add(debBytes(f, control, "", hardlink("h", "../../../outside/victim"), file("h", "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		outside := filepath.Join(base, "outside")
		victim := filepath.Join(outside, "victim")
		os.Mkdir(outside, 0o755)
		os.WriteFile(victim, []byte("keep"), 0o644)
		pkg := filepath.Join(base, "in.deb")
		os.WriteFile(pkg, data, 0o644)
		Control(pkg)
		// ../../../outside from the package's folder or its work folder is
		// the outside folder.
		dest := filepath.Join(base, "x", "y", "pkg")
		err := Extract(pkg, dest)
		if got, _ := os.ReadFile(victim); string(got) != "keep" {
			t.Fatalf("the file outside now holds %q", got)
		}
		if names := list(outside); !slices.Equal(names, []string{"victim"}) {
			t.Fatalf("the folder outside now holds %v", names)
		}
		if names := list(base); !slices.Equal(names, []string{"in.deb", "outside", "x"}) && !slices.Equal(names, []string{"in.deb", "outside"}) {
			t.Fatalf("the test's folder now holds %v", names)
		}
		if names := list(filepath.Dir(dest)); err != nil && len(names) > 0 {
			t.Fatalf("a failed extraction (%v) left %v", err, names)
		}
	})
}

func list(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
