package server

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

// Network ranges of every Cairn cluster.
const (
	ClusterCIDR   = "10.42.0.0/16" // pods
	ServiceCIDR   = "10.43.0.0/16" // services
	APIServiceIP  = "10.43.0.1"    // the kubernetes Service
	ClusterDNSIP  = "10.43.0.10"
	ClusterDomain = "cluster.local"
	APIPort       = 6443
)

// Paths below the server's state folder.
type Paths struct{ Dir string }

func (p Paths) tls(name string) string { return filepath.Join(p.Dir, "tls", name) }

// KubeconfigFor is the kubeconfig file a component uses.
func (p Paths) KubeconfigFor(component string) string {
	return filepath.Join(p.Dir, "cred", component+".kubeconfig")
}

// AdminKubeconfig is the administrator's kubeconfig on the node.
func (p Paths) AdminKubeconfig() string { return p.KubeconfigFor("admin") }

// writePKI writes the CA certificates, the keys the components need, a
// serving certificate for the node's names and addresses, client
// certificates with kubeconfigs for the components and the admin, and the
// certificates of the server's own node (NodeCreds).
func writePKI(p Paths, b *identity.Bundle, hostname string, ips []net.IP, now time.Time) error {
	files, err := b.Files()
	if err != nil {
		return err
	}
	w := writer{}
	for _, name := range []string{identity.FileServerCA, identity.FileClientCA, identity.FileRequestHeaderCA,
		identity.FileKubeletServingCA, identity.FileClientCAKey, identity.FileServiceAccountKey} {
		w.file(p.tls(name), files[name])
	}
	saPub, err := identity.PublicKeyPEM(&b.ServiceAccountKey.PublicKey)
	if err != nil {
		return err
	}
	w.file(p.tls("service-account.pub"), saPub)

	dns, sans := apiserverNames(hostname, ips)
	w.issue(b.ServerCA, identity.Leaf{CommonName: "kube-apiserver", DNSNames: dns, IPs: sans, Server: true}, p.tls("apiserver"), now)
	w.issue(b.ClientCA, identity.Leaf{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}}, p.tls("apiserver-kubelet-client"), now)
	w.issue(b.RequestHeaderCA, identity.Leaf{CommonName: "front-proxy-client"}, p.tls("front-proxy-client"), now)

	for _, c := range []struct {
		name string
		leaf identity.Leaf
	}{
		{"admin", identity.Leaf{CommonName: "cairn-admin", Organizations: []string{"system:masters"}}},
		{"kube-controller-manager", identity.Leaf{CommonName: "system:kube-controller-manager"}},
		{"kube-scheduler", identity.Leaf{CommonName: "system:kube-scheduler"}},
	} {
		if w.err != nil {
			break
		}
		cert, key, err := b.ClientCA.Issue(c.leaf, now)
		if err != nil {
			return err
		}
		kc, err := identity.Kubeconfig("local", localAPI, b.ServerCA.CertPEM, cert, key)
		if err != nil {
			return err
		}
		w.file(p.KubeconfigFor(c.name), kc)
	}
	if w.err != nil {
		return w.err
	}
	resp, keys, err := join.Issue(b, hostname, ips, now)
	if err != nil {
		return err
	}
	return p.NodeCreds().Write(resp, keys)
}

// localAPI is the apiserver, as the components on the server reach it.
var localAPI = fmt.Sprintf("https://127.0.0.1:%d", APIPort)

// NodeCreds are the certificates of the server's own node: made at each
// start like the others, but for identity.NodeLifetime, and renewed while
// the server runs (join.Issue), as an agent's are. Its kubelet's serving
// certificate is from the kubelet-serving CA, which only the apiserver
// trusts (--kubelet-certificate-authority, for logs and exec).
func (p Paths) NodeCreds() join.Creds {
	return join.Creds{Dir: filepath.Join(p.Dir, "node"), Server: localAPI}
}

// apiserverNames are the names and addresses the apiserver's serving
// certificate is for.
func apiserverNames(hostname string, ips []net.IP) (dns []string, sans []net.IP) {
	sans = append([]net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP(APIServiceIP)}, ips...)
	dns = []string{"localhost", hostname, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain}
	return dns, sans
}

// reserved are the names and addresses no agent may join under: the
// apiserver's (this server's node name among them), and the service and
// pod ranges, where no node has an address.
func reserved(hostname string, ips []net.IP) join.Reserved {
	dns, sans := apiserverNames(hostname, ips)
	return join.Reserved{Names: dns, IPs: sans, Nets: []netip.Prefix{netip.MustParsePrefix(ServiceCIDR), netip.MustParsePrefix(ClusterCIDR)}}
}

// writer writes 0600 files, creating folders, and keeps the first error.
type writer struct{ err error }

func (w *writer) file(path string, data []byte) {
	if w.err != nil {
		return
	}
	w.err = atomicfile.WritePrivate(path, data)
}

func (w *writer) issue(ca *identity.CA, l identity.Leaf, base string, now time.Time) {
	if w.err != nil {
		return
	}
	cert, key, err := ca.Issue(l, now)
	if err != nil {
		w.err = err
		return
	}
	w.file(base+".crt", cert)
	w.file(base+".key", key)
}
