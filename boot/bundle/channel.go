package bundle

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// MaxChannel bounds a channel file, for the node that fetches it.
const MaxChannel = 64 << 10

// Index is what a channel offers: the current bundle of one board and
// cluster, where it is (relative to the channel's URL), and what it is,
// from its manifest. Nodes poll a channel (update.url) and install the
// bundle when its build is newer than the one they run.
type Index struct {
	Format  int    `json:"format"`
	Board   string `json:"board"`
	Arch    string `json:"arch"`
	Family  string `json:"family"`
	Cluster string `json:"cluster,omitempty"`
	Version string `json:"version"`
	Build   int64  `json:"build"`
	Bundle  string `json:"bundle"` // URL, relative to the channel's
	Size    int64  `json:"size"`   // of the bundle file
}

// channel is a channel file: the index as signed, and the signature.
type channel struct {
	Index     []byte `json:"index"`     // JSON of Index (base64 in the file)
	Signature []byte `json:"signature"` // ed25519 over Index
}

// SignIndex makes a channel file of ix, signed with key.
func SignIndex(ix *Index, key ed25519.PrivateKey) ([]byte, error) {
	ix.Format = Format
	data, err := json.Marshal(ix)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(channel{Index: data, Signature: ed25519.Sign(key, data)}, "", "  ")
	return append(out, '\n'), err
}

// ParseChannel checks a channel file's signature against keys and returns
// its index, with Bundle made absolute against base (the channel's URL).
func ParseChannel(data []byte, keys []ed25519.PublicKey, base *url.URL) (*Index, error) {
	if len(data) > MaxChannel {
		return nil, fmt.Errorf("%w: the channel file is over %d bytes", ErrFormat, MaxChannel)
	}
	var c channel
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: channel file: %w", ErrFormat, err)
	}
	if !signedBy(c.Index, c.Signature, keys) {
		return nil, fmt.Errorf("%w: the channel file's signature matches none of the node's %d update.publicKeys", ErrSignature, len(keys))
	}
	var ix Index
	if err := json.Unmarshal(c.Index, &ix); err != nil {
		return nil, fmt.Errorf("%w: channel index: %w", ErrFormat, err)
	}
	if ix.Format != Format {
		return nil, fmt.Errorf("%w: channel format %d, this version reads %d", ErrFormat, ix.Format, Format)
	}
	ref, err := url.Parse(ix.Bundle)
	if err != nil || ix.Bundle == "" || ix.Size <= 0 || ix.Size > MaxFiles*MaxFileSize {
		return nil, fmt.Errorf("%w: the channel's bundle %q (%d bytes) is no bundle", ErrFormat, ix.Bundle, ix.Size)
	}
	abs := base.ResolveReference(ref)
	if abs.Scheme != "http" && abs.Scheme != "https" || !strings.EqualFold(abs.Scheme, base.Scheme) && base.Scheme == "https" {
		return nil, fmt.Errorf("%w: the channel's bundle is at %s; want http or https (https when the channel is)", ErrFormat, abs.Redacted())
	}
	ix.Bundle = abs.String()
	return &ix, nil
}
