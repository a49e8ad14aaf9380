// Package atomicfile writes a file whole or not at all: through a temporary
// file in the same folder and a rename, so a reader (or the next boot after
// a power cut) never sees half a file.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, with the given permissions. The folder
// must exist. On failure path is untouched and no temporary file is left.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WritePrivate writes a secret (a key, a kubeconfig) at 0600, creating its
// folder and any missing parents at 0700.
func WritePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return Write(path, data, 0o600)
}
