// Package debtest builds Debian packages in memory for tests: well-formed
// ones, and the malformed and hostile ones no packaging tool would make
// (members through symlinks, hard links out, names with ..).
package debtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Member is one entry of a package's data tarball.
type Member struct {
	Name string
	Type byte
	Body string // file contents, or the link target
	Mode int64
}

// Dir, File, Symlink and Hardlink make members of each kind.
func Dir(name string) Member { return Member{Name: name, Type: tar.TypeDir, Mode: 0o755} }
func File(name, body string) Member {
	return Member{Name: name, Type: tar.TypeReg, Body: body, Mode: 0o644}
}
func Symlink(name, to string) Member  { return Member{Name: name, Type: tar.TypeSymlink, Body: to} }
func Hardlink(name, to string) Member { return Member{Name: name, Type: tar.TypeLink, Body: to} }

// Tar is a tarball of the members, in order.
func Tar(t testing.TB, members ...Member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range members {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Format: tar.FormatGNU}
		if e.Type == tar.TypeReg {
			h.Size = int64(len(e.Body))
		} else {
			h.Linkname = e.Body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.Body)); e.Type == tar.TypeReg && err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Compress packs data the way a member name's extension says (.gz, .xz,
// .zst; anything else leaves it as it is).
func Compress(t testing.TB, ext string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
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

// Ar is an ar archive of name, body pairs.
func Ar(pairs ...string) []byte {
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

// Deb is a package with the given control stanza and data members, its
// data tarball compressed as ext says.
func Deb(t testing.TB, control, ext string, data ...Member) []byte {
	t.Helper()
	ctl := Compress(t, ".gz", Tar(t, Dir("./"), File("./control", control)))
	return Ar("debian-binary", "2.0\n", "control.tar.gz", string(ctl),
		"data.tar"+ext, string(Compress(t, ext, Tar(t, data...))))
}
