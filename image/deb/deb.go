// Package deb reads Debian binary packages: the ar container, the control
// stanza and the data tarball (gzip, xz or zstd). It extracts data into a
// folder without needing root: owners are not kept, device nodes are
// skipped, and setuid, setgid and sticky bits are dropped, so the cache on
// the build host holds no setuid files.
//
// A package is input the build does not control (a --debs folder, a
// third-party archive), so extraction never writes outside its folder: a
// member whose name climbs out with .., or whose path leads through a
// symlink, or a hard link to anything but a file already in the package,
// is refused (ErrUnsafe). Symlinks are created as data, pointing wherever
// the package says (absolute ones are meant for the target system), and
// never followed. What it reads into memory, and what it writes, is capped.
package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-os/cairn/internal/limited"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrFormat is wrapped when a file is not a well-formed .deb.
var ErrFormat = errors.New("not a Debian package")

// maxControl bounds the control file read into memory; real ones are a few
// KiB.
const maxControl = 1 << 20

// member finds an ar member whose name starts with prefix and returns a
// decompressed reader of it.
func member(f io.ReaderAt, size int64, prefix string) (io.Reader, func(), error) {
	magic := make([]byte, 8)
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != "!<arch>\n" {
		return nil, nil, fmt.Errorf("%w: no ar header", ErrFormat)
	}
	off := int64(8)
	hdr := make([]byte, 60)
	for off+60 <= size {
		if _, err := f.ReadAt(hdr, off); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[:16])), "/")
		n, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || n < 0 || n > size-off-60 {
			return nil, nil, fmt.Errorf("%w: ar member %q has a bad size", ErrFormat, name)
		}
		body := io.NewSectionReader(f, off+60, n)
		if strings.HasPrefix(name, prefix) {
			r, closer, err := decompressor(bufio.NewReaderSize(body, 1<<20), filepath.Ext(name))
			return r, closer, err
		}
		off += 60 + n + n%2
	}
	return nil, nil, fmt.Errorf("%w: no %s member", ErrFormat, prefix)
}

func decompressor(r io.Reader, ext string) (io.Reader, func(), error) {
	switch ext {
	case ".xz":
		x, err := xz.NewReader(r)
		return x, func() {}, err
	case ".gz":
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return g, func() { g.Close() }, nil
	case ".zst":
		// The decoder's own window cap is 512 MiB; packages are
		// compressed with far smaller windows, so 128 MiB leaves room.
		z, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	case ".tar":
		return r, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: unsupported compression %q", ErrFormat, ext)
}

func open(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Control returns the fields of the package's control stanza.
func Control(path string) (map[string]string, error) {
	f, size, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, closer, err := member(f, size, "control.tar")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer closer()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: %w: no control file", path, ErrFormat)
		}
		if filepath.Clean(h.Name) == "control" {
			data, err := limited.ReadAll(tr, maxControl)
			if err != nil {
				return nil, fmt.Errorf("%s: %w: its control file is %w; replace the file, which is damaged", path, ErrFormat, err)
			}
			return parseStanza(data), nil
		}
	}
}

func parseStanza(data []byte) map[string]string {
	out := map[string]string{}
	var last string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			out[last] += "\n" + string(bytes.TrimSpace(line))
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok {
			last = string(k)
			out[last] = string(bytes.TrimSpace(v))
		}
	}
	return out
}
