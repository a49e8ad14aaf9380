package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-os/cairn/configs"
)

// TestWriteFile writes files[] entries into a temporary folder as the
// test's own user: whole, with mode and owner, never through a link.
func TestWriteFile(t *testing.T) {
	top, outside := t.TempDir(), t.TempDir()
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	f := configs.File{Base64: "aGVsbG8=", Mode: 0o640, Owner: owner}
	if n, err := writeFile(top, "app/conf.d/x.conf", f); err != nil || n != 5 {
		t.Fatalf("%d, %v", n, err)
	}
	p := filepath.Join(top, "app/conf.d/x.conf")
	got, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(got) != "hello" || st.Mode() != 0o640 {
		t.Errorf("wrote %q at %v", got, st.Mode())
	}

	// Replaced whole, at the default mode, and nothing left beside it.
	if _, err := writeFile(top, "app/conf.d/x.conf", configs.File{Content: "new", Owner: owner}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	st, _ = os.Stat(p)
	if entries, _ := os.ReadDir(filepath.Dir(p)); string(got) != "new" || st.Mode() != 0o644 || len(entries) != 1 {
		t.Errorf("rewrote %q at %v beside %v", got, st.Mode(), entries)
	}

	// A link at the file is replaced; a link for a folder is refused.
	secret := filepath.Join(outside, "shadow")
	os.WriteFile(secret, []byte("keep"), 0o600)
	os.Symlink(secret, filepath.Join(top, "app/shadow"))
	os.Symlink(outside, filepath.Join(top, "app/out"))
	if _, err := writeFile(top, "app/shadow", configs.File{Content: "x", Owner: owner}); err != nil {
		t.Fatal(err)
	}
	if _, err := writeFile(top, "app/out/new", configs.File{Content: "x", Owner: owner}); err == nil {
		t.Error("wrote through a link in place of a folder")
	}
	if got, _ := os.ReadFile(secret); string(got) != "keep" {
		t.Errorf("a link's target was overwritten: %q", got)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("wrote outside the folder: %v", entries)
	}
}

func TestFileModeAndOwner(t *testing.T) {
	for _, tc := range []struct {
		f        configs.File
		mode     os.FileMode
		uid, gid int
	}{
		{configs.File{}, 0o644, 0, 0},
		{configs.File{Mode: 0o600, Owner: "1000:100"}, 0o600, 1000, 100},
		{configs.File{Mode: 0o4755}, 0o755, 0, 0}, // refused by Validate; never more than the permissions
	} {
		uid, gid := fileOwner(tc.f)
		if m := fileMode(tc.f); m != tc.mode || uid != tc.uid || gid != tc.gid {
			t.Errorf("%+v: %v %d:%d", tc.f, m, uid, gid)
		}
	}
}
