package join

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// Listen serves joins on addr with the server's certificate, which must
// have been issued by the server CA; the CA goes into the chain so that
// agents can check it against their tokens.
func (s *Server) Listen(ctx context.Context, addr string, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.serve(ctx, ln, cert)
}

// serve serves joins on ln until ctx ends.
func (s *Server) serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	cert.Certificate = append(cert.Certificate, s.Bundle.ServerCA.Cert.Raw)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
