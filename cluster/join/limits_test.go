package join

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cairn-os/cairn/cluster/identity"
)

// clock stands still until the test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// records is a slog handler that keeps each line's message and its
// "unlogged" count.
type records struct {
	mu       sync.Mutex
	msgs     []string
	unlogged []int64
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var n int64
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "unlogged" {
			n = a.Value.Int64()
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs, r.unlogged = append(r.msgs, rec.Message), append(r.unlogged, n)
	return nil
}

// limited serves a new cluster with limits l, its clock and its log.
func limited(t *testing.T, l Limits) (s *Server, api string, clk *clock, log *records) {
	clk, log = &clock{t: now}, &records{}
	s = &Server{Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Limits: l, Now: clk.now, Log: slog.New(log)}
	return s, start(t, s), clk, log
}

// post sends a join with a wrong secret from the loopback address from,
// without checking the server (these tests are not about the pinning).
func post(t *testing.T, api, from string, header http.Header) *http.Response {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	req, _ := http.NewRequest("POST", api, strings.NewReader("{}"))
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	_, api, _, _ := limited(t, Limits{IdleTimeout: 50 * time.Millisecond})
	u, _ := url.Parse(api)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", Path, u.Host)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server did not keep the connection alive")
	}
	// The deadline only bounds a failing test.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("the idle connection was not closed by the server: %v", err)
	}
}

func TestConnectionsBeyondTheLimitWait(t *testing.T) {
	_, api, _, _ := limited(t, Limits{Conns: 1})
	host := strings.TrimSuffix(strings.TrimPrefix(api, "https://"), Path)
	tc := &tls.Config{InsecureSkipVerify: true}
	first, err := tls.Dial("tcp", host, tc) // served: its handshake is done
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	second := tls.Client(raw, tc)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := second.HandshakeContext(ctx); err == nil {
		t.Error("a second connection was served while the first held the only one")
	}
	second.Close()
	first.Close()
	// With the first gone, the next connection is served.
	resp := post(t, api, "127.0.0.1", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the first closed: %s", resp.Status)
	}
}

func TestSourcesOverTheirRateWait(t *testing.T) {
	_, api, clk, _ := limited(t, Limits{PerSource: rate.Every(time.Minute), PerSourceBurst: 2})
	for i := range 2 {
		if resp := post(t, api, "127.0.0.1", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d within the burst: %s", i, resp.Status)
		}
	}
	resp := post(t, api, "127.0.0.1", nil)
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 {
		t.Errorf("over the rate: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp := post(t, api, "127.0.0.2", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another address: %s", resp.Status)
	}
	clk.add(time.Minute)
	if resp := post(t, api, "127.0.0.1", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("once the bucket has a token again: %s", resp.Status)
	}
}

func TestRefusalLogsAreLimited(t *testing.T) {
	_, api, clk, log := limited(t, Limits{Logs: rate.Every(time.Hour), LogBurst: 3})
	for range 10 {
		if resp := post(t, api, "127.0.0.1", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("every refusal is answered: %s", resp.Status)
		}
	}
	clk.add(time.Hour)
	post(t, api, "127.0.0.1", nil)
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.msgs) != 4 || log.msgs[3] != "join refused: wrong token secret" || log.unlogged[3] != 7 {
		t.Errorf("logged %q, unlogged %v; want 3 lines, then one that counts the 7 left out", log.msgs, log.unlogged)
	}
}

func TestOversizedRequestsAreRefused(t *testing.T) {
	s, api, _, _ := limited(t, Limits{MaxBody: 512, MaxHeaderBytes: 1 << 10})
	huge := http.Header{"X-Pad": {strings.Repeat("a", 16<<10)}}
	if resp := post(t, api, "127.0.0.1", huge); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 16 KiB header: %s", resp.Status)
	}
	tok, _ := identity.ParseToken(s.Bundle.Token())
	req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	if _, err := do(t, api, tok, req); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "413") || !strings.Contains(err.Error(), "over 512 bytes") {
		t.Errorf("a join of over 512 bytes: %v", err)
	}
}
