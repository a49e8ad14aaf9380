// Package bundletest rewrites update bundles for tests and benchmarks:
// their files changed, signed again.
package bundletest

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"os"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boot/bundle"
)

// Rewrite reads the bundle src, signed by a key of trusted, and writes to
// dst a bundle of the same files, each passed through file (which may
// return other bytes), with its manifest passed through manifest (when
// not nil) and signed with key.
func Rewrite(t testing.TB, src, dst string, trusted []ed25519.PublicKey, key ed25519.PrivateKey,
	manifest func(*bundle.Manifest), file func(name string, data []byte) []byte) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := bundle.NewReader(in, trusted)
	if err != nil {
		t.Fatal(err)
	}
	m := *r.Manifest
	m.Files = nil
	files := map[string][]byte{}
	for {
		f, c, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		data = file(f.Name, data)
		files[f.Name] = data
		d, err := bundle.Describe(f.Name, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		m.Files = append(m.Files, d)
	}
	if manifest != nil {
		manifest(&m)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	open := func(n string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(files[n])), nil }
	if err := bundle.Write(out, &m, key, time.Unix(0, 0), open); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
