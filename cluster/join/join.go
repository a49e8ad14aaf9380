package join

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cairn-os/cairn/cluster/identity"
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

// Server answers the joins of one server of the cluster. Its fields are
// read once, on the first call of Handler or Listen.
type Server struct {
	Bundle    *identity.Bundle
	Cluster   Cluster
	Passwords Passwords
	Refusals  Refusals // nil refuses no name
	Reserved  Reserved
	Limits    Limits
	Now       func() time.Time
	Log       *slog.Logger

	once     sync.Once
	limits   Limits // Limits with the defaults filled in
	sources  *sources
	refusals refusals
}

// Handler serves joins, each source address within its rate.
func (s *Server) Handler() http.Handler {
	s.once.Do(func() {
		s.limits = s.Limits.orDefault()
		s.sources = newSources(s.limits.PerSource, s.limits.PerSourceBurst)
		s.refusals.lim = rate.NewLimiter(s.limits.Logs, s.limits.LogBurst)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.join)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait := s.sources.take(source(r), s.Now()); wait > 0 {
			secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", secs)
			s.refuse(w, r, http.StatusTooManyRequests, "join refused: too many requests from one address",
				"too many joins from this address; try again in "+secs+" s")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if err := s.Bundle.CheckSecret(secret, s.Now()); err != nil {
		what := "join refused: wrong token secret"
		if errors.Is(err, identity.ErrSecretRetired) {
			what = "join refused: retired token"
		}
		s.refuse(w, r, http.StatusUnauthorized, what, err.Error())
		return
	}
	req, ok := s.decode(w, r)
	if !ok {
		return
	}
	g, err := s.check(req)
	if err == nil {
		err = s.refused(r.Context(), req.Node)
	}
	if err == nil {
		// Last, as it keeps the password of a name not seen before.
		err = s.Passwords.Check(r.Context(), req.Node, req.Password)
	}
	if err != nil {
		s.refuseNode(w, r, req.Node, err)
		return
	}
	resp, err := s.sign(g)
	if err != nil {
		s.refuse(w, r, http.StatusInternalServerError, "join failed", "the server cannot sign certificates: "+err.Error(), "node", req.Node, "err", err)
		return
	}
	s.Log.Info("node joined", "node", req.Node, "ips", strings.Join(req.IPs, ","), "from", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// decode reads a join request of up to Limits.MaxBody bytes, or refuses it.
func (s *Server) decode(w http.ResponseWriter, r *http.Request) (req Request, ok bool) {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.limits.MaxBody)).Decode(&req)
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		s.refuse(w, r, http.StatusRequestEntityTooLarge, "join refused: request too large",
			fmt.Sprintf("the join request is over %d bytes; send certificate requests alone, without chains", tooBig.Limit))
		return req, false
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "join refused: not JSON", "the join request is not JSON: "+err.Error())
		return req, false
	}
	return req, true
}

// refuse answers with status and msg, and logs what.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, what, msg string, attrs ...any) {
	s.logRefusal(what, append([]any{"from", r.RemoteAddr}, attrs...)...)
	http.Error(w, msg, status)
}

// logRefusal logs a refusal within the log's rate; the next line logged
// says how many were not.
func (s *Server) logRefusal(what string, attrs ...any) {
	ok, skipped := s.refusals.allow(s.Now())
	if !ok {
		return
	}
	if skipped > 0 {
		attrs = append(attrs, "unlogged", skipped)
	}
	s.Log.Warn(what, attrs...)
}

// refuseNode answers a join that checking turned away.
func (s *Server) refuseNode(w http.ResponseWriter, r *http.Request, node string, err error) {
	switch {
	case errors.Is(err, ErrNodePassword):
		s.refuse(w, r, http.StatusForbidden, "join refused: node password mismatch", err.Error(), "node", node)
	case errors.Is(err, ErrNodeRefused):
		s.refuse(w, r, http.StatusForbidden, "join refused: node refused", err.Error(), "node", node)
	case errors.Is(err, errReserved):
		s.refuse(w, r, http.StatusForbidden, "join refused: reserved name or address", err.Error(), "node", node, "err", err)
	case errors.Is(err, errBadRequest) || errors.Is(err, ErrNodeName):
		s.refuse(w, r, http.StatusBadRequest, "join refused", err.Error(), "node", node, "err", err)
	default:
		s.refuse(w, r, http.StatusServiceUnavailable, "join deferred: cannot check the node's name and password",
			"the server cannot check node names and passwords yet ("+err.Error()+"); the agent tries again", "node", node, "err", err)
	}
}

var errBadRequest = errors.New("bad join request")

// grant is what a join is let have: its node name, the names and
// addresses of its serving certificate, and the certificate requests it
// proved it holds the keys of.
type grant struct {
	node                    string
	names                   []string
	ips                     []net.IP
	kubelet, serving, proxy *x509.CertificateRequest
}

// check checks all of a join but its node password.
func (s *Server) check(req Request) (*grant, error) {
	if err := checkNodeName(req.Node); err != nil {
		return nil, err
	}
	if len(req.Password) < MinPassword {
		return nil, fmt.Errorf("%w: the request has no node password of %d or more characters; update the agent's image", errBadRequest, MinPassword)
	}
	if err := s.Reserved.checkName(req.Node); err != nil {
		return nil, err
	}
	ips, err := s.Reserved.parseIPs(req.IPs)
	if err != nil {
		return nil, err
	}
	g := &grant{node: req.Node, names: []string{req.Node}, ips: ips}
	if err := g.take(req); err != nil {
		return nil, err
	}
	return g, nil
}

// take reads the join's certificate requests, and refuses one that asks
// for more than g grants.
func (g *grant) take(req Request) error {
	for _, c := range []struct {
		dst   **x509.CertificateRequest
		pem   []byte
		names []string
		ips   []net.IP
	}{{&g.kubelet, req.Kubelet, nil, nil}, {&g.serving, req.Serving, g.names, g.ips}, {&g.proxy, req.Proxy, nil, nil}} {
		csr, err := identity.ParseRequest(c.pem)
		if err != nil {
			return fmt.Errorf("%w: %w", errBadRequest, err)
		}
		if err := checkRequest(csr, c.names, c.ips); err != nil {
			return err
		}
		*c.dst = csr
	}
	return nil
}

// sign issues the node's certificates with subjects the server decides:
// the kubelet's client certificate, its serving certificate for the node's
// name and addresses from the kubelet-serving CA, and kube-proxy's, each
// for identity.NodeLifetime.
func (s *Server) sign(g *grant) (*Response, error) {
	b := s.Bundle
	node := identity.Leaf{CommonName: "system:node:" + g.node, Organizations: []string{"system:nodes"}, Lifetime: identity.NodeLifetime}
	serving := node
	serving.DNSNames, serving.IPs, serving.Server = g.names, g.ips, true
	resp := &Response{Cluster: s.Cluster, ServerCA: b.ServerCA.CertPEM, ClientCA: b.ClientCA.CertPEM}
	for _, c := range []struct {
		ca  *identity.CA
		csr *x509.CertificateRequest
		l   identity.Leaf
		dst *[]byte
	}{
		{b.ClientCA, g.kubelet, node, &resp.Kubelet},
		{b.KubeletServingCA, g.serving, serving, &resp.Serving},
		{b.ClientCA, g.proxy, identity.Leaf{CommonName: "system:kube-proxy", Lifetime: identity.NodeLifetime}, &resp.Proxy},
	} {
		cert, err := c.ca.Sign(c.l, c.csr.PublicKey, s.Now())
		if err != nil {
			return nil, err
		}
		*c.dst = cert
	}
	return resp, nil
}

// Issue makes the certificates of a server's own node with the cluster's
// CAs, as a join would, with new keys: a server's node does not join. Its
// serving certificate is also for localhost and 127.0.0.1, which no join
// may ask for.
func Issue(b *identity.Bundle, node string, ips []net.IP, now time.Time) (*Response, *Keys, error) {
	req, keys, err := NewRequest(node, "", nil)
	if err != nil {
		return nil, nil, err
	}
	g := &grant{node: node, names: []string{node, "localhost"}, ips: append([]net.IP{net.IPv4(127, 0, 0, 1)}, ips...)}
	if err := g.take(*req); err != nil {
		return nil, nil, err
	}
	resp, err := (&Server{Bundle: b, Now: func() time.Time { return now }}).sign(g)
	return resp, keys, err
}
