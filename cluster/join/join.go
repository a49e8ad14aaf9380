// Package join is how an agent becomes a node of a server's cluster. The
// server listens on Port with its apiserver certificate and the server CA
// in the chain. The agent checks that CA against the hash in its join
// token before it sends anything, then posts the token's secret with
// certificate requests for its kubelet (client and serving) and kube-proxy,
// and its node password. The server checks the secret, and the password
// against the one the first join under that node name set (so the token
// alone cannot take over another node's name), and signs the requests for
// the node name asked. Private keys never leave the agent.
package join

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

// Port is the join endpoint's TCP port on every server, next to the API's 6443.
const Port = 6444

// Path is the endpoint's URL path.
const Path = "/v1/join"

// Request is what an agent sends.
type Request struct {
	Node string   `json:"node"`
	IPs  []string `json:"ips"`
	// Password is the node's own secret, made by the agent on its first
	// join and kept on its data partition.
	Password string `json:"password"`
	// PEM certificate requests.
	Kubelet, Serving, Proxy []byte
}

// Cluster is what every node of the cluster is told.
type Cluster struct {
	ClusterCIDR string `json:"clusterCIDR"` // all pods
	ClusterDNS  string `json:"clusterDNS"`
	Domain      string `json:"domain"`
}

// Response carries the signed certificates (PEM) and the cluster's settings.
type Response struct {
	Cluster
	ServerCA, ClientCA      []byte
	Kubelet, Serving, Proxy []byte
}

// ErrRefused means the server turned the agent away; the message says why.
var ErrRefused = errors.New("the server refused to let this node join")

// Passwords keeps each node name's password: the first join under a name
// sets it; a later join under that name must bring the same one.
type Passwords interface {
	Check(ctx context.Context, node, password string) error
}

// ErrNodePassword means a join brought another password than the one
// its node name has.
var ErrNodePassword = errors.New("node password mismatch")

// MinPassword is the shortest node password a server accepts.
const MinPassword = 32

var nodeRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Handler serves joins for the cluster of b.
func Handler(b *identity.Bundle, c Cluster, pw Passwords, now func() time.Time, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(secret), []byte(b.Secret)) != 1 {
			log.Warn("join refused: wrong token secret", "from", r.RemoteAddr)
			http.Error(w, "the join token's secret is not this cluster's; build the agent with the token from the cluster's secrets folder", http.StatusUnauthorized)
			return
		}
		var req Request
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "the join request is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		switch err := checkNode(r.Context(), pw, req); {
		case errors.Is(err, ErrNodePassword):
			log.Warn("join refused: node password mismatch", "node", req.Node, "from", r.RemoteAddr)
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		case errors.Is(err, errBadRequest):
			log.Warn("join refused", "node", req.Node, "from", r.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			log.Warn("join deferred: cannot check the node password", "node", req.Node, "err", err)
			http.Error(w, "the server cannot check node passwords yet ("+err.Error()+")", http.StatusServiceUnavailable)
			return
		}
		resp, err := sign(b, c, req, now())
		if err != nil {
			log.Warn("join refused", "node", req.Node, "from", r.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		log.Info("node joined", "node", req.Node, "ips", strings.Join(req.IPs, ","), "from", r.RemoteAddr)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	return mux
}

var errBadRequest = errors.New("bad join request")

// checkNode checks the node name, then its password.
func checkNode(ctx context.Context, pw Passwords, req Request) error {
	if !nodeRE.MatchString(req.Node) {
		return fmt.Errorf("%w: %q is not a node name (1 to 63 of a-z, 0-9 and '-')", errBadRequest, req.Node)
	}
	if len(req.Password) < MinPassword {
		return fmt.Errorf("%w: the request has no node password of %d or more characters; update the agent's image", errBadRequest, MinPassword)
	}
	return pw.Check(ctx, req.Node, req.Password)
}

func sign(b *identity.Bundle, c Cluster, req Request, now time.Time) (*Response, error) {
	var ips []net.IP
	for _, s := range req.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return nil, errors.New("the request names no node address")
	}
	node := identity.Leaf{CommonName: "system:node:" + req.Node, Organizations: []string{"system:nodes"}}
	serving := node
	serving.DNSNames, serving.IPs, serving.Server = []string{req.Node}, ips, true
	resp := &Response{Cluster: c, ServerCA: b.ServerCA.CertPEM, ClientCA: b.ClientCA.CertPEM}
	for _, s := range []struct {
		ca  *identity.CA
		csr []byte
		l   identity.Leaf
		dst *[]byte
	}{
		{b.ClientCA, req.Kubelet, node, &resp.Kubelet},
		{b.ServerCA, req.Serving, serving, &resp.Serving},
		{b.ClientCA, req.Proxy, identity.Leaf{CommonName: "system:kube-proxy"}, &resp.Proxy},
	} {
		cert, err := s.ca.SignRequest(s.csr, s.l, now)
		if err != nil {
			return nil, err
		}
		*s.dst = cert
	}
	return resp, nil
}

// Listen serves h on addr with the server's certificate, which must have
// been issued by the server CA; the CA goes into the chain so that agents
// can check it against their tokens.
func Listen(ctx context.Context, addr string, certFile, keyFile string, serverCA []byte, h http.Handler) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	ca, err := identity.ParseCert(serverCA)
	if err != nil {
		return err
	}
	cert.Certificate = append(cert.Certificate, ca.Raw)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Keys are the agent's private keys (PEM) for the certificates it asks for.
type Keys struct{ Kubelet, Serving, Proxy []byte }

// NewRequest makes the agent's keys and the request for node at ips.
func NewRequest(node, password string, ips []net.IP) (*Request, *Keys, error) {
	req := &Request{Node: node, Password: password}
	for _, ip := range ips {
		req.IPs = append(req.IPs, ip.String())
	}
	keys := &Keys{}
	for _, p := range []struct{ csr, key *[]byte }{
		{&req.Kubelet, &keys.Kubelet}, {&req.Serving, &keys.Serving}, {&req.Proxy, &keys.Proxy},
	} {
		var err error
		if *p.csr, *p.key, err = identity.NewRequest(); err != nil {
			return nil, nil, err
		}
	}
	return req, keys, nil
}

// URL is the join endpoint of the server whose API is at apiURL.
func URL(apiURL string) (string, error) {
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not the server's https URL", apiURL)
	}
	return "https://" + net.JoinHostPort(u.Hostname(), fmt.Sprint(Port)) + Path, nil
}

// Do sends req to the server at apiURL. It talks only to a server whose CA
// is the one tok names, and whose certificate from that CA is for the
// host it dialled.
func Do(ctx context.Context, apiURL string, tok identity.Token, req *Request) (*Response, error) {
	endpoint, err := URL(apiURL)
	if err != nil {
		return nil, err
	}
	return send(ctx, endpoint, tok, req)
}

func send(ctx context.Context, endpoint string, tok identity.Token, req *Request) (*Response, error) {
	u, _ := url.Parse(endpoint)
	host := u.Hostname()
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The usual verification needs the CA; the token pins it instead.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPinned(cs.PeerCertificates, tok, host)
		},
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, "POST", endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+tok.Secret)
	hr.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, resp.Status, strings.TrimSpace(string(data)))
	}
	var out Response
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("the server's answer is not a join response: %w", err)
	}
	if ca, err := identity.ParseCert(out.ServerCA); err != nil || tok.VerifyCA(ca) != nil {
		return nil, fmt.Errorf("%w (in the join response)", identity.ErrCAMismatch)
	}
	return &out, nil
}

// verifyPinned accepts a chain whose last certificate is the token's CA and
// whose first was issued by it for host.
func verifyPinned(chain []*x509.Certificate, tok identity.Token, host string) error {
	if len(chain) < 2 {
		return fmt.Errorf("%w: the server sent no CA with its certificate (is %s a Cairn server's join port?)", identity.ErrCAMismatch, host)
	}
	ca := chain[len(chain)-1]
	if err := tok.VerifyCA(ca); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host})
	return err
}

// NodePassword reads the agent's node password from file, making and
// keeping a new random one (0600) on first use. The file lives on the data
// partition, so the password outlives reboots and A/B updates.
func NodePassword(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err == nil && len(bytes.TrimSpace(data)) >= MinPassword {
		return string(bytes.TrimSpace(data)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(buf)
	if err := atomicfile.WritePrivate(file, []byte(pw+"\n")); err != nil {
		return "", fmt.Errorf("keeping the node password: %w", err)
	}
	return pw, nil
}
