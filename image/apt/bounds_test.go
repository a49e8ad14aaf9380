package apt

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/limited"
)

// appendTo adds junk to a file of the repository.
func appendTo(t *testing.T, path string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	f.WriteString("and more")
	must(t, f.Close())
}

// TestDebBoundedByIndexSize: a mirror that sends more than the index's
// Size for a .deb is cut off there, over HTTP and from a folder.
func TestDebBoundedByIndexSize(t *testing.T) {
	repo := newTestRepo(t, map[string]string{"a": ""})
	appendTo(t, filepath.Join(repo.dir, "pool/main/a_1.0_arm64.deb"))
	srv := httptest.NewServer(http.FileServer(http.Dir(repo.dir)))
	defer srv.Close()
	for _, uri := range []string{"file://" + repo.dir, srv.URL} {
		c := repo.client(t)
		c.Sources[0].URI = uri
		ix, err := c.Index(context.Background())
		must(t, err)
		p, _ := ix.Lookup("a")
		if _, err := c.Fetch(context.Background(), p); !errors.Is(err, limited.ErrTooLarge) {
			t.Errorf("%s: Fetch = %v, want ErrTooLarge", uri, err)
		}
	}
}

// TestIndexBoundedByRelease: a Packages file longer than the release says,
// compressed or not, is refused.
func TestIndexBoundedByRelease(t *testing.T) {
	repo := newTestRepo(t, map[string]string{"a": ""})
	appendTo(t, filepath.Join(repo.dir, "dists/test/main/binary-arm64/Packages.gz"))
	if _, err := repo.client(t).Index(context.Background()); !errors.Is(err, limited.ErrTooLarge) {
		t.Errorf("longer Packages.gz: %v, want ErrTooLarge", err)
	}
	// The signed release understates what Packages.gz unpacks to; the
	// sums still match.
	packages := []byte("Package: a\nVersion: 1\nFilename: pool/a.deb\nSize: 1\nSHA256: " + hexsum(nil) + "\n\n")
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(packages)
	w.Close()
	must(t, os.WriteFile(filepath.Join(repo.dir, "dists/test/main/binary-arm64/Packages.gz"), gz.Bytes(), 0o644))
	repo.sign(t, fmt.Sprintf(repo.head+"SHA256:\n %s %d main/binary-arm64/Packages\n %s %d main/binary-arm64/Packages.gz\n",
		hexsum(packages), 10, hexsum(gz.Bytes()), gz.Len()))
	if _, err := repo.client(t).Index(context.Background()); !errors.Is(err, limited.ErrTooLarge) {
		t.Errorf("Packages.gz unpacking past its size: %v, want ErrTooLarge", err)
	}
}

// TestReleaseBounded: an endless InRelease is cut off at the cap, and the
// client does not ask again.
func TestReleaseBounded(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		chunk := bytes.Repeat([]byte("x"), 1<<16)
		for range maxRelease/len(chunk) + 2 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	repo := newTestRepo(t, map[string]string{"a": ""})
	c := repo.client(t)
	c.Sources[0].URI = srv.URL
	_, err := c.Index(context.Background())
	if !errors.Is(err, limited.ErrTooLarge) || requests.Load() != 1 {
		t.Errorf("Index = %v after %d requests, want ErrTooLarge after 1", err, requests.Load())
	}
}

// TestRetryStopsWithContext: the waits between retries end with the
// context.
func TestRetryStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := (&Client{}).get(ctx, srv.URL+"/x", 10)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("get = %v after %v, want the context's end within the first wait", err, time.Since(start))
	}
}
