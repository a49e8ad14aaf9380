package apt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// ErrSignature is wrapped when a release file is unsigned or badly signed.
var ErrSignature = errors.New("bad repository signature")

// Release is a verified InRelease file.
type Release struct {
	Suite, Codename string
	Date            time.Time // zero when the release has none
	ValidUntil      time.Time // zero when the release has none
	Components      []string
	Files           map[string]FileHash // by path relative to dists/SUITE/
}

// FileHash is one entry of the release's SHA256 list.
type FileHash struct {
	SHA256 string
	Size   int64
}

// LoadKeyring reads an OpenPGP keyring, binary or armored.
func LoadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w (set keyring: under repositories: to the archive's key file)", err)
	}
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(data))
}

// VerifyRelease checks an InRelease file's clear signature and parses it.
func VerifyRelease(data []byte, keys openpgp.EntityList) (*Release, error) {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: InRelease is not clear-signed", ErrSignature)
	}
	if _, err := block.VerifySignature(keys, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return parseRelease(block.Plaintext)
}

func parseRelease(text []byte) (*Release, error) {
	r := &Release{Files: map[string]FileHash{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inSHA := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") {
			if inSHA {
				f := strings.Fields(line)
				if len(f) == 3 {
					size, _ := strconv.ParseInt(f[1], 10, 64)
					r.Files[f[2]] = FileHash{SHA256: f[0], Size: size}
				}
			}
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		inSHA = k == "SHA256"
		if err := r.field(k, strings.TrimSpace(v)); err != nil {
			return nil, err
		}
	}
	if len(r.Files) == 0 {
		return nil, fmt.Errorf("%w: the release lists no SHA256 sums", ErrSignature)
	}
	return r, nil
}

// field records one of the release's single-line fields.
func (r *Release) field(k, v string) error {
	var err error
	switch k {
	case "Suite":
		r.Suite = v
	case "Codename":
		r.Codename = v
	case "Components":
		r.Components = strings.Fields(v)
	case "Date":
		r.Date, err = parseDate(k, v)
	case "Valid-Until":
		r.ValidUntil, err = parseDate(k, v)
	}
	return err
}

// parseDate reads a release date, RFC 2822 style as Debian writes it
// ("Sat, 10 Aug 2024 09:31:18 UTC"; a numeric zone also occurs).
func parseDate(k, v string) (time.Time, error) {
	for _, layout := range []string{"Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: the release's %s %q is not a date", ErrStale, k, v)
}
