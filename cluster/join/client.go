package join

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/internal/atomicfile"
)

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

// Agent is what an agent joins with: the server's API URL, the image's
// token, its node name and password, and its addresses.
type Agent struct {
	Server   string
	Token    identity.Token
	Node     string
	Password string
	IPs      []net.IP
}

// Join makes new keys and joins with them.
func (a Agent) Join(ctx context.Context) (*Response, *Keys, error) {
	req, keys, err := NewRequest(a.Node, a.Password, a.IPs)
	if err != nil {
		return nil, nil, err
	}
	resp, err := Do(ctx, a.Server, a.Token, req)
	if err != nil {
		return nil, nil, err
	}
	return resp, keys, nil
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

// ErrPasswordDamaged is wrapped when the node password file is there but
// holds no password: torn by a power cut while first written, or emptied.
var ErrPasswordDamaged = errors.New("the node password file is damaged")

// NodePassword reads the agent's node password from file, making and
// keeping a new random one (0600) on first use. The file lives on the data
// partition, so the password outlives reboots and A/B updates. A damaged
// file is an error wrapping ErrPasswordDamaged, and stays as it is: the
// server knows this node by the password it held, so a new one is kept
// only once a join with it succeeds (NewPassword, then KeepPassword).
func NodePassword(file string) (string, error) {
	data, err := os.ReadFile(file)
	switch {
	case err == nil && len(bytes.TrimSpace(data)) >= MinPassword:
		return string(bytes.TrimSpace(data)), nil
	case err == nil:
		return "", fmt.Errorf("%w: %s holds %d bytes, not a password; if the server refuses this node's name, retire the old node there (kubectl delete node NAME; kubectl -n kube-system delete secret %s) and the agent keeps a new password at its next join",
			ErrPasswordDamaged, file, len(data), PasswordSecret("NAME"))
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	pw, err := NewPassword()
	if err != nil {
		return "", err
	}
	return pw, KeepPassword(file, pw)
}

// NewPassword makes a random node password.
func NewPassword() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}

// KeepPassword writes the node password to file, durably, at 0600.
func KeepPassword(file, pw string) error {
	if err := atomicfile.WritePrivate(file, []byte(pw+"\n")); err != nil {
		return fmt.Errorf("keeping the node password: %w", err)
	}
	return nil
}
