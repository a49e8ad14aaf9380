// Package deb reads Debian binary packages: the ar container, the control
// stanza and the data tarball (gzip, xz or zstd). It extracts data into a
// folder without needing root: owners are not kept, device nodes are skipped.
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

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrFormat is wrapped when a file is not a well-formed .deb.
var ErrFormat = errors.New("not a Debian package")

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
			return nil, nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[:16])), "/")
		n, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: bad member size", ErrFormat)
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
		z, err := zstd.NewReader(r)
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
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
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

// Extract unpacks the package's data into dest, which must not exist yet. It
// works in a sibling temporary folder and renames it into place at the end,
// so dest is either complete or absent.
func Extract(path, dest string) error {
	f, size, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, closer, err := member(f, size, "data.tar")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer closer()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".extract-*")
	if err != nil {
		return err
	}
	if err := untar(tar.NewReader(r), tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

func untar(tr *tar.Reader, dest string) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFormat, err)
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		target := filepath.Join(dest, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFile(target, tr, os.FileMode(h.Mode)&0o7777)
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				err = os.Symlink(h.Linkname, target)
			}
		case tar.TypeLink:
			src := filepath.Join(dest, filepath.Clean(h.Linkname))
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				err = os.Link(src, target)
			}
		}
		if err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Keep setuid and friends as data: the image writer reads them back.
	return os.Chmod(path, mode|0o200)
}
