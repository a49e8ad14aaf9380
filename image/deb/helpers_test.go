package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// member of a tarball built by a test.
type m struct {
	name string
	typ  byte
	body string // file contents, or the link target
	mode int64
}

func dir(name string) m          { return m{name: name, typ: tar.TypeDir, mode: 0o755} }
func file(name, body string) m   { return m{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func symlink(name, to string) m  { return m{name: name, typ: tar.TypeSymlink, body: to} }
func hardlink(name, to string) m { return m{name: name, typ: tar.TypeLink, body: to} }

func tarball(t testing.TB, members ...m) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range members {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Format: tar.FormatGNU}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		} else {
			h.Linkname = e.body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); e.typ == tar.TypeReg && err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress packs data the way the member name's extension says.
func compress(t testing.TB, ext string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	var err error
	switch ext {
	case ".gz":
		w = gzip.NewWriter(&buf)
	case ".xz":
		w, err = xz.NewWriter(&buf)
	case ".zst":
		w, err = zstd.NewWriter(&buf)
	default:
		return data
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// arArchive is an ar archive of name, body pairs.
func arArchive(pairs ...string) []byte {
	var buf bytes.Buffer
	buf.WriteString("!<arch>\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		name, body := pairs[i], pairs[i+1]
		fmt.Fprintf(&buf, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name+"/", 0, 0, 0, 0o644, len(body))
		buf.WriteString(body)
		if len(body)%2 == 1 {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

// debBytes is a .deb with the given control fields and data members.
func debBytes(t testing.TB, control, ext string, data ...m) []byte {
	t.Helper()
	ctl := compress(t, ".gz", tarball(t, dir("./"), file("./control", control)))
	return arArchive("debian-binary", "2.0\n", "control.tar.gz", string(ctl),
		"data.tar"+ext, string(compress(t, ext, tarball(t, data...))))
}

// writeDeb writes a .deb into a new temporary folder and returns its path.
func writeDeb(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.deb")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
