package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := Write(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(got) != "two" || st.Mode().Perm() != 0o640 {
		t.Errorf("%q %v", got, st.Mode().Perm())
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Error("wrote into a missing folder")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestWritePrivate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", "b", "key")
	if err := WritePrivate(p, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	for f, want := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700 | os.ModeDir, filepath.Join(dir, "a"): 0o700 | os.ModeDir} {
		if st, err := os.Stat(f); err != nil || st.Mode() != want {
			t.Errorf("%s: %v %v, want %v", f, st.Mode(), err, want)
		}
	}
	if string(got) != "secret" {
		t.Errorf("read %q", got)
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	if err := WritePrivate(filepath.Join(dir, "file", "key"), nil); err == nil {
		t.Error("wrote below a file")
	}
}

func TestWriteInFollowsNoLink(t *testing.T) {
	top, outside := t.TempDir(), t.TempDir()
	root, err := os.OpenRoot(top)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	chowned := false
	if err := WriteIn(root, "a/b/f", []byte("one"), 0o640, func(*os.File) error { chowned = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(top, "a/b/f")); string(got) != "one" || !chowned {
		t.Errorf("wrote %q, prepared %t", got, chowned)
	}
	if st, _ := os.Stat(filepath.Join(top, "a/b/f")); st.Mode() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	// A link at the file is replaced; what it pointed at is left alone.
	target := filepath.Join(outside, "target")
	os.WriteFile(target, []byte("keep"), 0o600)
	os.Symlink(target, filepath.Join(top, "a/link"))
	if err := WriteIn(root, "a/link", []byte("two"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Errorf("wrote through a link at the file: %q", got)
	}
	if st, _ := os.Lstat(filepath.Join(top, "a/link")); !st.Mode().IsRegular() {
		t.Errorf("the link was not replaced: %v", st.Mode())
	}
	// A link in place of a folder is refused, even one that stays inside.
	os.Symlink(outside, filepath.Join(top, "out"))
	os.Symlink("a", filepath.Join(top, "in"))
	for _, name := range []string{"out/f", "in/b/f", "a/link/f"} {
		if err := WriteIn(root, name, []byte("x"), 0o644, nil); err == nil {
			t.Errorf("%s: written", name)
		} else if name != "a/link/f" && !errors.Is(err, ErrSymlink) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("written outside: %v", entries)
	}
	if err := WriteIn(root, "a/b", []byte("x"), 0o644, nil); err == nil {
		t.Error("replaced a folder")
	}
	for _, d := range []string{"a", "a/b"} {
		if entries, _ := os.ReadDir(filepath.Join(top, d)); len(entries) != map[string]int{"a": 2, "a/b": 1}[d] {
			t.Errorf("%s holds %v", d, entries)
		}
	}
}
