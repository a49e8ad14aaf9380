// Package nodeapi is the node API's contract, shared by init, which serves
// it, and cairn, which calls it: its port and paths, the status it
// reports, and its mutual TLS, in which both sides trust only the fleet's
// CA (internal/fleet). A node's certificate names no host, since images
// are built before their addresses are known: the client checks that the
// node's certificate comes from the fleet's CA and is a server's, not
// which host holds it.
package nodeapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"time"
)

// Port is the node API's TCP port.
const Port = 6445

// Paths.
const (
	PathStatus   = "/v1/status"   // GET: Status
	PathUpdate   = "/v1/update"   // POST a bundle; ?allow-downgrade=1
	PathRollback = "/v1/rollback" // POST: the other slot becomes the trial
)

// Files an image carries in boot.FleetDir, from the fleet's keys.
const (
	FileCA        = "api-ca.crt" // the fleet's node API CA
	FileNode      = "node.crt"   // the node's server certificate
	FileNodeKey   = "node.key"
	FilePublicKey = "update.pub" // the key that signs bundles, base64
)

// MaxStatus bounds a status answer, for the client.
const MaxStatus = 1 << 20

// Status is what a node says about its slots and its last update.
type Status struct {
	Hostname  string        `json:"hostname"`
	Board     string        `json:"board"`
	Booted    string        `json:"booted"`    // the slot running
	Committed string        `json:"committed"` // the slot that boots when no trial is armed
	Trial     bool          `json:"trial"`     // the running slot is on trial
	Slots     map[string]OS `json:"slots"`     // a and b
	Last      *Result       `json:"last,omitempty"`
}

// OS is what a slot holds.
type OS struct {
	Version string `json:"version"`
	Build   int64  `json:"build"`
}

// Result is the outcome of an update or a rollback.
type Result struct {
	Time    time.Time `json:"time"`
	Slot    string    `json:"slot"`
	Version string    `json:"version"`
	Build   int64     `json:"build"`
	// State: installed (armed, rebooting into it), committed, rolled-back,
	// or failed.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// LastResult reads the last update's result from the updater's state
// file (boot.UpdateState); nil when there was none.
func LastResult(file string) (*Result, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st struct {
		Last *Result `json:"last"`
	}
	return st.Last, json.Unmarshal(data, &st)
}

// ServerTLS is the node's side: its certificate, and client certificates
// from the fleet's CA only.
func ServerTLS(caPEM, certPEM, keyPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	pool, err := caPool(caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

// ClientTLS is the administrator's side: its certificate, and a node
// certificate from the fleet's CA whatever host name it is reached by.
func ClientTLS(caPEM []byte, cert tls.Certificate) (*tls.Config, error) {
	pool, err := caPool(caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		// The name is not checked (the node's certificate has none); the chain is.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the node sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return errors.New("the node's certificate is not from this fleet's CA: " + err.Error())
			}
			return nil
		},
	}, nil
}

// caPool is the fleet's CA as a pool to verify against.
func caPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the fleet's CA certificate is not PEM")
	}
	return pool, nil
}
