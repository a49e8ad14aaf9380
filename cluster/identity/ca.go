package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority: its certificate and key, parsed and PEM.
type CA struct {
	Cert            *x509.Certificate
	Key             *ecdsa.PrivateKey
	CertPEM, KeyPEM []byte
}

const (
	caLifetime   = 20 * 365 * 24 * time.Hour
	leafLifetime = 5 * 365 * 24 * time.Hour
	backdate     = time.Hour // tolerate clocks a little behind
)

// NodeLifetime is how long a node's certificates last: the kubelet's
// client and serving certificates and kube-proxy's. A running node renews
// them half-way through (RenewAt) by joining again, so a node whose joins
// are refused (a refused name, a retired token) is out of the cluster
// within this time, with no revocation list.
const NodeLifetime = 30 * 24 * time.Hour

// RenewAt is when a certificate is half-way through its life, when its
// holder should get a new one.
func RenewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)
}

// NewCA makes a self-signed CA with a new key.
func NewCA(cn string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return selfSigned(cn, key, now)
}

// selfSigned makes a CA certificate for key.
func selfSigned(cn string, key *ecdsa.PrivateKey, now time.Time) (*CA, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp)
}

// ParseCA reads a CA certificate and its key in PEM and checks they belong
// together.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("the certificate is not a CA")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseCert reads the first certificate in PEM data.
func ParseCert(data []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Leaf describes a certificate to issue.
type Leaf struct {
	CommonName    string
	Organizations []string
	DNSNames      []string
	IPs           []net.IP
	Server        bool // server auth usage, else client auth
	// Lifetime is how long the certificate lasts: NodeLifetime for a
	// node's; zero for 5 years (the control plane's, made at each server
	// start, and the administrator's).
	Lifetime time.Duration
}

// Issue signs a new key pair for l and returns the certificate and key in PEM.
func (ca *CA) Issue(l Leaf, now time.Time) (certOut, keyOut []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if certOut, err = ca.Sign(l, &key.PublicKey, now); err != nil {
		return nil, nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certOut, kp, nil
}

// SignRequest issues a certificate for the key of a PEM certificate
// request, whose signature proves the requester holds that key. The
// request's own names are ignored: l says what the certificate is for.
func (ca *CA) SignRequest(csrPEM []byte, l Leaf, now time.Time) ([]byte, error) {
	csr, err := ParseRequest(csrPEM)
	if err != nil {
		return nil, err
	}
	return ca.Sign(l, csr.PublicKey, now)
}

// ParseRequest reads a PEM certificate request and checks its signature.
func ParseRequest(csrPEM []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return csr, nil
}

// NewRequest makes a key and a PEM certificate request for it.
func NewRequest() (csrPEM, keyOut []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), kp, nil
}

// Sign issues a certificate for l to the public key pub and returns it in
// PEM.
func (ca *CA) Sign(l Leaf, pub crypto.PublicKey, now time.Time) ([]byte, error) {
	usage := x509.ExtKeyUsageClientAuth
	if l.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	life := l.Lifetime
	if life == 0 {
		life = leafLifetime
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: l.Organizations},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(life),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     l.DNSNames,
		IPAddresses:  l.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", l.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
