package apt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/limited"
	"github.com/cairn-os/cairn/internal/progress"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/ulikunitz/xz"
)

// Sentinel errors a caller acts on.
var (
	ErrNotFound = errors.New("package not found in any repository")
	ErrChecksum = errors.New("checksum mismatch")
	ErrOffline  = errors.New("not in the offline cache")
)

// Client reads repositories for one architecture.
type Client struct {
	Sources []Source
	Arch    string
	Cache   string // cache folder; DefaultCache() normally
	Offline bool   // use only what the cache holds
	Log     *slog.Logger
	Out     io.Writer // progress output; nil for none
	HTTP    *http.Client
	Now     func() time.Time // the clock releases' Valid-Until is read by; nil for time.Now
}

// DefaultCache is the user's cache folder for cairn.
func DefaultCache() string {
	if d := os.Getenv("CAIRN_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "cairn")
}

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Index loads and verifies every source's index for the client's
// architecture.
func (c *Client) Index(ctx context.Context) (*Index, error) {
	ix := newIndex()
	for _, s := range c.Sources {
		rel, err := c.release(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, comp := range s.Components {
			name := comp + "/binary-" + c.Arch + "/Packages"
			want, ok := rel.Files[name]
			if !ok {
				c.log().Debug("component not in release", "source", s.URI, "suite", s.Suite, "component", comp)
				continue
			}
			data, err := c.packages(ctx, s, name, rel, want)
			if err != nil {
				return nil, err
			}
			if err := parsePackages(data, s.URI, ix); err != nil {
				return nil, fmt.Errorf("%s %s %s: %w", s.URI, s.Suite, name, err)
			}
		}
	}
	ix.sort()
	return ix, nil
}

// release fetches (or, offline, reads the cached) InRelease and verifies it.
func (c *Client) release(ctx context.Context, s Source) (*Release, error) {
	keys, err := LoadKeyring(s.Keyring)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.URI, s.Suite, err)
	}
	u := s.URI + "/dists/" + s.Suite + "/InRelease"
	cached := filepath.Join(c.Cache, "releases", escape(u))
	var data []byte
	if c.Offline {
		data, err = os.ReadFile(cached)
		if err != nil {
			return nil, fmt.Errorf("%w: %s (run one build online first, or use --debs)", ErrOffline, u)
		}
	} else {
		data, err = c.get(ctx, u, maxRelease)
		if err != nil {
			return nil, err
		}
	}
	rel, err := VerifyRelease(data, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (check that keyring %s signs this archive)", u, err, s.Keyring)
	}
	if err := c.fresh(u, s.Suite, rel); err != nil {
		return nil, err
	}
	if !c.Offline {
		if err := writeAtomic(cached, data); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// escape makes a URL one file name of the cache.
func escape(u string) string {
	return url.PathEscape(strings.TrimPrefix(u, "file://"))
}

// packages returns the uncompressed Packages file whose sha256 the release
// gives, from the cache or by fetching a compressed variant.
func (c *Client) packages(ctx context.Context, s Source, name string, rel *Release, want FileHash) ([]byte, error) {
	cached := filepath.Join(c.Cache, "indexes", want.SHA256)
	if data, err := os.ReadFile(cached); err == nil && sum(data) == want.SHA256 {
		return data, nil
	}
	if c.Offline {
		return nil, fmt.Errorf("%w: %s %s %s", ErrOffline, s.URI, s.Suite, name)
	}
	base := s.URI + "/dists/" + s.Suite + "/"
	for _, ext := range []string{".xz", ".gz", ""} {
		comp, ok := rel.Files[name+ext]
		if !ok {
			continue
		}
		raw, err := c.get(ctx, base+name+ext, comp.Size)
		if err != nil {
			return nil, err
		}
		if sum(raw) != comp.SHA256 {
			return nil, fmt.Errorf("%w: %s%s%s", ErrChecksum, base, name, ext)
		}
		data, err := decompress(raw, ext, want.Size)
		if err != nil {
			return nil, fmt.Errorf("%s%s%s: %w", base, name, ext, err)
		}
		if sum(data) != want.SHA256 {
			return nil, fmt.Errorf("%w: %s%s (uncompressed)", ErrChecksum, base, name)
		}
		return data, writeAtomic(cached, data)
	}
	return nil, fmt.Errorf("%s: the release lists %s but no file for it", base, name)
}

// decompress unpacks an index, to at most the size the release gives.
func decompress(raw []byte, ext string, size int64) ([]byte, error) {
	var r io.Reader = bytes.NewReader(raw)
	var err error
	switch ext {
	case ".xz":
		r, err = xz.NewReader(r)
	case ".gz":
		r, err = gzip.NewReader(r)
	}
	if err != nil {
		return nil, err
	}
	data, err := limited.ReadAll(r, size)
	if err != nil {
		return nil, fmt.Errorf("its contents are %w for the size the release gives; the archive is broken or hostile, so use another", err)
	}
	return data, nil
}

// Fetch returns the path of the package's .deb in the cache, downloading and
// checking it when it is not there yet.
func (c *Client) Fetch(ctx context.Context, p *Package) (string, error) {
	if p.Local != "" {
		return p.Local, nil
	}
	path := filepath.Join(c.Cache, "debs", p.SHA256+".deb")
	if got, err := FileSum(path); err == nil && got == p.SHA256 {
		return path, nil
	}
	if c.Offline {
		return "", fmt.Errorf("%w: %s (run one build online first, or use --debs)", ErrOffline, p)
	}
	if p.Size <= 0 {
		return "", fmt.Errorf("%w: the index from %s gives no size for %s, so it cannot be fetched safely; the mirror's index is broken, so use another", ErrChecksum, p.Base, p)
	}
	data, err := c.get(ctx, p.Base+"/"+p.Filename, p.Size)
	if err != nil {
		return "", err
	}
	if sum(data) != p.SHA256 {
		return "", fmt.Errorf("%w: %s from %s/%s: the archive may be changing under us; try again", ErrChecksum, p, p.Base, p.Filename)
	}
	return path, writeAtomic(path, data)
}

// Bounds on what the client reads and waits for. A body whose size the
// signed metadata gives is read up to that size and no further.
const (
	maxRelease  = 8 << 20 // an InRelease file; Debian's and Ubuntu's are under 300 KiB
	httpTimeout = 10 * time.Minute
)

var defaultHTTP = &http.Client{Timeout: httpTimeout}

// get reads u whole, but never more than limit bytes: a longer body is
// refused, not retried. Other failures are retried twice.
func (c *Client) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	if rest, ok := strings.CutPrefix(u, "file://"); ok {
		return readFile(rest, u, limit)
	}
	var lastErr error
	b := retry.Backoff{Min: time.Second, Max: 2 * time.Second}
	for attempt := range 3 {
		if attempt > 0 {
			if err := b.Wait(ctx); err != nil {
				return nil, err
			}
		}
		data, again, err := c.try(ctx, u, limit)
		if err == nil || !again {
			return data, err
		}
		lastErr = err
	}
	return nil, lastErr
}

// try is one request of get.
func (c *Client) try(ctx context.Context, u string, limit int64) (data []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode != http.StatusNotFound, fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	var body io.Reader = resp.Body
	var bar *progress.Bar
	if c.Out != nil && resp.ContentLength > 1<<20 {
		bar = progress.New(c.Out, "fetch "+filepath.Base(u), resp.ContentLength)
		body = bar.Reader(body)
	}
	if data, err = limited.ReadAll(body, limit); err != nil {
		return nil, !errors.Is(err, limited.ErrTooLarge), bodyError(u, err)
	}
	if bar != nil {
		bar.Done()
	}
	return data, false, nil
}

func readFile(path, u string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u, err)
	}
	defer f.Close()
	data, err := limited.ReadAll(f, limit)
	if err != nil {
		return nil, bodyError(u, err)
	}
	return data, nil
}

// bodyError explains a body that could not be read, or was too long.
func bodyError(u string, err error) error {
	if errors.Is(err, limited.ErrTooLarge) {
		return fmt.Errorf("fetch %s: the response is %w, longer than the signed index gives or the cap allows; the mirror is broken or hostile, so use another", u, err)
	}
	return fmt.Errorf("fetch %s: %w", u, err)
}

// FileSum is the hex sha256 of a file's contents, the key the cache keeps
// packages and their extractions by.
func FileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeAtomic writes data to path whole or not at all, so an interrupted
// write never leaves a half file in the cache.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}
