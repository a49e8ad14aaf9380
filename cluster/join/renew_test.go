package join

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/retry"
)

// agentOf is an agent of the cluster served at api, edge-7 at
// 192.168.77.2, keeping its certificates in a new folder; joins counts
// its joins and the times on clk when they happened.
type agentOf struct {
	creds  Creds
	bundle *identity.Bundle
	tok    identity.Token
	api    string
	clk    *clock
	joins  []time.Time
	fail   int // joins to fail before one goes through
}

func newAgent(t *testing.T, s *Server, clk *clock) *agentOf {
	t.Helper()
	s.Now = clk.now
	api := start(t, s)
	tok, _ := identity.ParseToken(s.Bundle.Token())
	return &agentOf{creds: Creds{Dir: filepath.Join(t.TempDir(), "tls"), Server: "https://192.168.77.1:6443"}, bundle: s.Bundle, tok: tok, api: api, clk: clk}
}

func (a *agentOf) join(ctx context.Context) (*Response, *Keys, error) {
	a.joins = append(a.joins, a.clk.now())
	if a.fail > 0 {
		a.fail--
		return nil, nil, errors.New("connection refused")
	}
	req, keys, err := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	if err != nil {
		return nil, nil, err
	}
	resp, err := send(ctx, a.api, a.tok, req)
	return resp, keys, err
}

// renewal renews a's certificates on a's clock; each of its sleeps moves
// the clock on, and it stops once a has joined `joins` times.
func (a *agentOf) renewal(t *testing.T, joins int) (*Renewal, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &Renewal{
		Creds: a.creds, Join: a.join, Now: a.clk.now, Log: slog.New(slog.DiscardHandler),
		Backoff: Backoff, // not slept: the retries' waits are real
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d > CheckEvery {
				t.Errorf("a sleep of %v, longer than CheckEvery", d)
			}
			if len(a.joins) >= joins {
				cancel()
				return ctx.Err()
			}
			a.clk.add(d)
			return nil
		},
	}, ctx
}

// TestRenewalJoinsAgainHalfWay checks that a running agent joins again
// once its certificates are half-way through their life, not before, and
// that the new ones replace the old in its files.
func TestRenewalJoinsAgainHalfWay(t *testing.T) {
	a := newAgent(t, &Server{Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Log: slog.New(slog.DiscardHandler)}, &clock{t: now})
	resp, keys, err := a.join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.creds.Write(resp, keys); err != nil {
		t.Fatal(err)
	}
	first, _ := readCert(a.creds.kubelet())
	if life := first.NotAfter.Sub(now); life != identity.NodeLifetime {
		t.Fatalf("the join signed a certificate for %v, want %v", life, identity.NodeLifetime)
	}
	r, ctx := a.renewal(t, 2)
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	due := identity.RenewAt(first)
	if len(a.joins) != 2 || a.joins[1].Before(due) || a.joins[1].After(due.Add(CheckEvery)) {
		t.Fatalf("joins at %v; want the second within %v after %v", a.joins, CheckEvery, due)
	}
	renewed, _ := readCert(a.creds.kubelet())
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 || !renewed.NotAfter.Equal(a.joins[1].Add(identity.NodeLifetime)) {
		t.Errorf("after the renewal the kubelet's certificate ends %v, want %v", renewed.NotAfter, a.joins[1].Add(identity.NodeLifetime))
	}
	for _, f := range []string{a.creds.kubelet(), a.creds.Serving(), a.creds.proxy()} {
		if _, err := tls.LoadX509KeyPair(f, f); err != nil {
			t.Errorf("%s is not a certificate with its key: %v", filepath.Base(f), err)
		}
	}
}

// TestExpiredOrUnreadableCertificatesAreRenewedAtOnce checks that an
// agent whose certificates expired (its server was away for a month), or
// cannot be read, joins again before it sleeps, through failed joins.
func TestExpiredOrUnreadableCertificatesAreRenewedAtOnce(t *testing.T) {
	clk := &clock{t: now}
	a := newAgent(t, &Server{Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Log: slog.New(slog.DiscardHandler)}, clk)
	resp, keys, _ := a.join(context.Background())
	a.creds.Write(resp, keys)
	clk.add(identity.NodeLifetime + time.Hour)
	a.joins, a.fail = nil, 2
	r, ctx := a.renewal(t, 3)
	r.Backoff.Min, r.Backoff.Max = time.Millisecond, time.Millisecond
	r.Run(ctx)
	if len(a.joins) != 3 || !a.joins[2].Equal(clk.now()) {
		t.Errorf("joins at %v; want 3 at once, at %v", a.joins, clk.now())
	}
	if cert, err := readCert(a.creds.proxy()); err != nil || !cert.NotAfter.After(clk.now()) {
		t.Errorf("kube-proxy's certificate after the renewal: %v", err)
	}

	os.WriteFile(a.creds.Serving(), []byte("torn"), 0o600)
	a.joins = nil
	r, ctx = a.renewal(t, 1)
	r.Run(ctx)
	if len(a.joins) != 1 || !a.joins[0].Equal(clk.now()) {
		t.Errorf("with a damaged serving certificate: joins at %v, want one at once", a.joins)
	}
}

// TestCertificatesDueAtOnceAreNotAHotLoop checks that when the server's
// clock is a month behind the agent's, so that each new certificate is
// due already, the agent backs off between joins and says which clocks to
// set, rather than join again at once, and again.
func TestCertificatesDueAtOnceAreNotAHotLoop(t *testing.T) {
	clk := &clock{t: now}
	a := newAgent(t, &Server{Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Log: slog.New(slog.DiscardHandler)}, clk)
	var log logBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &Renewal{Creds: a.creds, Now: func() time.Time { return clk.now().Add(identity.NodeLifetime) }, Log: slog.New(slog.NewTextHandler(&log, nil)),
		Backoff: retry.Backoff{Min: time.Millisecond, Max: time.Millisecond},
		Join: func(ctx context.Context) (*Response, *Keys, error) {
			if len(a.joins) == 3 {
				cancel()
			}
			return a.join(ctx)
		}}
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if n := strings.Count(log.String(), "due for renewal already"); n != 3 {
		t.Errorf("%d failures say the certificates are due at once:\n%s", n, log.String())
	}
}
