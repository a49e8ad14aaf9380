// Package fleet holds the operator's keys for all of their nodes, made once
// by `cairn keys generate` and kept beside the clusters' secrets: the
// ed25519 key that signs update bundles, and the node API's credentials (a
// CA, the administrator's client certificate, and the server certificate
// every node presents). Images carry the public key, the CA certificate and
// the node's certificate and key; the private signing key and the
// administrator's key never leave the operator's machine.
package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/boot/bundle"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/nodeapi"
)

// ErrNoKeys is wrapped when the folder holds no fleet keys.
var ErrNoKeys = errors.New("no fleet keys")

// Files in the fleet folder, each 0600 in a 0700 folder.
const (
	FileSignKey   = "update.key"          // ed25519, PKCS #8 PEM
	FilePublicKey = nodeapi.FilePublicKey // its public key in base64, for update.publicKeys
	FileCA        = nodeapi.FileCA
	FileCAKey     = "api-ca.key"
	FileAdmin     = "admin.crt"
	FileAdminKey  = "admin.key"
	FileNode      = nodeapi.FileNode
	FileNodeKey   = nodeapi.FileNodeKey
)

// Fleet is the keys of one operator's nodes.
type Fleet struct {
	Dir     string
	SignKey ed25519.PrivateKey
	CA      *identity.CA
	// Client and server certificates of the node API, and their keys, PEM.
	AdminCert, AdminKey, NodeCert, NodeKey []byte
}

// DefaultDir is where the fleet keys live: $CAIRN_FLEET, else cairn/fleet
// in the user's config folder, beside cairn/clusters.
func DefaultDir() (string, error) {
	if d := os.Getenv("CAIRN_FLEET"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no folder for the fleet keys: %w (set CAIRN_FLEET)", err)
	}
	return filepath.Join(d, "cairn", "fleet"), nil
}

// PublicKey is the signing key's public half as update.publicKeys lists it.
func (f *Fleet) PublicKey() string {
	return bundle.FormatPublicKey(f.SignKey.Public().(ed25519.PublicKey))
}

// Generate makes new keys in dir, which must not exist yet: a folder of
// keys is never replaced, since the nodes in the field trust it.
func Generate(dir string, now time.Time) (*Fleet, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("%s already holds fleet keys; nodes built with them trust only them, so cairn will not replace them (move the folder away first if you really mean to)", dir)
	}
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ca, err := identity.NewCA("cairn fleet node API CA", now)
	if err != nil {
		return nil, err
	}
	f := &Fleet{Dir: dir, SignKey: sign, CA: ca}
	if f.AdminCert, f.AdminKey, err = ca.Issue(identity.Leaf{CommonName: "cairn-admin"}, now); err != nil {
		return nil, err
	}
	if f.NodeCert, f.NodeKey, err = ca.Issue(identity.Leaf{CommonName: "cairn-node", Server: true}, now); err != nil {
		return nil, err
	}
	return f, f.save()
}

// save writes every file into a new folder beside dir and renames it into
// place, so the folder appears whole or not at all.
func (f *Fleet) save() error {
	der, err := x509.MarshalPKCS8PrivateKey(f.SignKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		FileSignKey:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		FilePublicKey: []byte(f.PublicKey() + "\n"),
		FileCA:        f.CA.CertPEM, FileCAKey: f.CA.KeyPEM,
		FileAdmin: f.AdminCert, FileAdminKey: f.AdminKey,
		FileNode: f.NodeCert, FileNodeKey: f.NodeKey,
	}
	if err := os.MkdirAll(filepath.Dir(f.Dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(f.Dir), "."+filepath.Base(f.Dir)+".*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return err
		}
	}
	return os.Rename(tmp, f.Dir)
}

// Load reads the keys in dir; ErrNoKeys when there are none.
func Load(dir string) (*Fleet, error) {
	var err error
	read := func(name string) []byte {
		data, rerr := os.ReadFile(filepath.Join(dir, name))
		if rerr != nil && err == nil {
			err = rerr
		}
		return data
	}
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: make them once with cairn keys generate", ErrNoKeys, dir)
	}
	f := &Fleet{Dir: dir, AdminCert: read(FileAdmin), AdminKey: read(FileAdminKey), NodeCert: read(FileNode), NodeKey: read(FileNodeKey)}
	signPEM, caPEM, caKey := read(FileSignKey), read(FileCA), read(FileCAKey)
	if err != nil {
		return nil, fmt.Errorf("fleet keys: %w; restore the folder from a backup", err)
	}
	if f.CA, err = identity.ParseCA(caPEM, caKey); err != nil {
		return nil, fmt.Errorf("fleet keys: %s: %w; restore the folder from a backup", filepath.Join(dir, FileCA), err)
	}
	blk, _ := pem.Decode(signPEM)
	var k any
	if blk != nil {
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	sign, ok := k.(ed25519.PrivateKey)
	if blk == nil || err != nil || !ok {
		return nil, fmt.Errorf("fleet keys: %s is not an ed25519 private key in PEM; restore the folder from a backup", filepath.Join(dir, FileSignKey))
	}
	f.SignKey = sign
	return f, nil
}

// AdminTLS is the administrator's side of the node API: its client
// certificate, and trust in the fleet's CA for the node's certificate.
func (f *Fleet) AdminTLS() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(f.AdminCert, f.AdminKey)
	if err != nil {
		return nil, fmt.Errorf("fleet keys: %s: %w", filepath.Join(f.Dir, FileAdmin), err)
	}
	return nodeapi.ClientTLS(f.CA.CertPEM, cert)
}
