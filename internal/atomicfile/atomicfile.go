// Package atomicfile writes a file whole or not at all: through a temporary
// file in the same folder, flushed to disk, and a rename, also flushed, so
// a reader (or the next boot after a power cut) never sees half a file.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Write replaces path with data, with the given permissions. The folder
// must exist. On failure path is untouched and no temporary file is left.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := fill(tmp, data, mode, nil); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(os.Open(filepath.Dir(path)))
}

// WritePrivate writes a secret (a key, a kubeconfig) at 0600, creating its
// folder and any missing parents at 0700.
func WritePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return Write(path, data, 0o600)
}

// ErrSymlink is wrapped by WriteIn's refusal to pass through a symbolic link.
var ErrSymlink = errors.New("a symbolic link is in the way")

// WriteIn is Write for a file named by a slash-separated path inside root.
// It makes the folders it lacks (0755) and follows no symbolic link: one
// in place of a folder is refused, one at the file itself is replaced.
// prepare, if not nil, is called on the temporary file before the rename
// (to set its owner, say).
func WriteIn(root *os.Root, name string, data []byte, mode os.FileMode, prepare func(*os.File) error) error {
	dir, base, err := openFolders(root, name)
	if err != nil {
		return err
	}
	defer dir.Close()
	tmp, tmpName, err := createTemp(dir, base)
	if err != nil {
		return err
	}
	defer dir.Remove(tmpName) // a no-op after the rename
	if err := fill(tmp, data, mode, prepare); err != nil {
		return err
	}
	if err := dir.Rename(tmpName, base); err != nil {
		return err
	}
	return syncDir(dir.Open("."))
}

// openFolders walks name's folders from root, one at a time, making the
// missing ones, and returns the last folder and the file's name in it.
func openFolders(root *os.Root, name string) (*os.Root, string, error) {
	parts := strings.Split(name, "/")
	dir, err := root.OpenRoot(".")
	if err != nil {
		return nil, "", err
	}
	for i, part := range parts[:len(parts)-1] {
		next, err := openFolder(dir, part)
		dir.Close()
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", strings.Join(parts[:i+1], "/"), err)
		}
		dir = next
	}
	return dir, parts[len(parts)-1], nil
}

func openFolder(dir *os.Root, name string) (*os.Root, error) {
	fi, err := dir.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := dir.Mkdir(name, 0o755); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, ErrSymlink
	case !fi.IsDir():
		return nil, errors.New("not a folder")
	}
	return dir.OpenRoot(name)
}

// createTemp makes a new file next to base that no one else has opened.
func createTemp(dir *os.Root, base string) (*os.File, string, error) {
	for {
		name := fmt.Sprintf(".%s.%d", base, rand.Uint32())
		f, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, name, err
		}
	}
}

// fill writes data to the temporary file, lets prepare change it, sets its
// mode, flushes it to disk and closes it.
func fill(tmp *os.File, data []byte, mode os.FileMode, prepare func(*os.File) error) error {
	_, err := tmp.Write(data)
	if err == nil && prepare != nil {
		err = prepare(tmp)
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	return errors.Join(err, tmp.Close())
}

// syncDir flushes a folder, so that a rename in it survives a power cut.
// A file system that cannot flush folders (EINVAL) is not an error.
func syncDir(d *os.File, err error) error {
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		d.Close()
		return err
	}
	return d.Close()
}
