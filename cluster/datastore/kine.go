//go:build cairnd

// Package datastore starts kine, the etcd API over SQL that the apiserver
// stores its objects in: SQLite on the data partition by default, or
// PostgreSQL or MySQL by URL for servers that share one datastore; an etcd
// URL is handed to the apiserver as it is. SQLite needs a cgo build of
// cairnd.
//
// It serves kine's drivers itself rather than through kine's endpoint
// package, which links every driver kine has (NATS with an embedded NATS
// server, T4 with Pebble and S3): see docs/adr/0005.
package datastore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	_ "github.com/k3s-io/kine/pkg/drivers/mysql"
	_ "github.com/k3s-io/kine/pkg/drivers/pgsql"
	_ "github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Socket is where kine listens for the apiserver.
const Socket = "/run/cairn/kine.sock"

// etcd's request size limit, and the room gRPC needs around it.
const maxRequest = 3<<19 + 512<<10

// Start runs kine on Socket until ctx ends and returns the etcd URL of the
// socket; an etcd URL is returned as it is.
func Start(ctx context.Context, url, dir string) (string, error) {
	return start(ctx, url, dir, Socket)
}

func start(ctx context.Context, url, dir, socket string) (string, error) {
	if url == "" {
		url = "sqlite://" + filepath.Join(dir, "state.db") + "?_journal=WAL&cache=shared&_busy_timeout=30000&_txlock=immediate"
	}
	scheme, _, ok := strings.Cut(url, "://")
	if !ok {
		return "", errors.New("kine: the datastore is not a URL")
	}
	if scheme == "http" || scheme == "https" {
		return url, nil
	}
	if scheme == "sqlite" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o755); err != nil {
		return "", err
	}
	bctx, stop := context.WithCancel(context.Background())
	// kine's own defaults (its command line sets them; the library does not).
	_, backend, err := drivers.New(bctx, &sync.WaitGroup{}, &drivers.Config{
		Endpoint:       url,
		CompactTimeout: 5 * time.Second, CompactMinRetain: 1000, CompactBatchSize: 1000,
		PollBatchSize: 500, PollInterval: time.Second,
	})
	if errors.Is(err, drivers.ErrUnknownDriver) {
		err = fmt.Errorf("no datastore driver for %s://; use sqlite://, postgres://, mysql:// or an etcd http(s):// URL", scheme)
	}
	if err == nil {
		err = backend.Start(bctx)
	}
	if err != nil { // the URL may hold a password: the error must not quote it
		stop()
		return "", fmt.Errorf("kine: %w", err)
	}
	srv := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.MaxRecvMsgSize(maxRequest), grpc.MaxSendMsgSize(math.MaxInt32))
	server.New(backend, "unix", 5*time.Second, "3.6.11").Register(srv)
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err == nil {
		err = os.Chmod(socket, 0o600)
	}
	if err != nil {
		stop()
		return "", fmt.Errorf("kine: %w", err)
	}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		t := time.AfterFunc(2*time.Second, srv.Stop)
		srv.GracefulStop()
		t.Stop()
		stop()
	}()
	return "unix://" + socket, nil
}
