package server

import (
	"crypto/x509"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"gopkg.in/yaml.v3"
)

// TestStateFolder writes the PKI and policy files and checks that every
// file a component flag names exists, that the serving certificate covers
// the node's names (openssl verify), and that the policy files are YAML.
func TestStateFolder(t *testing.T) {
	b, _, err := identity.LoadOrCreate(filepath.Join(t.TempDir(), "lab"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := Paths{Dir: t.TempDir()}
	ip := net.ParseIP("10.0.2.15")
	if err := writePKI(p, b, "srv", []net.IP{ip}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := writePolicy(p, b.EncryptionKey); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.components("unix:///run/cairn/kine.sock", ip, nil) {
		for _, a := range c.Args {
			_, v, _ := strings.Cut(a, "=")
			if strings.HasPrefix(v, p.Dir) {
				if st, err := os.Stat(v); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s %s: %v", c.Name, a, err)
				}
			}
		}
	}
	cert, err := identity.ParseCert(must(os.ReadFile(p.tls("apiserver.crt"))))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.ServerCA.Cert)
	for _, name := range []string{"srv", "kubernetes.default.svc.cluster.local", "10.0.2.15", "10.43.0.1", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	// The kubelet's serving certificate is from the kubelet-serving CA,
	// which the apiserver checks, and is not trusted as a server's. Like
	// the node's client certificates, it lasts as long as an agent's, in a
	// file with its key.
	node := p.NodeCreds()
	kubelet, err := identity.ParseCert(must(os.ReadFile(node.Serving())))
	if err != nil {
		t.Fatal(err)
	}
	kubelets := x509.NewCertPool()
	kubelets.AddCert(b.KubeletServingCA.Cert)
	for _, name := range []string{"10.0.2.15", "127.0.0.1", "srv", "localhost"} {
		if _, err := kubelet.Verify(x509.VerifyOptions{Roots: kubelets, DNSName: name}); err != nil {
			t.Errorf("kubelet serving certificate for %s: %v", name, err)
		}
	}
	if _, err := kubelet.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("the kubelet serving certificate verifies against the server CA")
	}
	if _, expires, err := node.RenewAt(); err != nil || expires.After(time.Now().Add(identity.NodeLifetime)) {
		t.Errorf("the server's node certificates expire %v (%v), after NodeLifetime", expires, err)
	}
	for _, kc := range []string{node.KubeletKubeconfig(), node.ProxyKubeconfig()} {
		if st, err := os.Stat(kc); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", kc, err)
		}
	}
	if ca := string(must(os.ReadFile(p.tls(identity.FileKubeletServingCA)))); ca != string(b.KubeletServingCA.CertPEM) {
		t.Errorf("--kubelet-certificate-authority file: %s", ca)
	}
	// No agent may join under a name or address of the apiserver's.
	res := reserved("srv", []net.IP{ip})
	for _, n := range cert.DNSNames {
		if !slices.Contains(res.Names, n) {
			t.Errorf("the apiserver's name %s is not reserved", n)
		}
	}
	for _, a := range cert.IPAddresses {
		if !slices.ContainsFunc(res.IPs, a.Equal) {
			t.Errorf("the apiserver's address %s is not reserved", a)
		}
	}
	if out, err := exec.Command("openssl", "verify", "-CAfile", p.tls(identity.FileServerCA), "-purpose", "sslserver", p.tls("apiserver.crt")).CombinedOutput(); err != nil {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
	for _, f := range []string{p.encryptionConfig(), p.admissionConfig(), p.auditPolicy(), p.AdminKubeconfig()} {
		var doc map[string]any
		if err := yaml.Unmarshal(must(os.ReadFile(f)), &doc); err != nil || doc["apiVersion"] == nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if enc := string(must(os.ReadFile(p.encryptionConfig()))); !strings.Contains(enc, "secretbox") {
		t.Errorf("encryption config: %s", enc)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The apiserver advertises cluster.nodeIP when it is set, even before an
// interface has it, and otherwise the host's first address (a server
// without a network: section, on one NIC, as most are).
func TestAdvertiseAddress(t *testing.T) {
	lan, dhcp := net.ParseIP("192.168.77.1"), net.ParseIP("10.0.2.15")
	for _, c := range []struct {
		nodeIP  string
		ips     []net.IP
		want    string
		wantIPs int
	}{
		{"", []net.IP{dhcp, lan}, "10.0.2.15", 2},
		{"192.168.77.1", []net.IP{dhcp, lan}, "192.168.77.1", 2},
		{"192.168.77.9", []net.IP{dhcp, lan}, "192.168.77.9", 3},
		{"", nil, "127.0.0.1", 0},
	} {
		var nodeIP netip.Addr
		if c.nodeIP != "" {
			nodeIP = netip.MustParseAddr(c.nodeIP)
		}
		got, ips := advertiseAddress(nodeIP, c.ips)
		if got.String() != c.want || len(ips) != c.wantIPs || (len(ips) > 0 && !slices.ContainsFunc(ips, got.Equal)) {
			t.Errorf("nodeIP %q, host %v: %s with %v; want %s with %d addresses", c.nodeIP, c.ips, got, ips, c.want, c.wantIPs)
		}
	}
}
