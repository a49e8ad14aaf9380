package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/internal/jointoken"
)

// ErrBundle is wrapped by every error about a bundle on disk.
var ErrBundle = errors.New("cluster secrets")

// Bundle is one cluster's secrets.
type Bundle struct {
	Dir                                 string
	ServerCA, ClientCA, RequestHeaderCA *CA
	// KubeletServingCA signs the kubelets' serving certificates; only the
	// apiserver trusts it, and only for kubelets.
	KubeletServingCA  *CA
	ServiceAccountKey *ecdsa.PrivateKey
	EncryptionKey     []byte // 32 bytes, for Secrets at rest
	Secret            string // the join secret
	// PreviousSecret is the join secret that RotateSecret replaced,
	// accepted until PreviousUntil so that agents built with it still join
	// until they are rebuilt; "" when there is none.
	PreviousSecret string
	PreviousUntil  time.Time
	// Added names the files LoadOrCreate added to a bundle that an older
	// cairn made.
	Added []string
}

// Files of a bundle, each 0600 in a 0700 folder.
const (
	FileServerCA          = "server-ca.crt"
	FileServerCAKey       = "server-ca.key"
	FileClientCA          = "client-ca.crt"
	FileClientCAKey       = "client-ca.key"
	FileRequestHeaderCA   = "request-header-ca.crt"
	FileRequestHeaderKey  = "request-header-ca.key"
	FileKubeletServingCA  = "kubelet-serving-ca.crt"
	FileKubeletServingKey = "kubelet-serving-ca.key"
	FileServiceAccountKey = "service-account.key"
	FileEncryptionKey     = "encryption.key"
	FileSecret            = "join-secret"
	FilePreviousSecret    = "previous-join-secret" // "SECRET UNTIL", UNTIL in RFC 3339; only after a rotation
	FileToken             = "token"                // written for people; the secret is the source
)

// DefaultDir is where the bundle of the named cluster lives:
// $CAIRN_CLUSTERS/NAME, else the user's config folder, cairn/clusters/NAME.
func DefaultDir(name string) (string, error) {
	if d := os.Getenv("CAIRN_CLUSTERS"); d != "" {
		return filepath.Join(d, name), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("%w: no folder for them: %v (set CAIRN_CLUSTERS)", ErrBundle, err)
	}
	return filepath.Join(d, "cairn", "clusters", name), nil
}

// LoadOrCreate reads the bundle in dir, or makes a new one there when dir
// does not exist. A new bundle appears whole or not at all. A bundle that
// an older cairn made gets the CAs it lacks (see Added); the CAs it has
// stay as they are.
func LoadOrCreate(dir string, now time.Time) (b *Bundle, created bool, err error) {
	if _, err := os.Stat(dir); err == nil {
		added, err := addMissing(dir, now)
		if err != nil {
			return nil, false, err
		}
		b, err := Load(dir)
		if b != nil {
			b.Added = added
		}
		return b, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %w", ErrBundle, err)
	}
	b, err = generate(now)
	if err != nil {
		return nil, false, err
	}
	if err := b.save(dir); err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// caFile is one CA of a bundle: its common name and its files.
type caFile struct {
	dst       **CA
	cn        string
	cert, key string
}

func (b *Bundle) cas() []caFile {
	return []caFile{
		{&b.ServerCA, "cairn-server-ca", FileServerCA, FileServerCAKey},
		{&b.ClientCA, "cairn-client-ca", FileClientCA, FileClientCAKey},
		{&b.RequestHeaderCA, "cairn-request-header-ca", FileRequestHeaderCA, FileRequestHeaderKey},
		{&b.KubeletServingCA, "cairn-kubelet-serving-ca", FileKubeletServingCA, FileKubeletServingKey},
	}
}

func generate(now time.Time) (*Bundle, error) {
	b := &Bundle{}
	var err error
	for _, ca := range b.cas() {
		if *ca.dst, err = NewCA(ca.cn, now); err != nil {
			return nil, err
		}
	}
	if b.ServiceAccountKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	b.EncryptionKey = make([]byte, 32)
	if _, err := rand.Read(b.EncryptionKey); err != nil {
		return nil, err
	}
	if b.Secret, err = newSecret(); err != nil {
		return nil, err
	}
	return b, nil
}

// newSecret makes a random join secret.
func newSecret() (string, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	return hex.EncodeToString(secret), nil
}

// Files returns the bundle's files by name.
func (b *Bundle) Files() (map[string][]byte, error) {
	sa, err := keyPEM(b.ServiceAccountKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		FileServiceAccountKey: sa,
		FileEncryptionKey:     []byte(base64.StdEncoding.EncodeToString(b.EncryptionKey) + "\n"),
		FileSecret:            []byte(b.Secret + "\n"),
		FileToken:             []byte(b.Token() + "\n"),
	}
	for _, ca := range b.cas() {
		files[ca.cert], files[ca.key] = (*ca.dst).CertPEM, (*ca.dst).KeyPEM
	}
	if b.PreviousSecret != "" {
		files[FilePreviousSecret] = []byte(b.PreviousSecret + " " + b.PreviousUntil.UTC().Format(time.RFC3339) + "\n")
	}
	return files, nil
}

func (b *Bundle) save(dir string) error {
	files, err := b.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrBundle, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBundle, err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return fmt.Errorf("%w: %w", ErrBundle, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("%w: %w", ErrBundle, err)
	}
	b.Dir = dir
	return nil
}

// Load reads a bundle; a missing or damaged file is named with the fix.
func Load(dir string) (*Bundle, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: %w; restore the folder from a backup (removing it starts a new cluster whose images the old nodes will not trust)", ErrBundle, err)
		}
		return data, nil
	}
	b := &Bundle{Dir: dir}
	for _, ca := range b.cas() {
		c, err := read(ca.cert)
		if err != nil {
			return nil, err
		}
		k, err := read(ca.key)
		if err != nil {
			return nil, err
		}
		if *ca.dst, err = ParseCA(c, k); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBundle, filepath.Join(dir, ca.cert), err)
		}
	}
	sa, err := read(FileServiceAccountKey)
	if err != nil {
		return nil, err
	}
	if b.ServiceAccountKey, err = parseKey(sa); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBundle, filepath.Join(dir, FileServiceAccountKey), err)
	}
	enc, err := read(FileEncryptionKey)
	if err != nil {
		return nil, err
	}
	if b.EncryptionKey, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(enc))); err != nil || len(b.EncryptionKey) != 32 {
		return nil, fmt.Errorf("%w: %s is not 32 bytes in base64", ErrBundle, filepath.Join(dir, FileEncryptionKey))
	}
	secret, err := read(FileSecret)
	if err != nil {
		return nil, err
	}
	b.Secret = strings.TrimSpace(string(secret))
	if !jointoken.ValidSecret(b.Secret) {
		return nil, fmt.Errorf("%w: %s is not a join secret (16 to 64 of a-z, 0-9)", ErrBundle, filepath.Join(dir, FileSecret))
	}
	if err := b.loadPrevious(dir); err != nil {
		return nil, err
	}
	return b, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKey(data []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ECDSA key", k)
	}
	return ec, nil
}

// PublicKeyPEM encodes a public key as PKIX PEM.
func PublicKeyPEM(k *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
