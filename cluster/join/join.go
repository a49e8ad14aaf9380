package join

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

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

// Server answers the joins of one server of the cluster.
type Server struct {
	Bundle    *identity.Bundle
	Cluster   Cluster
	Passwords Passwords
	Now       func() time.Time
	Log       *slog.Logger
}

// Handler serves joins.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, s.join)
	return mux
}

func (s *Server) join(w http.ResponseWriter, r *http.Request) {
	secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.Bundle.Secret)) != 1 {
		s.refuse(w, r, http.StatusUnauthorized, "join refused: wrong token secret",
			"the join token's secret is not this cluster's; build the agent with the token from the cluster's secrets folder")
		return
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		s.refuse(w, r, http.StatusBadRequest, "join refused: not JSON", "the join request is not JSON: "+err.Error())
		return
	}
	if err := checkNode(r.Context(), s.Passwords, req); err != nil {
		s.refuseNode(w, r, req.Node, err)
		return
	}
	resp, err := sign(s.Bundle, s.Cluster, req, s.Now())
	if err != nil {
		s.refuseNode(w, r, req.Node, fmt.Errorf("%w: %w", errBadRequest, err))
		return
	}
	s.Log.Info("node joined", "node", req.Node, "ips", strings.Join(req.IPs, ","), "from", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// refuse answers with status and msg, and logs what.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, what, msg string, attrs ...any) {
	s.Log.Warn(what, append([]any{"from", r.RemoteAddr}, attrs...)...)
	http.Error(w, msg, status)
}

// refuseNode answers a join that checking or signing turned away.
func (s *Server) refuseNode(w http.ResponseWriter, r *http.Request, node string, err error) {
	switch {
	case errors.Is(err, ErrNodePassword):
		s.refuse(w, r, http.StatusForbidden, "join refused: node password mismatch", err.Error(), "node", node)
	case errors.Is(err, errBadRequest):
		s.refuse(w, r, http.StatusBadRequest, "join refused", err.Error(), "node", node, "err", err)
	default:
		s.refuse(w, r, http.StatusServiceUnavailable, "join deferred: cannot check the node password",
			"the server cannot check node passwords yet ("+err.Error()+")", "node", node, "err", err)
	}
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
		{b.KubeletServingCA, req.Serving, serving, &resp.Serving},
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
