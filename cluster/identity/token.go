package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrToken is wrapped by errors about a join token.
var ErrToken = errors.New("join token")

// ErrCAMismatch means a server presented a CA other than the one the token
// names: the agent must not join it.
var ErrCAMismatch = errors.New("the server's CA is not the one the join token names")

const tokenPrefix = "cairn1."

var secretRE = regexp.MustCompile(`^[a-z0-9]{16,64}$`)

// Token is the join token: the server CA's SHA-256 and the join secret,
// "cairn1.<64 hex>.<secret>". An agent image carries only this.
func (b *Bundle) Token() string {
	return tokenPrefix + CAHash(b.ServerCA.Cert) + "." + b.Secret
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

// ParseToken reads "cairn1.<CA hash>.<secret>".
func ParseToken(s string) (Token, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), tokenPrefix)
	hash, secret, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Token{}, fmt.Errorf("%w: not of the form %s<CA hash>.<secret>; take it from the cluster's token file or leave it empty so the build fills it in", ErrToken, tokenPrefix)
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != sha256.Size {
		return Token{}, fmt.Errorf("%w: the CA hash is not 64 hex digits", ErrToken)
	}
	if !secretRE.MatchString(secret) {
		return Token{}, fmt.Errorf("%w: the secret is not 16 to 64 of a-z and 0-9", ErrToken)
	}
	return Token{CAHash: strings.ToLower(hash), Secret: secret}, nil
}

// VerifyCA checks that the CA a server presents is the token's.
func (t Token) VerifyCA(ca *x509.Certificate) error {
	if got := CAHash(ca); got != t.CAHash {
		return fmt.Errorf("%w: the server's CA hashes to %s…, the token names %s…", ErrCAMismatch, got[:12], t.CAHash[:12])
	}
	return nil
}
