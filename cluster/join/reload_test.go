package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/transport"

	"github.com/cairn-os/cairn/cluster/identity"
)

// TestClientGoTakesUpRenewedCertificates checks the claim the renewal
// rests on, with the client-go the kubelet and kube-proxy are built from:
// a client made from a node's kubeconfig presents the certificate in the
// file the kubeconfig names, and once the file is replaced, the new one,
// with no new client.
func TestClientGoTakesUpRenewedCertificates(t *testing.T) {
	a := newAgent(t, &Server{Cluster: cluster, Passwords: &passwords{set: map[string]string{}}, Log: slog.New(slog.DiscardHandler)}, &clock{t: time.Now()})
	api := apiServer(t, a.bundle)
	a.creds.Server = api
	resp, keys, err := a.join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.creds.Write(resp, keys); err != nil {
		t.Fatal(err)
	}
	// client-go looks for a changed file every 5 min on the connections it
	// keeps open; a test cannot wait that long.
	defer func(d time.Duration) { transport.CertCallbackRefreshDuration = d }(transport.CertCallbackRefreshDuration)
	transport.CertCallbackRefreshDuration = 100 * time.Millisecond
	cfg, err := clientcmd.BuildConfigFromFlags("", a.creds.KubeletKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := presented(t, client, api), serial(resp.Kubelet); got != want {
		t.Fatalf("the client presented %s, not the kubelet's certificate %s", got, want)
	}
	resp, keys, _ = a.join(context.Background())
	a.creds.Write(resp, keys)
	want := serial(resp.Kubelet)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := presented(t, client, api)
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the renewal the client presents %s, not the new %s", got, want)
		}
	}
}

// apiServer stands in for the apiserver of b's cluster on loopback: it
// answers with the serial number of the client certificate it was shown.
func apiServer(t *testing.T, b *identity.Bundle) string {
	t.Helper()
	certPEM, keyPEM, err := b.ServerCA.Issue(identity.Leaf{CommonName: "kube-apiserver", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	clients := x509.NewCertPool()
	clients.AddCert(b.ClientCA.Cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].SerialNumber.String())
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func presented(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func serial(certPEM []byte) string {
	c, _ := identity.ParseCert(certPEM)
	return c.SerialNumber.String()
}
