package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cairn-os/cairn/internal/atomicfile"
)

// lateCAs are the CAs that bundles made by an older cairn lack.
var lateCAs = []string{FileKubeletServingCA}

// addMissing makes the late CAs a bundle in dir lacks and returns the
// files it wrote. It writes the key before the certificate, and a key left
// without a certificate (by a crash between the two) gets one, so a key
// that exists is never replaced.
func addMissing(dir string, now time.Time) ([]string, error) {
	var added []string
	for _, ca := range (&Bundle{}).cas() {
		if !slices.Contains(lateCAs, ca.cert) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, ca.cert)); !errors.Is(err, fs.ErrNotExist) {
			continue // there, or Load says what is wrong with it
		}
		files, err := addCA(dir, ca, now)
		if err != nil {
			return nil, fmt.Errorf("%w: adding %s: %w", ErrBundle, filepath.Join(dir, ca.cert), err)
		}
		added = append(added, files...)
	}
	return added, nil
}

func addCA(dir string, ca caFile, now time.Time) ([]string, error) {
	key, made, err := caKey(filepath.Join(dir, ca.key))
	if err != nil {
		return nil, err
	}
	c, err := selfSigned(ca.cn, key, now)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(dir, ca.cert), c.CertPEM, 0o600); err != nil {
		return nil, err
	}
	if made {
		return []string{ca.key, ca.cert}, nil
	}
	return []string{ca.cert}, nil
}

// caKey reads the key in file, or makes one and writes it there (0600)
// when there is none.
func caKey(file string) (key *ecdsa.PrivateKey, made bool, err error) {
	data, err := os.ReadFile(file)
	if err == nil {
		if key, err = parseKey(data); err != nil {
			return nil, false, fmt.Errorf("%s: %w", file, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, false, err
	}
	if data, err = keyPEM(key); err != nil {
		return nil, false, err
	}
	return key, true, atomicfile.Write(file, data, 0o600)
}
