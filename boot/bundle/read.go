package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Reader reads a bundle from a stream.
type Reader struct {
	Manifest *Manifest
	tr       *tar.Reader
	next     int         // index of the next file in Manifest.Files
	cur      *fileReader // the file handed out last
}

// NewReader reads the manifest and its signature from r and checks them
// against keys. Nothing of the files is read yet.
func NewReader(r io.Reader, keys []ed25519.PublicKey) (*Reader, error) {
	tr := tar.NewReader(r)
	data, err := member(tr, ManifestName, MaxManifest)
	if err != nil {
		return nil, err
	}
	sig, err := member(tr, SignatureName, ed25519.SignatureSize)
	if err != nil {
		return nil, err
	}
	m, err := verify(data, sig, keys)
	if err != nil {
		return nil, err
	}
	return &Reader{Manifest: m, tr: tr}, nil
}

// member reads the next member, which must be called name and hold at
// most max bytes.
func member(tr *tar.Reader, name string, max int64) ([]byte, error) {
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrFormat, name, noEOF(err))
	}
	if h.Name != name || h.Typeflag != tar.TypeReg || h.Size > max {
		return nil, fmt.Errorf("%w: found %q (%d bytes) where %s (at most %d bytes) should be", ErrFormat, h.Name, h.Size, name, max)
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, tr); err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrFormat, name, noEOF(err))
	}
	return b.Bytes(), nil
}

// Next returns the next file and its content. The content reader returns
// an error wrapping ErrContent, instead of io.EOF, when the content is not
// what the manifest says; a caller must read it to io.EOF before it trusts
// what it wrote. After the last file Next returns io.EOF.
func (r *Reader) Next() (File, io.Reader, error) {
	if r.cur != nil {
		// The caller stopped early: the rest must still match.
		if _, err := io.Copy(io.Discard, r.cur); err != nil {
			return File{}, nil, err
		}
	}
	if r.next == len(r.Manifest.Files) {
		return File{}, nil, io.EOF
	}
	f := r.Manifest.Files[r.next]
	r.next++
	h, err := r.tr.Next()
	if err != nil {
		return f, nil, fmt.Errorf("%w: the stream ended before %s: %w", ErrContent, f.Name, noEOF(err))
	}
	if h.Name != f.Name || h.Typeflag != tar.TypeReg || h.Size != f.Size {
		return f, nil, fmt.Errorf("%w: found %q (%d bytes) where %s (%d bytes) should be", ErrContent, h.Name, h.Size, f.Name, f.Size)
	}
	r.cur = &fileReader{f: f, r: r.tr, h: sha256.New(), left: f.Size}
	return f, r.cur, nil
}

// fileReader hashes a file's content as it is read and checks it at the end.
type fileReader struct {
	f    File
	r    io.Reader
	h    hash.Hash
	left int64
	err  error // sticky
}

func (fr *fileReader) Read(p []byte) (int, error) {
	if fr.err != nil {
		return 0, fr.err
	}
	if fr.left == 0 {
		fr.err = fr.finish()
		return 0, fr.err
	}
	if int64(len(p)) > fr.left {
		p = p[:fr.left]
	}
	n, err := fr.r.Read(p)
	fr.h.Write(p[:n])
	fr.left -= int64(n)
	if (err == io.EOF || err == io.ErrUnexpectedEOF) && fr.left > 0 {
		err = fmt.Errorf("%w: the stream ended %d bytes before the end of %s", ErrContent, fr.left, fr.f.Name)
	}
	if err != nil && err != io.EOF {
		fr.err = err
	}
	return n, fr.err
}

func (fr *fileReader) finish() error {
	if got := hex.EncodeToString(fr.h.Sum(nil)); got != fr.f.SHA256 {
		return fmt.Errorf("%w: %s has sha256 %s, the manifest says %s", ErrContent, fr.f.Name, got, fr.f.SHA256)
	}
	return io.EOF
}

// noEOF turns an early end of the stream into an error that says so.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
