package deb

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-os/cairn/internal/limited"
	"github.com/cairn-os/cairn/internal/progress"
)

// ErrUnsafe is wrapped when a member would be written outside the
// extraction folder or through a symlink.
var ErrUnsafe = errors.New("package member would escape its folder")

// Caps on what one package unpacks to, so a small compressed member cannot
// fill the build host's disk or its inode table. The largest real packages
// (kernels, firmware) unpack to well under 2 GiB and 10,000 members.
// Variables, so that tests can lower them.
var (
	maxExtracted int64 = 16 << 30
	maxMembers         = 1 << 20
)

// Caps on a member's name: Linux's PATH_MAX, and a depth no package comes
// near (each folder on the way is checked, so depth costs time).
const (
	maxName  = 4096
	maxDepth = 64
)

// hostile ends the error of a member that breaks the rules.
const hostile = "the package is damaged or hostile; take it out of the --debs folder or the repositories"

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

// extractor writes members beneath root. Every name goes through the
// os.Root, which refuses to resolve outside the folder; on top of that,
// every folder on a member's path must be a real folder, so no member is
// written through a link even when the link stays inside.
type extractor struct {
	root    *os.Root
	left    int64 // bytes that may still be written
	members int   // members that may still be read
}

func untar(tr *tar.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, left: maxExtracted, members: maxMembers}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrFormat, err)
		}
		if x.members--; x.members < 0 {
			return fmt.Errorf("%w: the package has more than %d members; %s", limited.ErrTooLarge, maxMembers, hostile)
		}
		if err := x.entry(h, tr); err != nil {
			return fmt.Errorf("member %q: %w", h.Name, err)
		}
	}
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	name, err := localName(h.Name)
	if err != nil || name == "." {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdirs(name, true)
	case tar.TypeReg:
		return x.file(name, r, h.Size, fs.FileMode(h.Mode).Perm())
	case tar.TypeSymlink:
		if err := x.prepare(name); err != nil {
			return err
		}
		return x.root.Symlink(h.Linkname, name)
	case tar.TypeLink:
		return x.link(name, h.Linkname)
	}
	return nil // device nodes, fifos: not kept
}

// localName is a member's path inside the folder. A leading / is dropped,
// as dpkg and tar do; a name that climbs out with .. is refused.
func localName(name string) (string, error) {
	if len(name) > maxName || strings.Count(name, "/") > maxDepth {
		return "", fmt.Errorf("%w: a member's name is longer than %d bytes or deeper than %d folders; %s", ErrUnsafe, maxName, maxDepth, hostile)
	}
	rel := filepath.Clean(strings.TrimLeft(name, "/"))
	if rel != "." && !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%w: the name climbs out with ..; %s", ErrUnsafe, hostile)
	}
	return rel, nil
}

// mkdirs makes dir and the folders above it, as real folders; create
// false only checks that they are. A symlink on the way is refused.
func (x *extractor) mkdirs(dir string, create bool) error {
	if dir == "." {
		return nil
	}
	if err := x.mkdirs(filepath.Dir(dir), create); err != nil {
		return err
	}
	st, err := x.root.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		return x.root.Mkdir(dir, 0o755)
	case err != nil:
		return err
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: its path leads through the symlink %s; %s", ErrUnsafe, dir, hostile)
	case !st.IsDir():
		return fmt.Errorf("%w: %s on its path is not a folder", ErrFormat, dir)
	}
	return nil
}

// prepare makes the member's folder and removes what stands at its name, so
// the member replaces it instead of writing through it.
func (x *extractor) prepare(name string) error {
	if err := x.mkdirs(filepath.Dir(name), true); err != nil {
		return err
	}
	err := x.root.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// file writes a regular member into a new file (O_EXCL: never into one
// that exists, which a hard link could share with another name).
func (x *extractor) file(name string, r io.Reader, size int64, perm fs.FileMode) error {
	if size > x.left {
		return fmt.Errorf("%w: the package unpacks to more than %s; %s", limited.ErrTooLarge, progress.Size(maxExtracted), hostile)
	}
	x.left -= size
	if err := x.prepare(name); err != nil {
		return err
	}
	f, err := x.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chmod(perm | 0o200)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// link makes a hard link to a file the package has already written.
func (x *extractor) link(name, target string) error {
	old, err := localName(target)
	if err != nil {
		return err
	}
	if st, err := x.root.Lstat(old); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%w: it is a hard link to %q, which is not a file of the package; %s", ErrUnsafe, target, hostile)
	}
	if err := x.mkdirs(filepath.Dir(old), false); err != nil {
		return err
	}
	if err := x.prepare(name); err != nil {
		return err
	}
	return x.root.Link(old, name)
}
