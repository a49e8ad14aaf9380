package join

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"

	"golang.org/x/net/netutil"
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

// serve serves joins on ln until ctx ends, within the server's limits.
func (s *Server) serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	h := s.Handler()
	l := s.limits
	cert.Certificate = append(cert.Certificate, s.Bundle.ServerCA.Cert.Raw)
	srv := &http.Server{
		Handler:     h,
		ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
		MaxHeaderBytes: l.MaxHeaderBytes,
		ErrorLog:       log.New(errorLog{s}, "", 0),
		TLSConfig:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.ServeTLS(netutil.LimitListener(ln, l.Conns), "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
