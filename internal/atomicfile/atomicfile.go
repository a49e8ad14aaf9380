// Package atomicfile writes a file whole or not at all: through a temporary
// file in the same folder, flushed to disk, and a rename, also flushed, so
// a reader (or the next boot after a power cut) never sees half a file.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
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
