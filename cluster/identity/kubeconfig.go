package identity

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// admin is the cluster's administrator (group system:masters).
var admin = Leaf{CommonName: "cairn-admin", Organizations: []string{"system:masters"}}

// AdminKubeconfig returns a kubeconfig for the cluster's administrator
// that trusts only the cluster's server CA.
func (b *Bundle) AdminKubeconfig(cluster, server string, now time.Time) ([]byte, error) {
	cert, key, err := b.ClientCA.Issue(admin, now)
	if err != nil {
		return nil, err
	}
	return Kubeconfig(cluster, server, b.ServerCA.CertPEM, cert, key)
}

// AdminTLS is a TLS client config for the cluster's administrator, whose
// certificate lasts for life, for one command; it trusts only the
// cluster's server CA.
func (b *Bundle) AdminTLS(now time.Time, life time.Duration) (*tls.Config, error) {
	l := admin
	l.Lifetime = life
	cert, key, err := b.ClientCA.Issue(l, now)
	if err != nil {
		return nil, err
	}
	return (&ClientConfig{CAPEM: b.ServerCA.CertPEM, CertPEM: cert, KeyPEM: key}).TLSConfig()
}

// Kubeconfig renders a one-cluster, one-user kubeconfig with embedded data.
func Kubeconfig(cluster, server string, caPEM, certPEM, keyPEM []byte) ([]byte, error) {
	b64 := base64.StdEncoding.EncodeToString
	return kubeconfig(cluster, server, caPEM, map[string]any{
		"client-certificate-data": b64(certPEM), "client-key-data": b64(keyPEM),
	})
}

// KubeconfigFile renders a one-cluster, one-user kubeconfig whose client
// certificate and key are in pemFile (the certificate, then the key).
// client-go reads a file it names again when it changes and then closes
// its connections, so a program that uses the kubeconfig picks up a
// renewed certificate within minutes, without a restart; one file for
// both is replaced whole, so it never reads a certificate with another's
// key.
func KubeconfigFile(cluster, server string, caPEM []byte, pemFile string) ([]byte, error) {
	return kubeconfig(cluster, server, caPEM, map[string]any{"client-certificate": pemFile, "client-key": pemFile})
}

func kubeconfig(cluster, server string, caPEM []byte, userCreds map[string]any) ([]byte, error) {
	user := cluster + "-admin"
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": cluster,
		"clusters": []any{map[string]any{"name": cluster, "cluster": map[string]any{
			"server": server, "certificate-authority-data": base64.StdEncoding.EncodeToString(caPEM),
		}}},
		"users": []any{map[string]any{"name": user, "user": userCreds}},
		"contexts": []any{map[string]any{"name": cluster, "context": map[string]any{
			"cluster": cluster, "user": user,
		}}},
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return out, nil
}

// ClientConfig is the single cluster and user of a kubeconfig that
// Kubeconfig wrote.
type ClientConfig struct {
	Server                 string
	CAPEM, CertPEM, KeyPEM []byte
}

// ParseKubeconfig reads a one-cluster, one-user kubeconfig with embedded data.
func ParseKubeconfig(data []byte) (*ClientConfig, error) {
	var doc struct {
		Clusters []struct {
			Cluster map[string]string `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User map[string]string `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(doc.Clusters) != 1 || len(doc.Users) != 1 {
		return nil, fmt.Errorf("kubeconfig: %d clusters and %d users, want one of each", len(doc.Clusters), len(doc.Users))
	}
	c := &ClientConfig{Server: doc.Clusters[0].Cluster["server"]}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&c.CAPEM, doc.Clusters[0].Cluster["certificate-authority-data"]}, {&c.CertPEM, doc.Users[0].User["client-certificate-data"]}, {&c.KeyPEM, doc.Users[0].User["client-key-data"]}} {
		b, err := base64.StdEncoding.DecodeString(f.src)
		if err != nil || len(b) == 0 {
			return nil, errors.New("kubeconfig: certificate data missing or not base64")
		}
		*f.dst = b
	}
	return c, nil
}

// TLSConfig trusts only the kubeconfig's CA and presents its client
// certificate.
func (c *ClientConfig) TLSConfig() (*tls.Config, error) {
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.CAPEM) {
		return nil, errors.New("kubeconfig: no CA certificate")
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}, nil
}
