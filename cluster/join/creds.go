package join

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

// Creds are the files in which a node keeps what a join gave it. Each
// certificate is one PEM file with its key after it, replaced whole, and
// the kubeconfigs name those files rather than embed them: client-go (the
// kubelet, kube-proxy, the agent's own clients) and the kubelet's serving
// side read such files again when they change, so renewed certificates
// are taken up without a restart, and never with another one's key.
type Creds struct {
	Dir    string // made 0700; every file in it is 0600
	Server string // the API's URL, for the kubeconfigs
}

func (c Creds) file(name string) string { return filepath.Join(c.Dir, name) }

// ClientCA is the CA whose client certificates the kubelet accepts.
func (c Creds) ClientCA() string { return c.file("client-ca.crt") }

// Serving is the kubelet's serving certificate and key, for both of its
// tlsCertFile and tlsPrivateKeyFile.
func (c Creds) Serving() string { return c.file("kubelet-serving.pem") }

// KubeletKubeconfig is the kubelet's kubeconfig.
func (c Creds) KubeletKubeconfig() string { return c.file("kubelet.kubeconfig") }

// ProxyKubeconfig is kube-proxy's kubeconfig.
func (c Creds) ProxyKubeconfig() string { return c.file("kube-proxy.kubeconfig") }

func (c Creds) kubelet() string { return c.file("kubelet-client.pem") }
func (c Creds) proxy() string   { return c.file("kube-proxy.pem") }

// Write keeps the certificates of resp, for keys. The certificates come
// first, so a kubeconfig never names a file that is not there.
func (c Creds) Write(resp *Response, keys *Keys) error {
	kubeletKC, err := identity.KubeconfigFile("cairn", c.Server, resp.ServerCA, c.kubelet())
	if err != nil {
		return err
	}
	proxyKC, err := identity.KubeconfigFile("cairn", c.Server, resp.ServerCA, c.proxy())
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{c.kubelet(), pair(resp.Kubelet, keys.Kubelet)},
		{c.Serving(), pair(resp.Serving, keys.Serving)},
		{c.proxy(), pair(resp.Proxy, keys.Proxy)},
		{c.ClientCA(), resp.ClientCA},
		{c.KubeletKubeconfig(), kubeletKC},
		{c.ProxyKubeconfig(), proxyKC},
	} {
		if err := atomicfile.WritePrivate(f.path, f.data); err != nil {
			return fmt.Errorf("keeping the node's certificates: %w", err)
		}
	}
	return nil
}

func pair(certPEM, keyPEM []byte) []byte {
	return append(append([]byte(nil), certPEM...), keyPEM...)
}

// RenewAt is when the first of the node's certificates is half-way through
// its life (identity.RenewAt), and when the first expires.
func (c Creds) RenewAt() (renew, expires time.Time, err error) {
	for _, f := range []string{c.kubelet(), c.Serving(), c.proxy()} {
		cert, err := readCert(f)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		if at := identity.RenewAt(cert); renew.IsZero() || at.Before(renew) {
			renew = at
		}
		if expires.IsZero() || cert.NotAfter.Before(expires) {
			expires = cert.NotAfter
		}
	}
	return renew, expires, nil
}

func readCert(file string) (*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cert, err := identity.ParseCert(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cert, nil
}
