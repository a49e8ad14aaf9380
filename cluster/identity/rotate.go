package identity

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/jointoken"
)

// Errors of CheckSecret.
var (
	ErrWrongSecret   = errors.New("the join token's secret is not this cluster's; build the agent with the token from the cluster's secrets folder")
	ErrSecretRetired = errors.New("the join token was replaced by `cairn cluster rotate-token`")
)

// CheckSecret says whether a join may go on with secret at now: it must
// be the join secret, or the previous one before PreviousUntil. It
// compares in constant time.
func (b *Bundle) CheckSecret(secret string, now time.Time) error {
	current := subtle.ConstantTimeCompare([]byte(secret), []byte(b.Secret)) == 1
	previous := b.PreviousSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(b.PreviousSecret)) == 1
	switch {
	case current || previous && now.Before(b.PreviousUntil):
		return nil
	case previous:
		return fmt.Errorf("%w and has not been accepted since %s; rebuild this agent's image, which takes the cluster's current token",
			ErrSecretRetired, b.PreviousUntil.UTC().Format(time.RFC3339))
	default:
		return ErrWrongSecret
	}
}

// RotateSecret gives the bundle in dir a new join secret, and keeps the
// one it replaces as the previous secret until now+grace, in place of any
// earlier previous secret. It writes the previous secret first, then the
// new one and the token, each whole, so that a crash half-way leaves a
// bundle that accepts at least the secret it had.
func RotateSecret(dir string, now time.Time, grace time.Duration) (*Bundle, error) {
	b, err := Load(dir)
	if err != nil {
		return nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return nil, err
	}
	b.PreviousSecret, b.PreviousUntil, b.Secret = b.Secret, now.Add(grace).Truncate(time.Second), secret
	files, err := b.Files()
	if err != nil {
		return nil, err
	}
	for _, name := range []string{FilePreviousSecret, FileSecret, FileToken} {
		if err := atomicfile.Write(filepath.Join(dir, name), files[name], 0o600); err != nil {
			return nil, fmt.Errorf("%w: %w; the join secret may be half rotated: run the rotation again", ErrBundle, err)
		}
	}
	return b, nil
}

// loadPrevious reads the previous join secret, if the bundle has one.
func (b *Bundle) loadPrevious(dir string) error {
	file := filepath.Join(dir, FilePreviousSecret)
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBundle, err)
	}
	secret, until, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	t, err := time.Parse(time.RFC3339, until)
	if err != nil || !jointoken.ValidSecret(secret) {
		return fmt.Errorf("%w: %s is not a join secret and the time it is accepted until; delete it, and agents built before the last rotation are refused", ErrBundle, file)
	}
	b.PreviousSecret, b.PreviousUntil = secret, t
	return nil
}
