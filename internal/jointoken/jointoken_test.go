package jointoken

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	hash := strings.Repeat("Ab", 32)
	tok, err := Parse(" cairn1." + hash + ".0123456789abcdef\n")
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != strings.ToLower(hash) || tok.Secret != "0123456789abcdef" {
		t.Errorf("parsed %+v", tok)
	}
	for bad, want := range map[string]string{
		"":                                 "not of the form cairn1.<CA hash>.<secret>",
		"K10abc::server:xyz":               "not of the form",
		"cairn1.abcd.0123456789abcdef":     "the CA hash is not 64 hex digits",
		"cairn1." + hash + ".short":        "the secret is not 16 to 64 of a-z and 0-9",
		"cairn1." + hash:                   "not of the form",
		"cairn1." + hash + ".UPPERCASE123": "the secret is not",
	} {
		_, err := Parse(bad)
		if !errors.Is(err, ErrToken) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}
