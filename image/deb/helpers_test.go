package deb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-os/cairn/image/deb/debtest"
)

type m = debtest.Member

var (
	dir       = debtest.Dir
	file      = debtest.File
	symlink   = debtest.Symlink
	hardlink  = debtest.Hardlink
	debBytes  = debtest.Deb
	arArchive = debtest.Ar
)

// writeDeb writes a .deb into a new temporary folder and returns its path.
func writeDeb(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.deb")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
