package bundle

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-os/cairn/boot"
)

// Format is the manifest format this package reads and writes.
const Format = 1

// Member names of the manifest and its signature, the first two members.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
)

// Bounds on what a reader accepts before it has checked the signature.
const (
	MaxManifest = 64 << 10 // bytes
	MaxFiles    = 64
	MaxFileSize = 16 << 30 // bytes, one slot file
)

// Errors a caller acts on; each is wrapped with what was wrong.
var (
	// ErrSignature: no trusted key made the manifest's signature.
	ErrSignature = errors.New("the bundle is not signed by a trusted key")
	// ErrFormat: the bundle is not one this version reads.
	ErrFormat = errors.New("not a Cairn update bundle")
	// ErrContent: a file's size or hash is not what the manifest says, or
	// the stream ended early.
	ErrContent = errors.New("the bundle's content does not match its manifest")
)

// Manifest says what a bundle is for and what it holds.
type Manifest struct {
	Format  int         `json:"format"`
	Board   string      `json:"board"`
	Family  boot.Family `json:"family"`
	Arch    string      `json:"arch"`
	Cluster string      `json:"cluster,omitempty"` // "" for a node without a cluster
	Version string      `json:"version"`           // the OS version, as build.json has it
	Build   int64       `json:"build"`             // grows with every build: the build's epoch
	// Console and Args are the slot's kernel arguments besides its own
	// and its disk's (family.Slot).
	Console []string `json:"console,omitempty"`
	Args    []string `json:"args,omitempty"`
	Files   []File   `json:"files"`
}

// File is one slot file.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// check says whether m is a manifest this version can install from.
func (m *Manifest) check() error {
	if m.Format != Format {
		return fmt.Errorf("%w: manifest format %d, this version reads %d", ErrFormat, m.Format, Format)
	}
	if err := m.Family.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if len(m.Files) == 0 || len(m.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files; want 1 to %d", ErrFormat, len(m.Files), MaxFiles)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := checkName(f.Name); err != nil {
			return err
		}
		if seen[f.Name] {
			return fmt.Errorf("%w: %q is listed twice", ErrFormat, f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 || f.Size > MaxFileSize {
			return fmt.Errorf("%w: %s is %d bytes; the most is %d", ErrFormat, f.Name, f.Size, int64(MaxFileSize))
		}
		if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
			return fmt.Errorf("%w: %s has no sha256 in hex", ErrFormat, f.Name)
		}
	}
	return nil
}

// checkName allows a slot file's plain name: letters, digits, and . _ -
// (no folders, no leading dot), what the families' slots hold.
func checkName(n string) error {
	ok := n != "" && len(n) <= 64 && n[0] != '.' && n != ManifestName && n != SignatureName
	for _, c := range n {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%w: file name %q; want a plain name of letters, digits, '.', '_' and '-'", ErrFormat, n)
	}
	return nil
}

// ParsePublicKey reads an ed25519 public key in base64, as update.publicKeys
// lists them and cairn keys prints them.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not an ed25519 public key in base64 (44 characters)", s)
	}
	return ed25519.PublicKey(b), nil
}

// FormatPublicKey writes k as ParsePublicKey reads it.
func FormatPublicKey(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// verify checks sig over data with each key and decodes the manifest.
func verify(data, sig []byte, keys []ed25519.PublicKey) (*Manifest, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the node trusts no key (update.publicKeys is empty)", ErrSignature)
	}
	if !signedBy(data, sig, keys) {
		return nil, fmt.Errorf("%w: its signature matches none of the node's %d update.publicKeys", ErrSignature, len(keys))
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrFormat, err)
	}
	return &m, m.check()
}

// signedBy says whether sig over data is one of keys'.
func signedBy(data, sig []byte, keys []ed25519.PublicKey) bool {
	for _, k := range keys {
		if len(sig) == ed25519.SignatureSize && ed25519.Verify(k, data, sig) {
			return true
		}
	}
	return false
}
