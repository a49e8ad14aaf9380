package identity

import (
	"encoding/base64"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// AdminKubeconfig returns a kubeconfig for the cluster's administrator
// (group system:masters) that trusts only the cluster's server CA.
func (b *Bundle) AdminKubeconfig(cluster, server string, now time.Time) ([]byte, error) {
	cert, key, err := b.ClientCA.Issue(Leaf{CommonName: "cairn-admin", Organizations: []string{"system:masters"}}, now)
	if err != nil {
		return nil, err
	}
	return Kubeconfig(cluster, server, b.ServerCA.CertPEM, cert, key)
}

// Kubeconfig renders a one-cluster, one-user kubeconfig with embedded data.
func Kubeconfig(cluster, server string, caPEM, certPEM, keyPEM []byte) ([]byte, error) {
	b64 := base64.StdEncoding.EncodeToString
	user := cluster + "-admin"
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"current-context": cluster,
		"clusters": []any{map[string]any{"name": cluster, "cluster": map[string]any{
			"server": server, "certificate-authority-data": b64(caPEM),
		}}},
		"users": []any{map[string]any{"name": user, "user": map[string]any{
			"client-certificate-data": b64(certPEM), "client-key-data": b64(keyPEM),
		}}},
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
