package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestBundleIsMadeOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "clusters", "lab")
	a, created, err := LoadOrCreate(dir, now)
	if err != nil || !created {
		t.Fatalf("first: created=%v err=%v", created, err)
	}
	b, created, err := LoadOrCreate(dir, now)
	if err != nil || created {
		t.Fatalf("second: created=%v err=%v", created, err)
	}
	if a.Token() != b.Token() || !a.ServiceAccountKey.Equal(b.ServiceAccountKey) || string(a.EncryptionKey) != string(b.EncryptionKey) {
		t.Error("the reloaded bundle differs from the one made")
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 12 {
		t.Errorf("%d files in the bundle", len(entries))
	}
	for _, e := range entries {
		if info, _ := e.Info(); info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), info.Mode().Perm())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".*")); len(left) > 0 {
		t.Errorf("temporary folders left: %v", left)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, FileToken))
	if strings.TrimSpace(string(tok)) != a.Token() {
		t.Errorf("token file %q", tok)
	}
}

// TestOlderBundleGetsKubeletServingCA checks that a bundle made before the
// kubelet-serving CA existed gets one on the next build, written 0600, and
// keeps every other secret as it was.
func TestOlderBundleGetsKubeletServingCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	old, _, err := LoadOrCreate(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := old.Files()
	os.Remove(filepath.Join(dir, FileKubeletServingCA))
	os.Remove(filepath.Join(dir, FileKubeletServingKey))
	if _, err := Load(dir); !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), FileKubeletServingCA) {
		t.Errorf("Load of the older bundle: %v", err)
	}
	b, created, err := LoadOrCreate(dir, now)
	if err != nil || created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if len(b.Added) != 2 || b.KubeletServingCA == nil || b.KubeletServingCA.Key.Equal(old.KubeletServingCA.Key) {
		t.Fatalf("added %v, CA %v", b.Added, b.KubeletServingCA)
	}
	after, _ := b.Files()
	for name, data := range before {
		if name != FileKubeletServingCA && name != FileKubeletServingKey && string(after[name]) != string(data) {
			t.Errorf("%s changed", name)
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, st, err)
		}
	}
	again, _, err := LoadOrCreate(dir, now)
	if err != nil || len(again.Added) != 0 || !again.KubeletServingCA.Cert.Equal(b.KubeletServingCA.Cert) {
		t.Errorf("the next build: added %v, err %v, same CA %v", again.Added, err, again.KubeletServingCA.Cert.Equal(b.KubeletServingCA.Cert))
	}
	// A key left without its certificate (a crash between the two writes)
	// is kept and gets a certificate.
	os.Remove(filepath.Join(dir, FileKubeletServingCA))
	kept, _, err := LoadOrCreate(dir, now)
	if err != nil || !slices.Equal(kept.Added, []string{FileKubeletServingCA}) || !kept.KubeletServingCA.Key.Equal(b.KubeletServingCA.Key) {
		t.Errorf("key without certificate: added %v, err %v", kept.Added, err)
	}
}

// TestSignRequestIgnoresItsNames checks that a certificate request's own
// names and addresses never reach the certificate.
func TestSignRequestIgnoresItsNames(t *testing.T) {
	b, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "lab"), now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{"kubernetes"}, IPAddresses: []net.IP{net.ParseIP("10.43.0.1")},
	}, key)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	out, err := b.KubeletServingCA.SignRequest(csr, Leaf{CommonName: "system:node:edge-7", DNSNames: []string{"edge-7"}, Server: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ParseCert(out)
	if !slices.Equal(cert.DNSNames, []string{"edge-7"}) || len(cert.IPAddresses) != 0 {
		t.Errorf("names %v, addresses %v", cert.DNSNames, cert.IPAddresses)
	}
}

func TestDamagedBundleNamesTheFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lab")
	if _, _, err := LoadOrCreate(dir, now); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, FileClientCAKey))
	_, _, err := LoadOrCreate(dir, now)
	if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), FileClientCAKey) || !strings.Contains(err.Error(), "restore") {
		t.Errorf("missing key: %v", err)
	}
	os.WriteFile(filepath.Join(dir, FileClientCAKey), []byte("junk"), 0o600)
	if _, err := Load(dir); !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), FileClientCA) {
		t.Errorf("junk key: %v", err)
	}
	// A bundle that cannot be written leaves nothing behind.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	if _, _, err := LoadOrCreate(filepath.Join(blocker, "lab"), now); err == nil {
		t.Error("a bundle under a file was made")
	}
}

func TestToken(t *testing.T) {
	a, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "a"), now)
	b, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "b"), now)
	tok, err := ParseToken(a.Token())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Secret != a.Secret || tok.VerifyCA(a.ServerCA.Cert) != nil {
		t.Errorf("round trip: %+v", tok)
	}
	if err := tok.VerifyCA(b.ServerCA.Cert); !errors.Is(err, ErrCAMismatch) {
		t.Errorf("another cluster's CA: %v", err)
	}
	for _, bad := range []string{"", "K10abc::server:xyz", "cairn1.abcd.0123456789abcdef", "cairn1." + strings.Repeat("a", 64) + ".short", "cairn1." + strings.Repeat("a", 64)} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrToken) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestCertificatesWork checks issued certificates with openssl and in a
// real TLS handshake with client authentication.
func TestCertificatesWork(t *testing.T) {
	dir := t.TempDir()
	b, _, err := LoadOrCreate(filepath.Join(dir, "lab"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := LoadOrCreate(filepath.Join(dir, "other"), time.Now())
	srvCert, srvKey, err := b.ServerCA.Issue(Leaf{CommonName: "kube-apiserver", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if path, err := exec.LookPath("openssl"); err == nil {
		os.WriteFile(filepath.Join(dir, "ca.crt"), b.ServerCA.CertPEM, 0o600)
		os.WriteFile(filepath.Join(dir, "srv.crt"), srvCert, 0o600)
		if out, err := exec.Command(path, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), "-purpose", "sslserver", filepath.Join(dir, "srv.crt")).CombinedOutput(); err != nil {
			t.Errorf("openssl verify: %v\n%s", err, out)
		}
	}

	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(b.ClientCA.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Join(r.TLS.PeerCertificates[0].Subject.Organization, ",")))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	defer srv.Close()
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	kc, err := b.AdminKubeconfig("lab", url, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client := clientFrom(t, kc)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("admin kubeconfig against the server: %v", err)
	}
	body := make([]byte, 64)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if string(body[:n]) != "system:masters" {
		t.Errorf("server saw organisation %q", body[:n])
	}
	// Another cluster's admin is refused, and does not trust this server.
	kc2, _ := other.AdminKubeconfig("other", url, time.Now())
	if _, err := clientFrom(t, kc2).Get(url); err == nil {
		t.Error("another cluster's kubeconfig was accepted")
	}
}

func clientFrom(t *testing.T, kubeconfig []byte) *http.Client {
	t.Helper()
	c, err := ParseKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
}

// TestNodeCertificatesAreShortLived checks that a node's certificate lasts
// NodeLifetime and is due for renewal half-way, while one without a
// lifetime (the control plane's, the administrator's) keeps the long one.
func TestNodeCertificatesAreShortLived(t *testing.T) {
	b, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "lab"), now)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	out, err := b.ClientCA.Sign(Leaf{CommonName: "system:node:edge-7", Lifetime: NodeLifetime}, &key.PublicKey, now)
	if err != nil {
		t.Fatal(err)
	}
	node, _ := ParseCert(out)
	if got := node.NotAfter.Sub(now); got != NodeLifetime || NodeLifetime > 31*24*time.Hour {
		t.Errorf("a node certificate lasts %v from now, want NodeLifetime (%v), at most a month", got, NodeLifetime)
	}
	if at, want := RenewAt(node), now.Add(NodeLifetime/2); at.Before(want.Add(-time.Hour)) || at.After(want) {
		t.Errorf("renewal due at %v, want half-way, about %v", at, want)
	}
	out, _ = b.ClientCA.Sign(Leaf{CommonName: "cairn-admin"}, &key.PublicKey, now)
	if admin, _ := ParseCert(out); admin.NotAfter.Before(now.Add(4 * 365 * 24 * time.Hour)) {
		t.Errorf("a certificate without a lifetime ends %v", admin.NotAfter)
	}
}

// TestKubeconfigFileNamesThePEM checks that a node's kubeconfig names its
// certificate file for both the certificate and the key, and embeds none.
func TestKubeconfigFileNamesThePEM(t *testing.T) {
	b, _, _ := LoadOrCreate(filepath.Join(t.TempDir(), "lab"), now)
	kc, err := KubeconfigFile("cairn", "https://10.0.0.1:6443", b.ServerCA.CertPEM, "/run/cairn/agent/tls/kubelet-client.pem")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Users []struct {
			User map[string]string `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(kc, &doc); err != nil || len(doc.Users) != 1 {
		t.Fatalf("%v\n%s", err, kc)
	}
	want := map[string]string{"client-certificate": "/run/cairn/agent/tls/kubelet-client.pem", "client-key": "/run/cairn/agent/tls/kubelet-client.pem"}
	if got := doc.Users[0].User; !maps.Equal(got, want) {
		t.Errorf("user %v, want %v", got, want)
	}
}
