package join

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
)

// reservedByServer is what a server at 192.168.77.1 named srv reserves.
var reservedByServer = Reserved{
	Names: []string{"localhost", "srv", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	IPs:   []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("10.43.0.1"), net.ParseIP("192.168.77.1")},
	Nets:  []netip.Prefix{netip.MustParsePrefix("10.43.0.0/16"), netip.MustParsePrefix("10.42.0.0/16")},
}

// TestReservedNamesAndAddressesAreRefused checks that a token holder
// cannot join as the API, the server or loopback: each such join is
// refused with the reason, logged once, and leaves no node password.
func TestReservedNamesAndAddressesAreRefused(t *testing.T) {
	var log logBuffer
	pw := &passwords{set: map[string]string{}}
	s := &Server{Cluster: cluster, Passwords: pw, Reserved: reservedByServer, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(&log, nil))}
	api := start(t, s)
	tok, _ := identity.ParseToken(s.Bundle.Token())
	for _, c := range []struct {
		node, ip, want string
	}{
		{"kubernetes", "192.168.77.2", `no agent may join as node "kubernetes"`},
		{"srv", "192.168.77.2", `no agent may join as node "srv"`},
		{"localhost", "192.168.77.2", `no agent may join as node "localhost"`},
		{"edge-1", "10.43.0.1", "10.43.0.1 is the server's address"},
		{"edge-2", "127.0.0.1", "127.0.0.1 is a loopback"},
		{"edge-3", "::ffff:127.0.0.1", "is a loopback"},
		{"edge-4", "::1", "::1 is a loopback"},
		{"edge-5", "0.0.0.0", "0.0.0.0 is a loopback, unspecified"},
		{"edge-6", "ff02::1", "multicast"},
		{"edge-7", "224.0.0.251", "multicast"},
		{"edge-8", "192.168.77.1", "192.168.77.1 is the server's address"},
		{"edge-9", "10.43.0.10", "10.43.0.10 is in 10.43.0.0/16"},
		{"edge-10", "10.42.3.1", "10.42.3.1 is in 10.42.0.0/16"},
	} {
		log.Reset()
		req, _, _ := NewRequest(c.node, password1, []net.IP{net.ParseIP(c.ip)})
		_, err := do(t, api, tok, req)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s at %s: %v", c.node, c.ip, err)
		}
		if n := strings.Count(log.String(), "join refused: reserved name or address"); n != 1 {
			t.Errorf("%s at %s: logged %d times:\n%s", c.node, c.ip, n, log.String())
		}
		pw.mu.Lock()
		_, kept := pw.set[c.node]
		pw.mu.Unlock()
		if kept {
			t.Errorf("%s at %s: a refused join kept its node password", c.node, c.ip)
		}
	}
	req, _, _ := NewRequest("edge-7", password1, []net.IP{net.ParseIP("192.168.77.2"), net.ParseIP("fd00::7")})
	if _, err := do(t, api, tok, req); err != nil {
		t.Errorf("an ordinary join: %v", err)
	}
}

// csrFor makes a certificate request from tmpl.
func csrFor(t *testing.T, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}
