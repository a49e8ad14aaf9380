package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cairn-os/cairn/internal/jointoken"
)

// ErrToken is wrapped by errors about a join token.
var ErrToken = jointoken.ErrToken

// ErrCAMismatch means a server presented a CA other than the one the token
// names: the agent must not join it.
var ErrCAMismatch = errors.New("the server's CA is not the one the join token names")

// Token is the join token: the server CA's SHA-256 and the join secret,
// "cairn1.<64 hex>.<secret>". An agent image carries only this.
func (b *Bundle) Token() string {
	return jointoken.Prefix + CAHash(b.ServerCA.Cert) + "." + b.Secret
}

// CAHash is the hex SHA-256 of a CA certificate's DER bytes.
func CAHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Token is a parsed join token.
type Token struct {
	CAHash, Secret string
}

// ParseToken reads "cairn1.<CA hash>.<secret>" (see package jointoken).
func ParseToken(s string) (Token, error) {
	t, err := jointoken.Parse(s)
	return Token(t), err
}

// VerifyCA checks that the CA a server presents is the token's.
func (t Token) VerifyCA(ca *x509.Certificate) error {
	if got := CAHash(ca); got != t.CAHash {
		return fmt.Errorf("%w: the server's CA hashes to %s…, the token names %s…", ErrCAMismatch, got[:12], t.CAHash[:12])
	}
	return nil
}
