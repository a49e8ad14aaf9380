package atomicfile

import (
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
