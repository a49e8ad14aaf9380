package update

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cairn-os/cairn/internal/nodeapi"
	"golang.org/x/net/netutil"
)

// Listen opens the node API's port.
func Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(nodeapi.Port))
	if err != nil {
		return nil, fmt.Errorf("node API: %w", err)
	}
	return ln, nil
}

// Serve answers the node API on ln until ctx ends. Only clients with a
// certificate from the fleet's CA get past the TLS handshake.
func (n *Node) Serve(ctx context.Context, ln net.Listener, conf *tls.Config) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nodeapi.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		s, err := n.Status()
		reply(w, s, err)
	})
	mux.HandleFunc("POST "+nodeapi.PathUpdate, func(w http.ResponseWriter, r *http.Request) {
		// The manifest comes first and is small; the slot's files may take long.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(30 * time.Second))
		more := func() { rc.SetReadDeadline(time.Now().Add(time.Hour)) }
		res, err := n.Install(r.Context(), r.Body, r.URL.Query().Get("allow-downgrade") == "1", more, 0)
		reply(w, res, err)
	})
	mux.HandleFunc("POST "+nodeapi.PathRollback, func(w http.ResponseWriter, r *http.Request) {
		res, err := n.Rollback()
		reply(w, res, err)
	})
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         conf,
		ReadHeaderTimeout: 10 * time.Second,
		// A bundle's body has its own read deadlines (above); the reader
		// bounds its size by the signed manifest.
		WriteTimeout:   time.Hour,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	n.Log.Info("node API listening", "port", nodeapi.Port)
	err := srv.ServeTLS(netutil.LimitListener(ln, 64), "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrRefused) {
			code = http.StatusConflict
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
