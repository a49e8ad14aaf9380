// Package datastore starts kine, the etcd API over SQL that the apiserver
// stores its objects in: SQLite on the data partition by default, or any
// kine backend by URL (PostgreSQL, MySQL, etcd, NATS) for servers that share
// one datastore. SQLite needs a cgo build of cairnd.
package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/k3s-io/kine/pkg/endpoint"
)

// Socket is where kine listens for the apiserver.
const Socket = "/run/cairn/kine.sock"

// Start runs kine until ctx ends and returns the etcd URL of its socket.
func Start(ctx context.Context, url, dir string) (string, error) {
	if url == "" || strings.HasPrefix(url, "sqlite://") {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
	}
	if url == "" {
		url = "sqlite://" + filepath.Join(dir, "state.db") + "?_journal=WAL&cache=shared&_busy_timeout=30000&_txlock=immediate"
	}
	if err := os.MkdirAll(filepath.Dir(Socket), 0o755); err != nil {
		return "", err
	}
	os.Remove(Socket)
	// kine's own defaults (its command line sets them; the library does not).
	cfg, err := endpoint.Listen(ctx, endpoint.Config{
		Listener: "unix://" + Socket, Endpoint: url,
		NotifyInterval: 5 * time.Second, EmulatedETCDVersion: "3.6.11",
		CompactTimeout: 5 * time.Second, CompactMinRetain: 1000, CompactBatchSize: 1000,
		PollBatchSize: 500, PollInterval: time.Second,
	})
	if err != nil {
		return "", fmt.Errorf("kine: %w", err)
	}
	return strings.Join(cfg.Endpoints, ","), nil
}
