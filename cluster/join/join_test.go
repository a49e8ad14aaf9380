package join

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cairn-os/cairn/cluster/identity"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

var cluster = Cluster{ClusterCIDR: "10.42.0.0/16", ClusterDNS: "10.43.0.10", Domain: "cluster.local"}

// passwords keeps node passwords in memory; down makes Check fail as an
// unreachable API would.
type passwords struct {
	mu   sync.Mutex
	set  map[string]string
	down bool
}

func (p *passwords) Check(_ context.Context, node, password string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errors.New("connection refused")
	}
	if have, ok := p.set[node]; ok && have != password {
		return fmt.Errorf("%w: %s has another", ErrNodePassword, node)
	}
	p.set[node] = password
	return nil
}

const password1, password2 = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"

// logBuffer is a server's log, written while the test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *logBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
func (b *logBuffer) Reset()         { b.mu.Lock(); defer b.mu.Unlock(); b.buf.Reset() }

// serve runs a join endpoint of a new cluster on loopback and returns the
// cluster's bundle, the endpoint's URL, and the server's log.
func serve(t *testing.T) (*identity.Bundle, string, *logBuffer, *passwords) {
	t.Helper()
	var log logBuffer
	pw := &passwords{set: map[string]string{}}
	s := &Server{Cluster: cluster, Passwords: pw, Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&log, nil))}
	api := start(t, s)
	return s.Bundle, api, &log, pw
}

// start gives s a new cluster's bundle (unless it has one), serves it on
// loopback until the test ends and returns its URL. Unless s has its own,
// the requests and the refusals logged are not limited: the tests' clock
// stands still.
func start(t *testing.T, s *Server) string {
	t.Helper()
	pick(&s.Limits.PerSource, rate.Inf)
	pick(&s.Limits.Logs, rate.Inf)
	if s.Bundle == nil {
		b, _, err := identity.LoadOrCreate(filepath.Join(t.TempDir(), "lab"), now)
		if err != nil {
			t.Fatal(err)
		}
		s.Bundle = b
	}
	certPEM, keyPEM, err := s.Bundle.ServerCA.Issue(identity.Leaf{CommonName: "kube-apiserver", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln, cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "https://" + ln.Addr().String() + Path
}

func do(t *testing.T, endpoint string, tok identity.Token, req *Request) (*Response, error) {
	t.Helper()
	return send(context.Background(), endpoint, tok, req)
}

func TestJoinSignsTheAgentsKeys(t *testing.T) {
	b, api, log, _ := serve(t)
	tok, _ := identity.ParseToken(b.Token())
	req, keys, err := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := do(t, api, tok, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Cluster != cluster {
		t.Errorf("cluster settings %+v", resp.Cluster)
	}
	check := func(name string, caPEM, certPEM, keyPEM []byte, usage x509.ExtKeyUsage, cn string) *x509.Certificate {
		t.Helper()
		ca, _ := identity.ParseCert(caPEM)
		cert, err := identity.ParseCert(certPEM)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if cert.Subject.CommonName != cn {
			t.Errorf("%s: CN %q, want %q", name, cert.Subject.CommonName, cn)
		}
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			t.Errorf("%s: the certificate is not for the agent's key: %v", name, err)
		}
		return cert
	}
	kubelet := check("kubelet", resp.ClientCA, resp.Kubelet, keys.Kubelet, x509.ExtKeyUsageClientAuth, "system:node:edge-7")
	if o := kubelet.Subject.Organization; len(o) != 1 || o[0] != "system:nodes" {
		t.Errorf("kubelet organisation %v", o)
	}
	serving := check("serving", b.KubeletServingCA.CertPEM, resp.Serving, keys.Serving, x509.ExtKeyUsageServerAuth, "system:node:edge-7")
	// Only the apiserver trusts the kubelet-serving CA: pods, admins and
	// agents, which trust the server CA, do not trust a kubelet.
	servers := x509.NewCertPool()
	servers.AddCert(b.ServerCA.Cert)
	if _, err := serving.Verify(x509.VerifyOptions{Roots: servers, CurrentTime: now}); err == nil {
		t.Error("the kubelet's serving certificate verifies against the server CA")
	}
	if err := serving.VerifyHostname("192.168.77.2"); err != nil {
		t.Error(err)
	}
	if err := serving.VerifyHostname("edge-7"); err != nil {
		t.Error(err)
	}
	check("kube-proxy", resp.ClientCA, resp.Proxy, keys.Proxy, x509.ExtKeyUsageClientAuth, "system:kube-proxy")
	if !strings.Contains(log.String(), "node joined") || !strings.Contains(log.String(), "node=edge-7") {
		t.Errorf("server log:\n%s", log)
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	b, api, log, _ := serve(t)
	tok, _ := identity.ParseToken(b.Token())
	tok.Secret = "0123456789abcdef0123456789abcdef"
	req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	_, err := do(t, api, tok, req)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "secret is not this cluster's") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(log.String(), "join refused: wrong token secret") {
		t.Errorf("server log:\n%s", log)
	}
}

// TestPreviousTokenIsAcceptedUntilItsDeadline checks that after a
// rotation, agents built with the old token still join until its
// deadline, and are then refused with the fix, while the new token joins.
func TestPreviousTokenIsAcceptedUntilItsDeadline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	old, _, _ := identity.LoadOrCreate(dir, now)
	b, err := identity.RotateSecret(dir, now, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	clk := &clock{t: now}
	s := &Server{Bundle: b, Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Now: clk.now, Log: slog.New(slog.NewTextHandler(&log, nil))}
	api := start(t, s)
	join := func(token string) error {
		tok, _ := identity.ParseToken(token)
		req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
		_, err := do(t, api, tok, req)
		return err
	}
	if err := join(old.Token()); err != nil {
		t.Errorf("the old token before its deadline: %v", err)
	}
	clk.add(7 * 24 * time.Hour)
	if err := join(old.Token()); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "rebuild this agent's image") {
		t.Errorf("the old token at its deadline: %v", err)
	}
	if !strings.Contains(log.String(), "join refused: retired token") {
		t.Errorf("server log:\n%s", log.String())
	}
	if err := join(b.Token()); err != nil {
		t.Errorf("the new token: %v", err)
	}
}

func TestOtherServerCAIsNotTrusted(t *testing.T) {
	b, api, log, _ := serve(t)
	other, _, err := identity.LoadOrCreate(filepath.Join(t.TempDir(), "other"), now)
	if err != nil {
		t.Fatal(err)
	}
	// The right secret, but pinning another cluster's CA: the agent must
	// not send its secret to this server.
	tok, _ := identity.ParseToken(other.Token())
	tok.Secret = b.Secret
	req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	_, err = do(t, api, tok, req)
	if !errors.Is(err, identity.ErrCAMismatch) {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(log.String(), "join refused") || strings.Contains(log.String(), "node joined") {
		t.Errorf("the request reached the server:\n%s", log)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	b, api, _, _ := serve(t)
	tok, _ := identity.ParseToken(b.Token())
	for _, c := range []struct {
		name string
		edit func(*Request)
		want string
	}{
		{"node name", func(r *Request) { r.Node = "Edge_7" }, `"Edge_7" is not a node name`},
		{"address", func(r *Request) { r.IPs = []string{"192.168.77"} }, "is not an IP address"},
		{"no address", func(r *Request) { r.IPs = nil }, "names no node address"},
		{"request", func(r *Request) { r.Serving = []byte("junk") }, "no PEM certificate request"},
		{"password", func(r *Request) { r.Password = "short" }, "no node password of 32 or more characters"},
		// A certificate request may not ask for more than the join grants.
		{"request name", func(r *Request) {
			r.Serving = csrFor(t, &x509.CertificateRequest{DNSNames: []string{"kubernetes"}})
		}, `asks for the name "kubernetes"`},
		{"request address", func(r *Request) {
			r.Serving = csrFor(t, &x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("10.43.0.1")}})
		}, "asks for the address 10.43.0.1"},
		{"request e-mail", func(r *Request) {
			r.Kubelet = csrFor(t, &x509.CertificateRequest{EmailAddresses: []string{"a@b.c"}})
		}, "asks for URIs or e-mail addresses"},
	} {
		req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
		c.edit(req)
		_, err := do(t, api, tok, req)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	// The node's own name and address may be asked for.
	req, _, _ := NewRequest("edge-7", password1, []net.IP{net.IPv4(192, 168, 77, 2)})
	req.Serving = csrFor(t, &x509.CertificateRequest{DNSNames: []string{"edge-7"}, IPAddresses: []net.IP{net.IPv4(192, 168, 77, 2)}})
	if _, err := do(t, api, tok, req); err != nil {
		t.Errorf("a request for the node's own name: %v", err)
	}
}

// TestNodePassword checks that a node name stays with the agent that
// joined under it first: the token alone does not let another machine take
// it over.
func TestNodePassword(t *testing.T) {
	b, api, log, pw := serve(t)
	tok, _ := identity.ParseToken(b.Token())
	join := func(node, password string) error {
		req, _, _ := NewRequest(node, password, []net.IP{net.IPv4(192, 168, 77, 2)})
		_, err := do(t, api, tok, req)
		return err
	}
	if err := join("edge-7", password1); err != nil {
		t.Fatal(err)
	}
	if err := join("edge-7", password1); err != nil {
		t.Errorf("the same node joining again: %v", err)
	}
	if err := join("edge-7", password2); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "node password mismatch") {
		t.Errorf("another machine under the same name: %v", err)
	}
	if !strings.Contains(log.String(), "join refused: node password mismatch") {
		t.Errorf("server log:\n%s", log)
	}
	if err := join("edge-8", password2); err != nil {
		t.Errorf("another name: %v", err)
	}
	pw.mu.Lock()
	pw.down = true
	pw.mu.Unlock()
	if err := join("edge-9", password1); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "cannot check node names and passwords yet") {
		t.Errorf("with the password store down: %v", err)
	}
}

func TestNodePasswordFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent", "node-password")
	a, err := NodePassword(file)
	if err != nil || len(a) < MinPassword {
		t.Fatalf("first: %q, %v", a, err)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the password file: %v %v", st, err)
	}
	if b, err := NodePassword(file); err != nil || b != a {
		t.Errorf("second: %q, %v; want the kept %q", b, err, a)
	}
	// A torn or emptied file is reported and kept, not silently replaced
	// by a password the server would refuse.
	for _, torn := range []string{"", "short\n"} {
		os.WriteFile(file, []byte(torn), 0o600)
		if c, err := NodePassword(file); !errors.Is(err, ErrPasswordDamaged) || c != "" || !strings.Contains(err.Error(), "retire the old node") {
			t.Errorf("after a file holding %q: %q, %v", torn, c, err)
		}
		if data, _ := os.ReadFile(file); string(data) != torn {
			t.Errorf("the damaged file was changed to %q", data)
		}
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://10.0.0.1:6443":     "https://10.0.0.1:6444/v1/join",
		"https://srv.lan":           "https://srv.lan:6444/v1/join",
		"https://[fd00::1]:6443/x/": "https://[fd00::1]:6444/v1/join",
	} {
		if got, err := URL(in); err != nil || got != want {
			t.Errorf("URL(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := URL("http://10.0.0.1:6443"); err == nil {
		t.Error("http URL accepted")
	}
}
