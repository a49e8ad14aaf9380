// Package jointoken reads the text form of a cluster join token,
// "cairn1.<CA hash>.<secret>", so that the config check and the agent agree
// on it. It only parses: making tokens and checking a CA against one belong
// to cluster/identity, and this package must stay free of crypto and
// cluster code so that init can link it.
package jointoken

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrToken is wrapped by errors about a join token.
var ErrToken = errors.New("join token")

// Prefix starts every token of this format.
const Prefix = "cairn1."

// hashBytes is the length of the CA hash, a SHA-256.
const hashBytes = 32

var secretRE = regexp.MustCompile(`^[a-z0-9]{16,64}$`)

// Token is a parsed join token: the hex SHA-256 of the server CA's
// certificate (lower case) and the join secret.
type Token struct {
	CAHash, Secret string
}

// Parse reads "cairn1.<CA hash>.<secret>", ignoring surrounding space.
func Parse(s string) (Token, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), Prefix)
	hash, secret, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Token{}, fmt.Errorf("%w: not of the form %s<CA hash>.<secret>; take it from the cluster's token file or leave it empty so the build fills it in", ErrToken, Prefix)
	}
	if b, err := hex.DecodeString(hash); err != nil || len(b) != hashBytes {
		return Token{}, fmt.Errorf("%w: the CA hash is not 64 hex digits", ErrToken)
	}
	if !ValidSecret(secret) {
		return Token{}, fmt.Errorf("%w: the secret is not 16 to 64 of a-z and 0-9", ErrToken)
	}
	return Token{CAHash: strings.ToLower(hash), Secret: secret}, nil
}

// ValidSecret says whether s is a join secret: 16 to 64 of a-z and 0-9.
func ValidSecret(s string) bool { return secretRE.MatchString(s) }
