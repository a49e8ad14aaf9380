package update

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-os/cairn/internal/flaky"
)

// TestResumer: a download that breaks off is resumed where it stopped, and
// the bytes come out whole; a server that cannot resume is named.
func TestResumer(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.New(rand.NewSource(1)).Read(data)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Break off part-way: the first request, and the first resume.
		if requests.Add(1) <= 2 {
			w = flaky.Cut(w, 1<<20)
		}
		http.ServeContent(w, r, "b", time.Unix(0, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	r := &resumer{ctx: context.Background(), url: u, size: int64(len(data)), log: slog.New(slog.DiscardHandler)}
	got, err := io.ReadAll(r)
	r.close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) || requests.Load() != 3 {
		t.Errorf("%d bytes in %d requests, want %d", len(got), requests.Load(), len(data))
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3145728")
		w.Write(data[:1000])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer plain.Close()
	u, _ = url.Parse(plain.URL)
	r = &resumer{ctx: context.Background(), url: u, size: int64(len(data)), log: slog.New(slog.DiscardHandler)}
	r.b.Min, r.b.Max = time.Millisecond, time.Millisecond
	_, err = io.ReadAll(r)
	if err == nil || !strings.Contains(err.Error(), "cannot resume") {
		t.Errorf("a server without ranges: %v", err)
	}
}
