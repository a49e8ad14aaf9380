package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Describe returns a File for name with the size and hash of r's content.
func Describe(name string, r io.Reader) (File, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return File{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// Write writes a bundle of m, signed with key, to w; open gives each
// file's content, which must be what m says. Every member has mtime.
func Write(w io.Writer, m *Manifest, key ed25519.PrivateKey, mtime time.Time, open func(name string) (io.ReadCloser, error)) error {
	m.Format = Format
	if err := m.check(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tw := tar.NewWriter(w)
	put := func(name string, size int64, content io.Reader) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, content)
		if err == nil && n != size {
			err = fmt.Errorf("%s changed while the bundle was written: %d bytes, not %d", name, n, size)
		}
		return err
	}
	if err := put(ManifestName, int64(len(data)), bytes.NewReader(data)); err != nil {
		return err
	}
	sig := ed25519.Sign(key, data)
	if err := put(SignatureName, int64(len(sig)), bytes.NewReader(sig)); err != nil {
		return err
	}
	for _, f := range m.Files {
		rc, err := open(f.Name)
		if err != nil {
			return err
		}
		err = put(f.Name, f.Size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}
